package agent

import (
	"context"
	"slices"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Blocks lists an agent's blocks, sorted by block id as Letta does.
func (s *Agents) Blocks(ctx context.Context, agentID string, p letta.Page) ([]letta.Block, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, memory.MaxBlocksPerAgent)
	if err != nil {
		return nil, err
	}
	var out []letta.Block
	err = s.c.read(ctx, func(txn kv.Txn) error {
		blocks, err := existingAgentBlocks(txn, agentID)
		if err != nil {
			return err
		}
		byID := map[string]letta.Block{}
		ids := make([]string, 0, len(blocks))
		for _, b := range blocks {
			ids = append(ids, b.ID)
			byID[b.ID] = b.Block
		}
		slices.Sort(ids)
		if p.Order == letta.Desc {
			slices.Reverse(ids)
		}
		out = []letta.Block{}
		for _, id := range pageOfIDs(ids, p) {
			out = append(out, byID[id])
		}
		return nil
	})
	return out, err
}

// existingAgentBlocks returns the blocks of an agent that must exist.
func existingAgentBlocks(txn kv.Txn, agentID string) ([]*schema.Block, error) {
	if _, err := schema.GetAgent(txn, agentID); err != nil {
		return nil, err
	}
	return memory.AgentBlocks(txn, agentID)
}

// labelled returns the agent's block with label, or Letta's not-found.
func labelled(blocks []*schema.Block, agentID, label string) (*schema.Block, error) {
	i := slices.IndexFunc(blocks, func(b *schema.Block) bool { return b.Label == label })
	if i < 0 {
		return nil, letta.NotFoundf("No block with label '%s' found for agent '%s'", letta.Clip(label), agentID)
	}
	return blocks[i], nil
}

// Block returns the agent's block with label.
func (s *Agents) Block(ctx context.Context, agentID, label string) (*letta.Block, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	var out *letta.Block
	err := s.c.read(ctx, func(txn kv.Txn) error {
		blocks, err := existingAgentBlocks(txn, agentID)
		if err != nil {
			return err
		}
		b, err := labelled(blocks, agentID, label)
		if err == nil {
			out = &b.Block
		}
		return err
	})
	return out, err
}

// labelledUpdate is the payload of an edit of an agent's block by label.
type labelledUpdate struct {
	AgentID string            `json:"agent_id"`
	Label   string            `json:"label"`
	Update  letta.BlockUpdate `json:"update"`
}

// UpdateBlock edits the agent's block with label. The edit is seen by
// every agent the block is attached to. It runs on the block's actor, as
// edits through the block's own route do, so that edits of a block shared
// by many agents queue one behind another instead of conflicting.
func (s *Agents) UpdateBlock(ctx context.Context, agentID, label string, u letta.BlockUpdate) (*letta.Block, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if err := memory.CheckUpdate(u); err != nil {
		return nil, err
	}
	var b letta.Block
	lu := labelledUpdate{AgentID: agentID, Label: label, Update: u}
	var blockID string
	if err := s.c.read(ctx, func(txn kv.Txn) error {
		blocks, err := existingAgentBlocks(txn, agentID)
		if err != nil {
			return err
		}
		b, err := labelled(blocks, agentID, label)
		if err == nil {
			blockID = b.ID
		}
		return err
	}); err != nil {
		// A retry of an edit that was made, its block detached or its
		// agent deleted since, gets the edit's answer.
		found, aerr := s.c.answered(ctx, schema.BlockNamespace, opUpdateBlockByLabel, lu, &b)
		switch {
		case aerr != nil:
			return nil, aerr
		case found:
			return &b, nil
		}
		return nil, err
	}
	if err := s.c.invoke(ctx, schema.BlockActor(blockID), opUpdateBlockByLabel, lu, &b); err != nil {
		return nil, err
	}
	s.recompileAfterEdit(ctx, agentID)
	return &b, nil
}

// updateBlockByLabel applies an edit by label on the block's actor, if the
// block is still the agent's block with that label.
func updateBlockByLabel(call *actor.Call) ([]byte, error) {
	lu, err := decodePayload[labelledUpdate](call)
	if err != nil {
		return nil, err
	}
	blocks, err := existingAgentBlocks(call.Txn, lu.AgentID)
	if err != nil {
		return nil, err
	}
	b, err := labelled(blocks, lu.AgentID, lu.Label)
	if err == nil && b.ID != call.ID.Key {
		// Relabelled or detached since the caller looked it up.
		err = letta.NotFoundf("No block with label '%s' found for agent '%s'", letta.Clip(lu.Label), lu.AgentID)
	}
	if err != nil {
		return nil, err
	}
	if err := memory.Update(call.Txn, b, lu.Update, call.Now); err != nil {
		return nil, err
	}
	return schema.Encode(b.Block)
}

// blockRef is the payload of attach and detach.
type blockRef struct {
	BlockID string `json:"block_id"`
}

// AttachBlock attaches a block to an agent; attaching it again is a no-op.
func (s *Agents) AttachBlock(ctx context.Context, agentID, blockID string) (*letta.AgentState, error) {
	return s.attachment(ctx, agentID, blockID, opAttachBlock)
}

// DetachBlock detaches a block from an agent.
func (s *Agents) DetachBlock(ctx context.Context, agentID, blockID string) (*letta.AgentState, error) {
	return s.attachment(ctx, agentID, blockID, opDetachBlock)
}

func (s *Agents) attachment(ctx context.Context, agentID, blockID, op string) (*letta.AgentState, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if err := checkBlockIDs("block_id", []string{blockID}); err != nil {
		return nil, err
	}
	var st letta.AgentState
	if err := s.c.invoke(ctx, schema.AgentActor(agentID), op, blockRef{BlockID: blockID}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func attachBlock(_ *core, call *actor.Call, a *schema.Agent, ref blockRef) ([]byte, error) {
	blocks, attached, err := attachmentOf(call.Txn, a, ref.BlockID, true)
	if err != nil {
		return nil, err
	}
	if !attached {
		if len(blocks) >= memory.MaxBlocksPerAgent {
			return nil, letta.Invalidf("an agent may have at most %d blocks", memory.MaxBlocksPerAgent)
		}
		if err := schema.Attach(call.Txn, a, ref.BlockID); err != nil {
			return nil, err
		}
	}
	a.UpdatedAt = call.Now
	return commitAgent(call, a)
}

func detachBlock(_ *core, call *actor.Call, a *schema.Agent, ref blockRef) ([]byte, error) {
	_, attached, err := attachmentOf(call.Txn, a, ref.BlockID, false)
	if err != nil {
		return nil, err
	}
	if !attached {
		return nil, letta.NotFoundf("No block with id '%s' found for agent '%s'", ref.BlockID, a.ID)
	}
	if err := schema.Detach(call.Txn, a.ID, ref.BlockID); err != nil {
		return nil, err
	}
	a.UpdatedAt = call.Now
	return commitAgent(call, a)
}

// attachmentOf reads the agent's blocks and whether blockID (which must
// exist) is one of them; attaching, another block with its label is a
// conflict.
func attachmentOf(txn kv.Txn, a *schema.Agent, blockID string, attaching bool) ([]*schema.Block, bool, error) {
	blk, err := schema.GetBlock(txn, blockID)
	if err != nil {
		return nil, false, err
	}
	blocks, err := memory.AgentBlocks(txn, a.ID)
	if err != nil {
		return nil, false, err
	}
	attached := false
	for _, b := range blocks {
		if b.ID == blockID {
			attached = true
		} else if attaching && b.Label == blk.Label {
			return nil, false, letta.Conflictf("agent %s already has a block with label %q (%s)", a.ID, blk.Label, b.ID)
		}
	}
	return blocks, attached, nil
}

// replaceBlocks makes the agent's attachments exactly ids, keeping the
// positions of blocks that stay.
func replaceBlocks(txn kv.Txn, a *schema.Agent, ids []string) error {
	current, err := memory.AgentBlocks(txn, a.ID)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	labels := map[string]string{}
	for _, id := range ids {
		if want[id] {
			continue
		}
		b, err := schema.GetBlock(txn, id)
		if err != nil {
			return err
		}
		if other, dup := labels[b.Label]; dup {
			return letta.Conflictf("blocks %s and %s both have label %q", other, id, b.Label)
		}
		want[id], labels[b.Label] = true, id
	}
	if len(want) > memory.MaxBlocksPerAgent {
		return letta.Invalidf("an agent may have at most %d blocks, got %d", memory.MaxBlocksPerAgent, len(want))
	}
	have := map[string]bool{}
	for _, b := range current {
		have[b.ID] = true
		if !want[b.ID] {
			if err := schema.Detach(txn, a.ID, b.ID); err != nil {
				return err
			}
		}
	}
	for _, id := range ids {
		if want[id] && !have[id] {
			have[id] = true
			if err := schema.Attach(txn, a, id); err != nil {
				return err
			}
		}
	}
	return nil
}
