package agent

import (
	"bytes"
	"context"
	"io"
	"maps"
	"slices"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memfs"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Repos serves agents' memory repositories (package memfs) over git's
// smart HTTP protocol. A repository exists while its agent has the tag
// memfs.EnabledTag.
//
// Before it answers, a fetch brings the repository up to the agent's
// blocks (edits of shared blocks through /v1/blocks are committed then), so
// a clone or pull always sees the blocks as they are. A push is one agent
// actor invocation: its objects, the ref and the block changes its tree
// implies commit in one transaction, or nothing does.
type Repos struct{ c *core }

// The git services a repository answers, and the largest push.
const (
	GitUploadPack  = memfs.UploadPack
	GitReceivePack = memfs.ReceivePack
	MaxPushBytes   = memfs.MaxPushBytes
)

// Agent actor operations of memory repositories.
const (
	opSyncRepo = "sync_repo"
	opPush     = "push"
)

// noRepository is the answer for an agent without a repository.
func noRepository(agentID string) error {
	return letta.NotFoundf("Agent %s has no memory repository: tag it %q to enable git-backed memory", agentID, memfs.EnabledTag)
}

// Repository is what GET /v1/agents/{id}/repositories lists.
type Repository struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	IsPrimary   bool     `json:"is_primary"`
	Permissions []string `json:"permissions"`
}

// List lists an agent's repositories: its memory repository, if enabled.
func (s *Repos) List(ctx context.Context, agentID string) ([]Repository, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	out := []Repository{}
	err := s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, agentID)
		if err == nil && memfs.Enabled(a) {
			out = append(out, Repository{ID: "repo-" + agentID, Name: "memory", IsPrimary: true, Permissions: []string{"read", "write"}})
		}
		return err
	})
	return out, err
}

// InSync says whether an agent's repository says what its blocks hold (a
// commit of them now would change nothing): true after every push and
// every edit the agent's own actor makes; false after an edit of a shared
// block through /v1/blocks until the next fetch, push or edit of the agent.
func (s *Repos) InSync(ctx context.Context, agentID string) (bool, error) {
	behind, err := s.behind(ctx, agentID)
	return !behind, err
}

// synced makes sure the agent's repository exists and says what its
// blocks hold, committing them (one agent invocation) if it does not.
func (s *Repos) synced(ctx context.Context, agentID string) error {
	behind, err := s.behind(ctx, agentID)
	if err != nil || !behind {
		return err
	}
	return s.c.invoke(WithIdempotencyKey(ctx, ""), schema.AgentActor(agentID), opSyncRepo, struct{}{}, nil)
}

// behind says whether a commit of the agent's blocks would change its
// repository.
func (s *Repos) behind(ctx context.Context, agentID string) (bool, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return false, err
	}
	behind := false
	err := s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return err
		}
		if !memfs.Enabled(a) {
			return noRepository(agentID)
		}
		// A dry run: the snapshot's writes are discarded.
		behind, err = memfs.SyncAgent(txn, a, nil, s.c.clock.Now(), "")
		return err
	})
	return behind, err
}

// syncRepo commits the agent's blocks to its repository if they differ.
func syncRepo(_ *core, call *actor.Call, a *schema.Agent, _ struct{}) ([]byte, error) {
	if !memfs.Enabled(a) {
		return nil, noRepository(a.ID)
	}
	_, err := memfs.SyncAgent(call.Txn, a, nil, call.Now, "Update memory from its blocks")
	return nil, err
}

// InfoRefs writes the ref advertisement of service (memfs.UploadPack or
// memfs.ReceivePack).
func (s *Repos) InfoRefs(ctx context.Context, agentID, service string, w io.Writer) error {
	if service != memfs.UploadPack && service != memfs.ReceivePack {
		return letta.Invalidf("service must be %s or %s", memfs.UploadPack, memfs.ReceivePack)
	}
	if err := s.synced(ctx, agentID); err != nil {
		return err
	}
	return s.answer(ctx, agentID, w, func(st *memfs.Store, buf *bytes.Buffer) error {
		return memfs.AdvertiseRefs(st, service, buf)
	})
}

// UploadPack answers a fetch (clone, pull) request.
func (s *Repos) UploadPack(ctx context.Context, agentID string, body io.Reader, w io.Writer) error {
	if err := s.synced(ctx, agentID); err != nil {
		return err
	}
	return s.answer(ctx, agentID, w, func(st *memfs.Store, buf *bytes.Buffer) error {
		return memfs.ServeUploadPack(st, body, buf)
	})
}

// answer runs fn on the repository in a snapshot and writes what it wrote
// only if it succeeded, so that a failure can still be an HTTP error.
func (s *Repos) answer(ctx context.Context, agentID string, w io.Writer, fn func(*memfs.Store, *bytes.Buffer) error) error {
	var buf bytes.Buffer
	if err := s.c.read(ctx, func(txn kv.Txn) error { return fn(memfs.NewStore(txn, agentID), &buf) }); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// ReceivePack applies a push and writes its status report.
// (The push's invocation brings the repository up to the blocks first.)
func (s *Repos) ReceivePack(ctx context.Context, agentID string, body io.Reader, w io.Writer) error {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return err
	}
	p, err := memfs.ReadPush(body)
	if err != nil {
		return err
	}
	var rep memfs.Report
	if len(p.Commands) > 0 {
		if err := s.c.invoke(ctx, schema.AgentActor(agentID), opPush, p, &rep); err != nil {
			return err
		}
	}
	return memfs.WriteReport(p, rep, w)
}

// push applies a push in the agent's invocation: the repository is first
// brought up to the blocks (so a push based on an older state is refused,
// as git refuses one based on an old ref), then the pack is stored and
// each ref update checked and made; the update of the branch changes the
// agent's blocks to what its tree holds.
func push(_ *core, call *actor.Call, a *schema.Agent, p memfs.Push) ([]byte, error) {
	if !memfs.Enabled(a) {
		return nil, noRepository(a.ID)
	}
	blocks, err := memory.AgentBlocks(call.Txn, a.ID)
	if err != nil {
		return nil, err
	}
	if _, err := memfs.SyncAgent(call.Txn, a, blocks, call.Now, "Update memory from its blocks"); err != nil {
		return nil, err
	}
	st := memfs.NewStore(call.Txn, a.ID)
	if err := memfs.Unpack(st, p.Pack); err != nil {
		return nil, letta.Invalidf("unpack failed: %v", err)
	}
	rep := memfs.Report{Refs: make([]string, len(p.Commands))}
	for i, c := range p.Commands {
		why, err := updateRef(call, a, st, c, blocks)
		if err != nil {
			return nil, err
		}
		rep.Refs[i] = why
	}
	return schema.Encode(rep)
}

// updateRef makes one ref update of a push, or says why not ("" if made).
// blocks are the agent's blocks before the push.
func updateRef(call *actor.Call, a *schema.Agent, st *memfs.Store, c memfs.Command, blocks []*schema.Block) (string, error) {
	if plumbing.ReferenceName(c.Name) != memfs.Branch {
		return "only " + memfs.Branch.String() + " can be pushed", nil
	}
	old, next := plumbing.NewHash(c.Old), plumbing.NewHash(c.New)
	head, err := st.Head()
	if err != nil {
		return "", err
	}
	switch {
	case next.IsZero():
		return "deleting the branch is refused", nil
	case old != head:
		return "fetch first", nil
	}
	if _, err := object.GetCommit(st, next); err != nil {
		return "missing necessary objects", nil
	}
	if !head.IsZero() {
		ff, err := memfs.Descends(st, next, head)
		if err != nil || !ff {
			return "non-fast-forward", err
		}
	}
	files, err := memfs.Blocks(st, next)
	if err == nil {
		err = applyFiles(call, a, blocks, files, next.String())
	}
	if letta.KindOf(err) == letta.KindInvalid {
		return letta.Clip(err.Error()), nil
	}
	if err != nil {
		return "", err
	}
	return "", st.SetReference(plumbing.NewHashReference(memfs.Branch, next))
}

// applyFiles makes the agent's blocks what files say (by label): a block
// changes to its file (value, description, read_only, metadata, and limit
// if the file names one), a file without a block becomes a new block, and
// a block whose file is gone is detached. Nothing is written unless every
// file is acceptable.
func applyFiles(call *actor.Call, a *schema.Agent, blocks []*schema.Block, files map[string]memfs.File, commit string) error {
	txn := call.Txn
	byLabel := map[string]*schema.Block{}
	kept := 0
	for _, b := range blocks {
		byLabel[b.Label] = b
		if _, hasFile := memfs.PathOf(b.Label); !hasFile {
			kept++
		}
	}
	if n := kept + len(files); n > memory.MaxBlocksPerAgent {
		return letta.Invalidf("an agent may have at most %d blocks, the push makes %d", memory.MaxBlocksPerAgent, n)
	}
	labels := slices.Sorted(maps.Keys(files))
	format := memfs.FormatOf(labels)
	for _, label := range labels {
		if err := checkFile(label, files[label], byLabel[label]); err != nil {
			return err
		}
	}
	for _, label := range labels {
		f := files[label]
		b := byLabel[label]
		if b == nil {
			b = memory.NewBlock(letta.DerivedID("block", a.ID, label, commit), letta.CreateBlock{Label: &label}, call.Now)
			fileInto(b, f, format)
			if err := schema.CreateBlock(txn, b); err != nil {
				return err
			}
			if err := schema.Attach(txn, a, b.ID); err != nil {
				return err
			}
			continue
		}
		if f.Matches(b, format) && (f.Limit == nil || *f.Limit == b.Limit) {
			continue
		}
		fileInto(b, f, format)
		b.UpdatedAt = call.Now
		if err := schema.PutBlock(txn, b); err != nil {
			return err
		}
	}
	for _, b := range blocks {
		if _, hasFile := memfs.PathOf(b.Label); hasFile && !slices.Contains(labels, b.Label) {
			if err := schema.Detach(txn, a.ID, b.ID); err != nil {
				return err
			}
		}
	}
	a.UpdatedAt = call.Now
	call.SetState(a)
	if a.Context.SystemID != "" {
		_, _, err := window.Refresh(txn, window.Owner{Agent: a}, call.Now, window.IfChanged, false)
		return err
	}
	return nil
}

// checkFile checks that a file can be the block with label (b: the
// current one, nil if none).
func checkFile(label string, f memfs.File, b *schema.Block) error {
	if len([]rune(label)) > memory.MaxLabelChars {
		return letta.Invalidf("%s: a label may have at most %d characters", letta.Clip(label), memory.MaxLabelChars)
	}
	limit := memory.DefaultBlockLimitChars
	if b != nil {
		limit = b.Limit
	}
	if f.Limit != nil {
		if *f.Limit <= 0 || *f.Limit > memory.MaxBlockLimitChars {
			return letta.Invalidf("%s: limit must be between 1 and %d", letta.Clip(label), memory.MaxBlockLimitChars)
		}
		limit = *f.Limit
	}
	if err := memory.CheckValue(f.Value, limit); err != nil {
		return letta.Invalidf("%s: %v", letta.Clip(label), err)
	}
	return nil
}

// fileInto sets b's fields from its file: the file is the truth, so what
// it does not say is the default; a MemFS v2 file says only the value and
// the description (none for an index), the rest stays.
func fileInto(b *schema.Block, f memfs.File, format memfs.Format) {
	b.Value = f.Value
	if f.Limit != nil {
		b.Limit = *f.Limit
	}
	if format == memfs.CodeV2 {
		if f.HasDesc {
			b.Description = f.Description
		}
		return
	}
	b.Description = f.Description
	b.ReadOnly = f.ReadOnly != nil && *f.ReadOnly
	b.Metadata = f.Metadata
	if b.Metadata == nil {
		b.Metadata = map[string]any{}
	}
}
