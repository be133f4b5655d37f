package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// Operations of the agent actor.
const (
	opCreate      = "create"
	opUpdate      = "update"
	opDelete      = "delete"
	opAttachBlock = "attach_block"
	opDetachBlock = "detach_block"
	opUpdateBlock = "update_block"
)

type blockRef struct {
	BlockID string `json:"block_id"`
}

type labelledUpdate struct {
	Label  string      `json:"label"`
	Update BlockUpdate `json:"update"`
}

// env is what behaviors need besides the call: randomness for new ids and
// names, and the default model handle.
type env struct {
	rand         io.Reader
	defaultModel string
}

func (e *env) newID(prefix string) (string, error) {
	u, err := uuid.NewRandomFromReader(e.rand)
	if err != nil {
		return "", fmt.Errorf("new %s id: %w", prefix, err)
	}
	return prefix + "-" + u.String(), nil
}

// idForKey derives a UUIDv4-shaped id from an idempotency key, so that a
// retried create addresses the same actor as the first attempt and finds its
// idempotency record there.
func idForKey(prefix, key string) string {
	sum := sha256.Sum256([]byte("create\x00" + prefix + "\x00" + key))
	sum[6] = sum[6]&0x0f | 0x40 // version 4
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	return prefix + "-" + uuid.UUID(sum[:16]).String()
}

// marshal encodes v as JSON without escaping <, > and &: stored records and
// results stay the size of what the client sent.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// agentBehavior is the agent actor. Its state is *agentRecord, nil when the
// agent does not exist.
type agentBehavior struct{ env *env }

func (agentBehavior) Decode(_ actor.ID, data []byte) (any, error) {
	if data == nil {
		return (*agentRecord)(nil), nil
	}
	return decodeAgent(data)
}

func (agentBehavior) Encode(state any) ([]byte, error) { return marshal(state.(*agentRecord)) }

func (b agentBehavior) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	// Letta's timestamps have microsecond precision; storing exactly what
	// is rendered keeps every read equal to what a write returned.
	call.Now = call.Now.UTC().Truncate(time.Microsecond)
	rec, _ := call.State.(*agentRecord)
	if call.Op == opCreate {
		if rec != nil {
			return nil, conflictf("agent %s already exists", call.ID.Key)
		}
		return b.create(call)
	}
	if rec == nil {
		return nil, errAgentNotFound
	}
	switch call.Op {
	case opUpdate:
		var req UpdateAgentRequest
		if err := json.Unmarshal(call.Payload, &req); err != nil {
			return nil, err
		}
		return b.update(call, rec, req)
	case opDelete:
		return nil, deleteAgent(call, rec)
	case opAttachBlock, opDetachBlock:
		var ref blockRef
		if err := json.Unmarshal(call.Payload, &ref); err != nil {
			return nil, err
		}
		return attachOrDetach(call, rec, ref.BlockID, call.Op == opAttachBlock)
	case opUpdateBlock:
		var lu labelledUpdate
		if err := json.Unmarshal(call.Payload, &lu); err != nil {
			return nil, err
		}
		return updateAgentBlock(call, rec, lu)
	default:
		if data, ok, err := b.invokeTurnOp(call, rec); ok {
			return data, err
		}
	}
	return nil, fmt.Errorf("agent actor: unknown operation %q", call.Op)
}

func (b agentBehavior) create(call *actor.Call) ([]byte, error) {
	var req CreateAgentRequest
	if err := json.Unmarshal(call.Payload, &req); err != nil {
		return nil, err
	}
	rec, err := newAgentRecord(b.env, call.ID.Key, req, call.Now)
	if err != nil {
		return nil, err
	}
	txn := call.Txn
	labels := map[string]string{} // label -> block id
	var blockIDs []string
	for i, cb := range req.MemoryBlocks {
		id, err := b.env.newID("block")
		if err != nil {
			return nil, err
		}
		blk := newBlockRecord(id, cb, call.Now)
		if other, dup := labels[blk.Label]; dup {
			return nil, invalidf("memory_blocks[%d]: label %q is already used by block %s", i, blk.Label, other)
		}
		labels[blk.Label] = id
		if err := writeBlock(txn, blk); err != nil {
			return nil, err
		}
		if err := txn.Set(indexKey(blockIndexPrefix, blk.CreatedAt, id), nil); err != nil {
			return nil, err
		}
		blockIDs = append(blockIDs, id)
	}
	for _, id := range req.BlockIDs {
		blk, err := readBlock(txn, id)
		if err != nil {
			return nil, err
		}
		if other, dup := labels[blk.Label]; dup && other != id {
			return nil, conflictf("block %s has label %q, already used by block %s on this agent", id, blk.Label, other)
		}
		if _, dup := labels[blk.Label]; !dup {
			labels[blk.Label] = id
			blockIDs = append(blockIDs, id)
		}
	}
	if len(blockIDs) > MaxBlocksPerAgent {
		return nil, invalidf("an agent may have at most %d blocks, got %d", MaxBlocksPerAgent, len(blockIDs))
	}
	for _, id := range blockIDs {
		if err := attach(txn, rec, id); err != nil {
			return nil, err
		}
	}
	if err := txn.Set(indexKey(agentIndexPrefix, rec.CreatedAt, rec.ID), nil); err != nil {
		return nil, err
	}
	call.SetState(rec)
	blocks, err := agentBlocks(txn, rec.ID)
	if err != nil {
		return nil, err
	}
	return marshal(renderAgent(rec, blocks))
}

func (b agentBehavior) update(call *actor.Call, rec *agentRecord, req UpdateAgentRequest) ([]byte, error) {
	if err := applyAgentUpdate(rec, req); err != nil {
		return nil, err
	}
	txn := call.Txn
	if req.BlockIDs != nil {
		if err := replaceBlocks(txn, rec, *req.BlockIDs); err != nil {
			return nil, err
		}
	}
	rec.UpdatedAt = call.Now
	call.SetState(rec)
	blocks, err := agentBlocks(txn, rec.ID)
	if err != nil {
		return nil, err
	}
	return marshal(renderAgent(rec, blocks))
}

// replaceBlocks makes the agent's attachments exactly ids, keeping the
// positions of blocks that stay.
func replaceBlocks(txn kv.Txn, rec *agentRecord, ids []string) error {
	current, err := agentBlocks(txn, rec.ID)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	labels := map[string]string{}
	for _, id := range ids {
		if want[id] {
			continue
		}
		blk, err := readBlock(txn, id)
		if err != nil {
			return err
		}
		if other, dup := labels[blk.Label]; dup {
			return conflictf("blocks %s and %s both have label %q", other, id, blk.Label)
		}
		want[id], labels[blk.Label] = true, id
	}
	if len(want) > MaxBlocksPerAgent {
		return invalidf("an agent may have at most %d blocks, got %d", MaxBlocksPerAgent, len(want))
	}
	have := map[string]bool{}
	for _, ab := range current {
		have[ab.block.ID] = true
		if !want[ab.block.ID] {
			if err := detach(txn, rec.ID, ab.block.ID); err != nil {
				return err
			}
		}
	}
	for _, id := range ids {
		if want[id] && !have[id] {
			have[id] = true
			if err := attach(txn, rec, id); err != nil {
				return err
			}
		}
	}
	return nil
}

func deleteAgent(call *actor.Call, rec *agentRecord) error {
	txn := call.Txn
	atts, err := txn.Scan(kv.PrefixRange(attachmentPrefix(rec.ID)), 0, false)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if err := detach(txn, rec.ID, idFromIndexKey(a.Key)); err != nil {
			return err
		}
	}
	if err := txn.Delete(indexKey(agentIndexPrefix, rec.CreatedAt, rec.ID)); err != nil {
		return err
	}
	if err := deleteAgentData(txn, rec.ID); err != nil {
		return err
	}
	call.DeleteState()
	return nil
}

func attachOrDetach(call *actor.Call, rec *agentRecord, blockID string, attaching bool) ([]byte, error) {
	txn := call.Txn
	blk, err := readBlock(txn, blockID)
	if err != nil {
		return nil, err
	}
	blocks, err := agentBlocks(txn, rec.ID)
	if err != nil {
		return nil, err
	}
	attached := false
	for _, ab := range blocks {
		if ab.block.ID == blockID {
			attached = true
		} else if attaching && ab.block.Label == blk.Label {
			return nil, conflictf("agent %s already has a block with label %q (%s)", rec.ID, blk.Label, ab.block.ID)
		}
	}
	switch {
	case attaching && !attached:
		if len(blocks) >= MaxBlocksPerAgent {
			return nil, invalidf("an agent may have at most %d blocks", MaxBlocksPerAgent)
		}
		if err := attach(txn, rec, blockID); err != nil {
			return nil, err
		}
	case !attaching && !attached:
		return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("No block with id '%s' found for agent '%s'", blockID, rec.ID)}
	case !attaching:
		if err := detach(txn, rec.ID, blockID); err != nil {
			return nil, err
		}
	}
	rec.UpdatedAt = call.Now
	call.SetState(rec)
	if blocks, err = agentBlocks(txn, rec.ID); err != nil {
		return nil, err
	}
	return marshal(renderAgent(rec, blocks))
}

func updateAgentBlock(call *actor.Call, rec *agentRecord, lu labelledUpdate) ([]byte, error) {
	blocks, err := agentBlocks(call.Txn, rec.ID)
	if err != nil {
		return nil, err
	}
	for _, ab := range blocks {
		if ab.block.Label == lu.Label {
			if err := applyBlockUpdate(call.Txn, ab.block, lu.Update, call.Now); err != nil {
				return nil, err
			}
			return marshal(ab.block.Block)
		}
	}
	return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("No block with label '%s' found for agent '%s'", lu.Label, rec.ID)}
}

// applyBlockUpdate changes b as u says and writes it. A new label must not
// collide with another block of any agent b is attached to.
func applyBlockUpdate(txn kv.Txn, b *blockRecord, u BlockUpdate, now time.Time) error {
	if u.Label != nil && *u.Label != b.Label {
		agents, err := txn.Scan(kv.PrefixRange(blockAgentsPrefix(b.ID)), 0, false)
		if err != nil {
			return err
		}
		for _, a := range agents {
			agentID := idFromIndexKey(a.Key)
			others, err := agentBlocks(txn, agentID)
			if err != nil {
				return err
			}
			for _, o := range others {
				if o.block.ID != b.ID && o.block.Label == *u.Label {
					return conflictf("agent %s already has a block with label %q (%s)", agentID, *u.Label, o.block.ID)
				}
			}
		}
		b.Label = *u.Label
	}
	if u.Value != nil {
		b.Value = *u.Value
	}
	if u.Limit != nil {
		b.Limit = *u.Limit
	}
	if err := checkBlockValue(b.Value, b.Limit); err != nil {
		return err
	}
	if u.Description != nil {
		b.Description = u.Description
	}
	if u.Metadata != nil {
		b.Metadata = *u.Metadata
	}
	if u.ReadOnly != nil {
		b.ReadOnly = *u.ReadOnly
	}
	if u.Hidden != nil {
		b.Hidden = u.Hidden
	}
	if u.ProjectID != nil {
		b.ProjectID = u.ProjectID
	}
	if u.IsTemplate != nil {
		b.IsTemplate = *u.IsTemplate
	}
	if u.TemplateName != nil {
		b.TemplateName = u.TemplateName
	}
	if u.Tags != nil {
		b.Tags = nonNil(*u.Tags)
	}
	b.UpdatedAt = now
	return writeBlock(txn, b)
}

// Operations of the block actor.
const (
	opBlockCreate = "create"
	opBlockUpdate = "update"
	opBlockDelete = "delete"
)

// blockBehavior serialises standalone operations on one block. It keeps no
// state of its own: the block lives at its key, shared with agent actors.
type blockBehavior struct{}

func (blockBehavior) Decode(actor.ID, []byte) (any, error) { return nil, nil }
func (blockBehavior) Encode(any) ([]byte, error)           { return nil, nil }

func (blockBehavior) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	call.Now = call.Now.UTC().Truncate(time.Microsecond)
	txn, id := call.Txn, call.ID.Key
	switch call.Op {
	case opBlockCreate:
		var cb CreateBlock
		if err := json.Unmarshal(call.Payload, &cb); err != nil {
			return nil, err
		}
		if _, err := readBlock(txn, id); err == nil {
			return nil, conflictf("block %s already exists", id)
		}
		b := newBlockRecord(id, cb, call.Now)
		if err := writeBlock(txn, b); err != nil {
			return nil, err
		}
		if err := txn.Set(indexKey(blockIndexPrefix, b.CreatedAt, id), nil); err != nil {
			return nil, err
		}
		return marshal(b.Block)
	case opBlockUpdate:
		var u BlockUpdate
		if err := json.Unmarshal(call.Payload, &u); err != nil {
			return nil, err
		}
		b, err := readBlock(txn, id)
		if err != nil {
			return nil, err
		}
		if err := applyBlockUpdate(txn, b, u, call.Now); err != nil {
			return nil, err
		}
		return marshal(b.Block)
	case opBlockDelete:
		b, err := readBlock(txn, id)
		if err != nil {
			return nil, err
		}
		agents, err := txn.Scan(kv.PrefixRange(blockAgentsPrefix(id)), 0, false)
		if err != nil {
			return nil, err
		}
		for _, a := range agents {
			if err := detach(txn, idFromIndexKey(a.Key), id); err != nil {
				return nil, err
			}
		}
		if err := txn.Delete(indexKey(blockIndexPrefix, b.CreatedAt, id)); err != nil {
			return nil, err
		}
		return nil, txn.Delete(blockKey(id))
	}
	return nil, fmt.Errorf("block actor: unknown operation %q", call.Op)
}
