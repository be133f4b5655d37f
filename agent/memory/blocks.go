package memory

import (
	"cmp"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of blocks.
const (
	DefaultBlockLimitChars = 100_000   // Letta's CORE_MEMORY_BLOCK_CHAR_LIMIT
	MaxBlockLimitChars     = 1_000_000 // the largest limit a block may declare
	MaxBlocksPerAgent      = 100
	MaxLabelChars          = 128
)

// Descriptions given to the conventional blocks when created without one.
var defaultDescriptions = map[string]string{
	"human":   "What you know about the person you talk with: their name, preferences and anything that helps you help them.",
	"persona": "Who you are: your personality, tone and the way you behave. Keep your responses consistent with it.",
}

// NewBlock resolves a create request into the block to store.
func NewBlock(id string, cb letta.CreateBlock, now time.Time) *schema.Block {
	limit := DefaultBlockLimitChars
	if cb.Limit != nil {
		limit = *cb.Limit
	}
	var label, value string
	if cb.Label != nil {
		label = *cb.Label
	}
	if cb.Value != nil {
		value = *cb.Value
	}
	desc := cb.Description
	if d, ok := defaultDescriptions[label]; ok && desc == nil {
		desc = &d
	}
	meta := cb.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	tags := cb.Tags
	if tags == nil {
		tags = []string{}
	}
	return &schema.Block{
		Block: letta.Block{
			ID: id, Value: value, Limit: limit, ProjectID: cb.ProjectID, TemplateName: cb.TemplateName,
			IsTemplate: cb.IsTemplate, PreserveOnMigration: cb.PreserveOnMigration, Label: label,
			ReadOnly: cb.ReadOnly, Description: desc, Metadata: meta, Hidden: cb.Hidden, Tags: tags,
		},
		CreatedAt: now,
		UpdatedAt: now,
	}
}

// AgentBlocks returns the blocks attached to an agent, in attachment order.
func AgentBlocks(txn kv.Txn, agentID string) ([]*schema.Block, error) {
	return SharedAgentBlocks(txn, agentID, nil)
}

// SharedAgentBlocks is AgentBlocks reading each block at most once per
// shared map (nil: no sharing), which it fills: a listing of agents that
// share a block holds one copy of it, not one per agent. The blocks it
// returns are shared too, so callers must not change them.
func SharedAgentBlocks(txn kv.Txn, agentID string, shared map[string]*schema.Block) ([]*schema.Block, error) {
	kvs, err := txn.Scan(kv.PrefixRange(schema.AttachmentsOf(agentID)), MaxBlocksPerAgent+1, false)
	if err != nil {
		return nil, err
	}
	if len(kvs) > MaxBlocksPerAgent {
		return nil, fmt.Errorf("agent %s has more than %d blocks attached", agentID, MaxBlocksPerAgent)
	}
	type attached struct {
		pos   int64
		block *schema.Block
	}
	all := make([]attached, 0, len(kvs))
	for _, p := range kvs {
		pos, err := schema.AttachmentPosition(p.Key, p.Value)
		if err != nil {
			return nil, err
		}
		blockID := schema.LastPart(p.Key)
		b, ok := shared[blockID]
		if !ok {
			b, err = schema.GetBlock(txn, blockID)
		}
		if err == nil && shared != nil {
			shared[blockID] = b
		}
		if err != nil {
			// Attachments and blocks change in the same transactions, so a
			// dangling attachment is corruption, not a race.
			return nil, schema.Dangling(err, "agent %s: attached block %s", agentID, blockID)
		}
		all = append(all, attached{pos, b})
	}
	slices.SortFunc(all, func(a, b attached) int { return cmp.Compare(a.pos, b.pos) })
	out := make([]*schema.Block, len(all))
	for i, a := range all {
		out[i] = a.block
	}
	return out, nil
}

// Update changes b as u says and writes it. A new label must not collide
// with another block of any agent b is attached to; the value must fit the
// limit.
func Update(txn kv.Txn, b *schema.Block, u letta.BlockUpdate, now time.Time) error {
	if u.Label != nil && *u.Label != b.Label {
		if err := checkRelabel(txn, b.ID, *u.Label); err != nil {
			return err
		}
		b.Label = *u.Label
	}
	if u.Value != nil {
		b.Value = *u.Value
	}
	if u.Limit != nil {
		b.Limit = *u.Limit
	}
	if err := CheckValue(b.Value, b.Limit); err != nil {
		return err
	}
	applyFields(b, u)
	b.UpdatedAt = now
	return schema.PutBlock(txn, b)
}

// applyFields applies the fields of u that no rule constrains.
func applyFields(b *schema.Block, u letta.BlockUpdate) {
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
		b.Tags = *u.Tags
		if b.Tags == nil {
			b.Tags = []string{}
		}
	}
}

// checkRelabel refuses a label that another block of an agent blockID is
// attached to already has.
func checkRelabel(txn kv.Txn, blockID, label string) error {
	agents, err := txn.Scan(kv.PrefixRange(schema.BlockAgentsOf(blockID)), 0, false)
	if err != nil {
		return err
	}
	for _, a := range agents {
		agentID := schema.LastPart(a.Key)
		others, err := AgentBlocks(txn, agentID)
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.ID != blockID && o.Label == label {
				return letta.Conflictf("agent %s already has a block with label %q (%s)", agentID, label, o.ID)
			}
		}
	}
	return nil
}

// CheckValue enforces a block's character limit, with the message older
// Letta servers gave.
func CheckValue(value string, limit int) error {
	if limit < 0 || limit > MaxBlockLimitChars {
		return letta.Invalidf("block limit %d is out of range: want 0 to %d characters", limit, MaxBlockLimitChars)
	}
	if !utf8.ValidString(value) {
		return letta.Invalidf("block value is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(value); n > limit {
		return letta.Invalidf("Edit failed: Exceeds %d character limit (requested %d)", limit, n)
	}
	return nil
}

// CheckCreate validates a block create request; field names it in errors.
func CheckCreate(field string, b letta.CreateBlock) error {
	if b.Label == nil {
		return letta.Invalidf("%s.label: Field required", field)
	}
	if *b.Label == "" {
		return letta.Invalidf("%s.label must not be empty", field)
	}
	if err := letta.CheckChars(field+".label", *b.Label, MaxLabelChars); err != nil {
		return err
	}
	if b.Description != nil {
		if err := letta.CheckChars(field+".description", *b.Description, letta.MaxDescriptionChars); err != nil {
			return err
		}
	}
	if err := letta.CheckTags(field+".tags", b.Tags); err != nil {
		return err
	}
	if err := letta.CheckMetadata(b.Metadata); err != nil {
		return err
	}
	limit := DefaultBlockLimitChars
	if b.Limit != nil {
		limit = *b.Limit
	}
	value := ""
	if b.Value != nil {
		value = *b.Value
	}
	return CheckValue(value, limit)
}

// CheckUpdate validates a block update on its own; Update checks the rest
// against the block.
func CheckUpdate(u letta.BlockUpdate) error {
	if u.Label != nil {
		if *u.Label == "" {
			return letta.Invalidf("label must not be empty")
		}
		if err := letta.CheckChars("label", *u.Label, MaxLabelChars); err != nil {
			return err
		}
	}
	if u.Description != nil {
		if err := letta.CheckChars("description", *u.Description, letta.MaxDescriptionChars); err != nil {
			return err
		}
	}
	if u.Tags != nil {
		if err := letta.CheckTags("tags", *u.Tags); err != nil {
			return err
		}
	}
	if u.Metadata != nil {
		if err := letta.CheckMetadata(*u.Metadata); err != nil {
			return err
		}
	}
	if u.Limit != nil && (*u.Limit < 0 || *u.Limit > MaxBlockLimitChars) {
		return letta.Invalidf("block limit %d is out of range: want 0 to %d characters", *u.Limit, MaxBlockLimitChars)
	}
	if u.Value != nil {
		return letta.CheckChars("value", *u.Value, MaxBlockLimitChars)
	}
	return nil
}
