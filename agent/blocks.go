package agent

import (
	"context"
	"slices"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Blocks is the surface of memory blocks, shared between agents.
type Blocks struct{ c *core }

// DefaultBlockListLimit is Letta's default page size for blocks.
const DefaultBlockListLimit = 50

// Create creates a standalone block.
func (s *Blocks) Create(ctx context.Context, cb letta.CreateBlock) (*letta.Block, error) {
	if err := memory.CheckCreate("block", cb); err != nil {
		return nil, err
	}
	id, err := s.c.newIDFor(ctx, "block")
	if err != nil {
		return nil, err
	}
	var b letta.Block
	if err := s.c.invoke(ctx, schema.BlockActor(id), opCreateBlock, cb, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Get returns a block.
func (s *Blocks) Get(ctx context.Context, id string) (*letta.Block, error) {
	if err := checkBlockIDs("block_id", []string{id}); err != nil {
		return nil, err
	}
	var out *letta.Block
	err := s.c.read(ctx, func(txn kv.Txn) error {
		b, err := schema.GetBlock(txn, id)
		if err == nil {
			out = &b.Block
		}
		return err
	})
	return out, err
}

// Update edits a block; every agent it is attached to sees the edit.
func (s *Blocks) Update(ctx context.Context, id string, u letta.BlockUpdate) (*letta.Block, error) {
	if err := checkBlockIDs("block_id", []string{id}); err != nil {
		return nil, err
	}
	if err := memory.CheckUpdate(u); err != nil {
		return nil, err
	}
	var b letta.Block
	if err := s.c.invoke(ctx, schema.BlockActor(id), opUpdateBlock, u, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Delete detaches a block from every agent and deletes it.
func (s *Blocks) Delete(ctx context.Context, id string) error {
	if err := checkBlockIDs("block_id", []string{id}); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.BlockActor(id), opDeleteBlock, nil, nil)
}

// BlockFilter narrows a listing of blocks.
type BlockFilter struct {
	Label        string
	TemplateName string
	ProjectID    string
	Tags         []string
	MatchAllTags bool
	// TemplatesOnly lists templates; otherwise templates are left out.
	TemplatesOnly bool
}

func (f BlockFilter) match(b *schema.Block) bool {
	is := func(p *string, want string) bool { return p != nil && *p == want }
	switch {
	case b.Hidden != nil && *b.Hidden, b.IsTemplate != f.TemplatesOnly:
		return false
	case f.Label != "" && b.Label != f.Label:
		return false
	case f.TemplateName != "" && !is(b.TemplateName, f.TemplateName):
		return false
	case f.ProjectID != "" && !is(b.ProjectID, f.ProjectID):
		return false
	}
	return memory.MatchTags(b.Tags, f.Tags, f.MatchAllTags)
}

// blockIndex lists blocks by creation time.
var blockIndex = index[*schema.Block]{
	prefix: schema.BlockIndex.Prefix, idPrefix: "block", get: schema.GetBlock,
	created: func(b *schema.Block) time.Time { return b.CreatedAt },
}

// List lists blocks by creation time.
func (s *Blocks) List(ctx context.Context, f BlockFilter, p letta.Page) ([]letta.Block, error) {
	p, err := checkPage(p, DefaultBlockListLimit)
	if err != nil {
		return nil, err
	}
	out := []letta.Block{}
	size := 0
	err = s.c.read(ctx, func(txn kv.Txn) error {
		return listIndex(txn, blockIndex, p, func(b *schema.Block) (bool, error) {
			if f.match(b) {
				out, size = append(out, b.Block), size+blockSize(&b.Block)
			}
			return !p.Full(len(out), size), nil
		})
	})
	return out, err
}

// Count counts every block, templates and hidden ones included, as
// Letta's count does, from the count shards.
func (s *Blocks) Count(ctx context.Context) (int, error) {
	var n int
	err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		n, err = schema.Total(txn, schema.CountedBlocks)
		return err
	})
	return n, err
}

// Agents lists the agents a block is attached to, by creation time. A
// block that does not exist has none, as in Letta.
func (s *Blocks) Agents(ctx context.Context, blockID string, p letta.Page, withBlocks bool) ([]*letta.AgentState, error) {
	if err := checkBlockIDs("block_id", []string{blockID}); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultAgentListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.AgentState{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		agents, err := blockAgents(txn, blockID)
		if err != nil {
			return err
		}
		size := 0
		for _, a := range pageOfAgents(agents, p) {
			st, err := loadAgent(txn, a, withBlocks)
			if err != nil {
				return err
			}
			if out, size = append(out, st), size+agentSize(st); p.Full(len(out), size) {
				break
			}
		}
		return nil
	})
	return out, err
}

// blockSize is about what a block's JSON takes: its value and its other
// fields.
func blockSize(b *letta.Block) int {
	n := 512 + len(b.Value)
	if b.Description != nil {
		n += len(*b.Description)
	}
	return n
}

// blockAgents returns the agents a block is attached to, by creation time.
func blockAgents(txn kv.Txn, blockID string) ([]*schema.Agent, error) {
	links, err := txn.Scan(kv.PrefixRange(schema.BlockAgentsOf(blockID)), 0, false)
	if err != nil {
		return nil, err
	}
	agents := make([]*schema.Agent, 0, len(links))
	for _, l := range links {
		a, err := schema.GetAgent(txn, schema.LastPart(l.Key))
		if err != nil {
			return nil, schema.Dangling(err, "attachment %q", l.Key)
		}
		agents = append(agents, a)
	}
	slices.SortFunc(agents, func(x, y *schema.Agent) int {
		return slices.Compare(schema.IndexKey("", x.CreatedAt, x.ID), schema.IndexKey("", y.CreatedAt, y.ID))
	})
	return agents, nil
}

// pageOfAgents applies a page (cursors by agent id) to agents sorted by
// creation time.
func pageOfAgents(agents []*schema.Agent, p letta.Page) []*schema.Agent {
	if p.Order == letta.Desc {
		agents = slices.Clone(agents)
		slices.Reverse(agents)
	}
	keys := make([]string, len(agents))
	byKey := map[string]*schema.Agent{}
	for i, a := range agents {
		keys[i] = string(schema.IndexKey("", a.CreatedAt, a.ID))
		byKey[keys[i]] = a
	}
	cursorKey := func(id string) string {
		for k, a := range byKey {
			if a.ID == id {
				return k
			}
		}
		return "" // unknown cursors are ignored
	}
	page := letta.Page{Before: cursorKey(p.Before), After: cursorKey(p.After), Limit: p.Limit, Order: p.Order}
	var out []*schema.Agent
	for _, k := range pageOfIDs(keys, page) {
		out = append(out, byKey[k])
	}
	return out
}

func createBlock(call *actor.Call) ([]byte, error) {
	cb, err := decodePayload[letta.CreateBlock](call)
	if err != nil {
		return nil, err
	}
	id := call.ID.Key
	if _, err := schema.GetBlock(call.Txn, id); err == nil {
		return nil, letta.Conflictf("block %s already exists", id)
	}
	b := memory.NewBlock(id, cb, call.Now)
	if err := schema.CreateBlock(call.Txn, b); err != nil {
		return nil, err
	}
	return schema.Encode(b.Block)
}

func updateBlock(call *actor.Call) ([]byte, error) {
	u, err := decodePayload[letta.BlockUpdate](call)
	if err != nil {
		return nil, err
	}
	b, err := schema.GetBlock(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	if err := memory.Update(call.Txn, b, u, call.Now); err != nil {
		return nil, err
	}
	return schema.Encode(b.Block)
}

func deleteBlock(call *actor.Call) ([]byte, error) {
	b, err := schema.GetBlock(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	return nil, schema.DeleteBlock(call.Txn, b)
}
