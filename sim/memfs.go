package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/agent/memfs"
)

// MemFS in the workload. Some agents keep their memory in a git repository
// (created with memfs.EnabledTag). A push fetches such an agent's
// repository over git's smart HTTP protocol, as a git client does, changes
// one block's file to a new value and pushes the commit. An accepted push
// is a write of that block (the linearizability model checks it as one);
// a refused one ("fetch first": the blocks moved since the fetch) changes
// nothing. Labels are unique in a run, so a file names one block.
//
// The audit fetches each such agent's repository (checkRepos): the files of
// the branch are the agent's blocks, file for block, and the commit of
// every acknowledged push is in the branch's history — a push acknowledged
// and then lost, or blocks and repository committed apart, is caught.

type pushOp struct{}

// memfsOdds: one agent in memfsOdds is created with a repository.
const memfsOdds = 3

func (pushOp) traits() traits { return traits{write: true, writesBlock: true, needs: needAgent} }

// generate picks an agent created with a repository; prepare picks the
// block once it has the repository.
func (pushOp) generate(c *client, op *opRecord) {
	var ids []string
	for _, id := range c.w.agents {
		if c.w.agentCreatedBy[id].MemFS {
			ids = append(ids, id)
		}
	}
	op.Agent = pick(c.rng, ids, c.w.agentLive)
	op.Value = c.token("v")
}

// prepare fetches the agent's repository and makes the push: its request
// is the receive-pack POST. Without a repository to push to (the fetch
// failed, or no file names a known block), the operation reads the agent
// instead.
func (pushOp) prepare(c *client, op *opRecord) {
	op.IdemKey = "" // a git client pushes once: it fetches again after a failure
	send := func(method, path string, body []byte) (int, []byte) {
		status, resp, _, _ := c.sys.current().serve(c.sys.cfg.OpTimeout, method, path, body)
		return status, resp
	}
	repo, err := fetchRepo(send, op.Agent)
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	if err == nil && len(repo.files) > 0 {
		names := slices.Sorted(maps.Keys(repo.files))
		name := names[c.rng.IntN(len(names))]
		label, _ := memfs.LabelOf(name)
		if block := c.w.labelBlock[label]; block != "" {
			body, commit, err := repo.push(name, op.Value)
			if err != nil {
				panic("sim: a push does not encode: " + err.Error())
			}
			op.Block, op.Label, op.Commit, op.Target = block, label, commit, op.Agent+block
			op.Method, op.Path, op.Body = "POST", repoPath(op.Agent)+"/git-receive-pack", body
			op.ContentType = "application/x-git-receive-pack-request"
			return
		}
	}
	op.Kind, op.Value = getAgentOp{}, ""
	op.set("GET", "/v1/agents/"+op.Agent, nil)
}

// parse reads the push's status report: Rejected is git's reason for a
// refused ref update, "" if it was made.
func (pushOp) parse(op *opRecord) error {
	rs := packp.NewReportStatus()
	if err := rs.Decode(bytes.NewReader(op.Resp)); err != nil {
		return fmt.Errorf("push status report: %w", err)
	}
	if rs.UnpackStatus != "ok" {
		op.Rejected = "unpack: " + rs.UnpackStatus
	}
	for _, cs := range rs.CommandStatuses {
		if cs.Status != "ok" {
			op.Rejected = cs.Status
		}
	}
	return nil
}

func (pushOp) learn(*world, *opRecord, *opRecord) {}

// model: a push that may have been accepted wrote its block; a 404 (the
// agent or its repository is gone) and a refused push did nothing.
func (pushOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	if op.Block == "" || op.Status == 404 || op.Out == okOutcome && op.Rejected != "" {
		return
	}
	b.add(op, blockObj(op.Block), modelOp{kind: blockWrite, result: res, value: op.Value})
}

// repoPath is the path of an agent's repository.
func repoPath(agentID string) string { return "/v1/git/" + agentID + "/state.git" }

// fetchedRepo is a repository as a fetch brought it: its branch's commit,
// every object of its history, and the blob of each top-level file.
type fetchedRepo struct {
	head  plumbing.Hash
	st    *memory.Storage
	tree  *object.Tree
	files map[string]string // top-level file name -> content
}

// fetchRepo fetches an agent's repository through send, as git clones: the
// ref advertisement, then a pack of everything the branch needs.
func fetchRepo(send func(method, path string, body []byte) (int, []byte), agentID string) (*fetchedRepo, error) {
	status, body := send("GET", repoPath(agentID)+"/info/refs?service="+memfs.UploadPack, nil)
	if status != 200 {
		return nil, fmt.Errorf("info/refs: %d", status)
	}
	ar := packp.NewAdvRefs()
	if err := ar.Decode(bytes.NewReader(body)); err != nil {
		return nil, fmt.Errorf("info/refs: %w", err)
	}
	r := &fetchedRepo{head: ar.References[memfs.Branch.String()], st: memory.NewStorage(), files: map[string]string{}}
	if r.head.IsZero() {
		return r, nil
	}
	req := packp.NewUploadPackRequest()
	req.Wants = []plumbing.Hash{r.head}
	var reqBody bytes.Buffer
	if err := req.UploadRequest.Encode(&reqBody); err != nil {
		return nil, err
	}
	if err := pktline.NewEncoder(&reqBody).EncodeString("done\n"); err != nil {
		return nil, err
	}
	status, body = send("POST", repoPath(agentID)+"/"+memfs.UploadPack, reqBody.Bytes())
	if status != 200 {
		return nil, fmt.Errorf("upload-pack: %d", status)
	}
	// The answer is a NAK, then the pack (no side band); the scanner
	// reads no further than its line.
	rd := bytes.NewReader(body)
	if sc := pktline.NewScanner(rd); !sc.Scan() || string(sc.Bytes()) != "NAK\n" {
		return nil, errors.New("upload-pack: no NAK")
	}
	if err := packfile.UpdateObjectStorage(r.st, rd); err != nil {
		return nil, fmt.Errorf("upload-pack: %w", err)
	}
	commit, err := object.GetCommit(r.st, r.head)
	if err != nil {
		return nil, err
	}
	if r.tree, err = commit.Tree(); err != nil {
		return nil, err
	}
	for _, e := range r.tree.Entries {
		if e.Mode != filemode.Regular {
			continue
		}
		f, err := r.tree.TreeEntryFile(&e)
		if err != nil {
			return nil, err
		}
		if r.files[e.Name], err = f.Contents(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// push returns a receive-pack request that moves the branch to a new
// commit in which file name holds value (its front matter kept), and the
// commit's hash.
func (r *fetchedRepo) push(name, value string) ([]byte, string, error) {
	content := r.files[name]
	front := content[:len(content)-len(memfs.Parse(content).Value)]
	var hashes []plumbing.Hash
	put := func(encode func(plumbing.EncodedObject) error) (plumbing.Hash, error) {
		o := r.st.NewEncodedObject()
		if err := encode(o); err != nil {
			return plumbing.ZeroHash, err
		}
		h, err := r.st.SetEncodedObject(o)
		hashes = append(hashes, h)
		return h, err
	}
	blob, err := put(func(o plumbing.EncodedObject) error {
		o.SetType(plumbing.BlobObject)
		w, err := o.Writer()
		if err == nil {
			_, err = io.WriteString(w, front+value)
		}
		if err == nil {
			err = w.Close()
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	tree := &object.Tree{Entries: slices.Clone(r.tree.Entries)}
	for i := range tree.Entries {
		if tree.Entries[i].Name == name {
			tree.Entries[i].Hash = blob
		}
	}
	treeHash, err := put(tree.Encode)
	if err != nil {
		return nil, "", err
	}
	sig := object.Signature{Name: "sim", Email: "sim@kelpie.invalid", When: time.Unix(1_800_000_000, 0).UTC()}
	commit := &object.Commit{Author: sig, Committer: sig, Message: "sim push " + value, TreeHash: treeHash, ParentHashes: []plumbing.Hash{r.head}}
	next, err := put(commit.Encode)
	if err != nil {
		return nil, "", err
	}
	var pack bytes.Buffer
	if _, err := packfile.NewEncoder(&pack, r.st, false).Encode(hashes, memfs.MaxPackWindow); err != nil {
		return nil, "", err
	}
	req := packp.NewReferenceUpdateRequest()
	if err := req.Capabilities.Set(capability.ReportStatus); err != nil {
		return nil, "", err
	}
	req.Commands = []*packp.Command{{Name: memfs.Branch, Old: r.head, New: next}}
	req.Packfile = io.NopCloser(&pack)
	var body bytes.Buffer
	err = req.Encode(&body)
	return body.Bytes(), next.String(), err
}

// history returns the commits of the branch's history.
func (r *fetchedRepo) history() (map[string]bool, error) {
	out := map[string]bool{}
	if r.head.IsZero() {
		return out, nil
	}
	c, err := object.GetCommit(r.st, r.head)
	if err != nil {
		return nil, err
	}
	err = object.NewCommitPreorderIter(c, nil, nil).ForEach(func(c *object.Commit) error {
		out[c.Hash.String()] = true
		return nil
	})
	return out, err
}

// repoAudit is what the audit read of an agent's repository: the fetch,
// and the agent's blocks read after it.
type repoAudit struct {
	err     error // the fetch failed
	excused bool  // a damaged value was on the path of a failed read
	commits map[string]bool
	files   map[string]string
	blocks  []blockJSON
	status  int // of the blocks' read
}

// repos fetches the repository of each agent created with one and reads
// its blocks.
func (r *auditReader) repos(w *world, agents []string) map[string]*repoAudit {
	out := map[string]*repoAudit{}
	for _, id := range agents {
		w.mu.Lock()
		has := w.agentCreatedBy[id].MemFS
		w.mu.Unlock()
		if !has {
			continue
		}
		ra := &repoAudit{}
		out[id] = ra
		send := func(method, path string, body []byte) (int, []byte) {
			status, resp, excused := r.doOwned(method, path, body)
			ra.excused = ra.excused || excused
			return status, resp
		}
		repo, err := fetchRepo(send, id)
		if err == nil {
			ra.files = repo.files
			ra.commits, err = repo.history()
		}
		ra.err = err
		status, body, _ := r.get(fmt.Sprintf("/v1/agents/%s/core-memory/blocks?limit=%d", id, agent.MaxListLimit))
		ra.status = status
		if status == 200 && json.Unmarshal(body, &ra.blocks) != nil {
			ra.status = 500
		}
	}
	return out
}

// checkRepos: each repository the audit fetched holds its agent's blocks,
// file for block, and the commit of every acknowledged push to it.
func (c *checker) checkRepos(a *audit) {
	if a == nil {
		return
	}
	pushed := map[string][]*opRecord{}
	for _, op := range c.ops {
		switch {
		case op.Kind != (pushOp{}) || op.Out != okOutcome:
		case op.Rejected != "":
			c.count("pushes_refused", 1)
		default:
			pushed[op.Agent] = append(pushed[op.Agent], op)
		}
	}
	for _, id := range sortedKeys(a.repos) {
		ra := a.repos[id]
		switch {
		case ra.err != nil && ra.excused:
			continue
		case ra.err != nil:
			if strings.Contains(ra.err.Error(), ": 404") {
				continue // the agent is gone
			}
			c.report("memfs", fmt.Sprintf("agent %s: the audit could not fetch its repository: %v", id, ra.err), "")
			continue
		case ra.status != 200:
			continue
		}
		c.count("repos_fetched", 1)
		for _, op := range pushed[id] {
			c.count("pushes_acked", 1)
			if !ra.commits[op.Commit] {
				c.report("memfs", fmt.Sprintf("agent %s: commit %s of push op #%d was acknowledged, and the branch's history lacks it", id, op.Commit, op.ID), c.historyOf(id, op.ID))
			}
		}
		files := map[string]bool{}
		for _, b := range ra.blocks {
			name, ok := memfs.PathOf(b.Label)
			if !ok {
				continue
			}
			files[name] = true
			content, ok := ra.files[name]
			switch {
			case !ok:
				c.report("memfs", fmt.Sprintf("agent %s: block %s (label %q) has no file %s in the repository", id, b.ID, b.Label, name), c.historyOf(b.ID, -1))
			case memfs.Parse(content).Value != b.Value:
				c.report("memfs", fmt.Sprintf("agent %s: file %s says %q, block %s holds %q", id, name, memfs.Parse(content).Value, b.ID, b.Value), c.historyOf(b.ID, -1))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(ra.files)) {
			if _, isBlock := memfs.LabelOf(name); isBlock && !files[name] {
				c.report("memfs", fmt.Sprintf("agent %s: file %s of the repository is no block of the agent", id, name), "")
			}
		}
	}
}
