package memfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/revlist"
	"github.com/kelpie/kelpie/letta"
)

// Git's smart HTTP protocol (version 0, stateless), as Kelpie serves it:
// no side band, no multi_ack, no shallow clones, no thin packs sent.
// Pushes may send thin packs.

// The two services.
const (
	UploadPack  = "git-upload-pack"
	ReceivePack = "git-receive-pack"
)

// Limits of the protocol.
const (
	MaxPushBytes   = 32 << 20 // a push request, commands and pack
	MaxHaves       = 10_000   // haves in one fetch request
	MaxPackWindow  = 10       // objects the pack encoder compares for deltas
	agentCapablity = "kelpie"
)

// AdvertiseRefs writes the ref advertisement of service for the smart HTTP
// info/refs request.
func AdvertiseRefs(s *Store, service string, w io.Writer) error {
	ar := packp.NewAdvRefs()
	ar.Prefix = [][]byte{[]byte("# service=" + service), pktline.Flush}
	caps := []capability.Capability{capability.OFSDelta}
	if service == ReceivePack {
		caps = append(caps, capability.ReportStatus, capability.DeleteRefs)
	}
	for _, c := range caps {
		if err := ar.Capabilities.Set(c); err != nil {
			return err
		}
	}
	if err := ar.Capabilities.Set(capability.Agent, agentCapablity); err != nil {
		return err
	}
	h, err := s.Head()
	if err != nil {
		return err
	}
	if !h.IsZero() {
		ar.References[Branch.String()] = h
		if service == UploadPack {
			ar.Head = &h
			if err := ar.AddReference(head); err != nil {
				return err
			}
		}
	}
	return ar.Encode(w)
}

// ServeUploadPack answers a fetch request: ACK or NAK for the haves, and,
// once the client says done, a pack of what the wants need beyond them.
func ServeUploadPack(s *Store, body io.Reader, w io.Writer) error {
	req := packp.NewUploadRequest()
	if err := req.Decode(body); err != nil {
		return letta.Invalidf("upload-pack request: %v", err)
	}
	if len(req.Shallows) > 0 || req.Depth != nil && !req.Depth.IsZero() {
		return letta.Invalidf("upload-pack request: shallow fetches are not supported")
	}
	haves, done, err := readHaves(body)
	if err != nil {
		return err
	}
	var common []plumbing.Hash
	for _, h := range haves {
		if s.HasEncodedObject(h) == nil {
			common = append(common, h)
		}
	}
	enc := pktline.NewEncoder(w)
	if len(common) > 0 {
		err = enc.Encodef("ACK %s\n", common[0])
	} else {
		err = enc.Encodef("NAK\n")
	}
	if err != nil || !done {
		return err
	}
	for _, h := range req.Wants {
		if err := s.HasEncodedObject(h); err != nil {
			return letta.Invalidf("upload-pack request: want %s: not our ref", h)
		}
	}
	skip, err := revlist.Objects(s, common, nil)
	if err != nil {
		return err
	}
	objs, err := revlist.Objects(s, req.Wants, skip)
	if err != nil {
		return err
	}
	_, err = packfile.NewEncoder(w, s, false).Encode(objs, MaxPackWindow)
	return err
}

// readHaves reads the haves after the wants, up to a flush or "done".
func readHaves(body io.Reader) (haves []plumbing.Hash, done bool, err error) {
	sc := pktline.NewScanner(body)
	for sc.Scan() {
		line := strings.TrimSuffix(string(sc.Bytes()), "\n")
		switch {
		case line == "":
			return haves, false, nil
		case line == "done":
			return haves, true, nil
		case strings.HasPrefix(line, "have "):
			if len(haves) >= MaxHaves {
				return nil, false, letta.Invalidf("upload-pack request: more than %d haves", MaxHaves)
			}
			haves = append(haves, plumbing.NewHash(strings.TrimPrefix(line, "have ")))
		default:
			return nil, false, letta.Invalidf("upload-pack request: unexpected line %q", letta.Clip(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, letta.Invalidf("upload-pack request: %v", err)
	}
	// A request may end without a flush after the wants (nothing to
	// negotiate): it is done.
	return haves, true, nil
}

// Push is a push request: the ref updates and the pack that brings their
// objects. It is the payload of the agent actor's push.
type Push struct {
	Commands []Command `json:"commands"`
	Pack     []byte    `json:"pack,omitempty"`
	// Report says whether the client asked for a status report.
	Report bool `json:"report"`
}

// Command is one ref update: from Old to New (a zero hash: none).
type Command struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// ReadPush reads a receive-pack request.
func ReadPush(body io.Reader) (*Push, error) {
	lim := &io.LimitedReader{R: body, N: MaxPushBytes + 1}
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(lim); err != nil {
		if errors.Is(err, packp.ErrEmpty) {
			return &Push{}, nil
		}
		return nil, letta.Invalidf("receive-pack request: %v", err)
	}
	p := &Push{Report: req.Capabilities.Supports(capability.ReportStatus)}
	for _, c := range req.Commands {
		p.Commands = append(p.Commands, Command{Name: c.Name.String(), Old: c.Old.String(), New: c.New.String()})
	}
	if req.Packfile != nil {
		pack, err := io.ReadAll(req.Packfile)
		if err != nil {
			return nil, letta.Invalidf("receive-pack request: %v", err)
		}
		p.Pack = pack
	}
	if lim.N <= 0 {
		return nil, &letta.Error{Kind: letta.KindTooLarge, Message: fmt.Sprintf("a push may be at most %d bytes", MaxPushBytes)}
	}
	return p, nil
}

// Report is the outcome of a push: "" (ok) or why not, per ref in the
// push's order, and the unpack status.
type Report struct {
	Unpack string   `json:"unpack"`
	Refs   []string `json:"refs"`
}

// Accepted says whether every ref update was made.
func (r Report) Accepted() bool {
	for _, e := range r.Refs {
		if e != "" {
			return false
		}
	}
	return r.Unpack == ""
}

// WriteReport writes a push's status report (if the client asked for one).
func WriteReport(p *Push, r Report, w io.Writer) error {
	if !p.Report {
		return nil
	}
	rs := packp.NewReportStatus()
	rs.UnpackStatus = "ok"
	if r.Unpack != "" {
		rs.UnpackStatus = r.Unpack
	}
	for i, c := range p.Commands {
		status := "ok"
		if i < len(r.Refs) && r.Refs[i] != "" {
			status = r.Refs[i]
		} else if r.Unpack != "" {
			status = "unpacker error"
		}
		rs.CommandStatuses = append(rs.CommandStatuses, &packp.CommandStatus{ReferenceName: plumbing.ReferenceName(c.Name), Status: status})
	}
	var buf bytes.Buffer
	if err := rs.Encode(&buf); err != nil {
		return fmt.Errorf("memfs: status report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
