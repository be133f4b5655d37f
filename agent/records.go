package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// agentRecord is an agent's actor state: everything but its blocks, which
// are shared and stored apart.
type agentRecord struct {
	ID                     string           `json:"id"`
	Name                   string           `json:"name"`
	System                 string           `json:"system"`
	AgentType              string           `json:"agent_type"`
	Description            *string          `json:"description"`
	Metadata               map[string]any   `json:"metadata"`
	Tags                   []string         `json:"tags"`
	LLMConfig              LLMConfig        `json:"llm_config"`
	EmbeddingConfig        *EmbeddingConfig `json:"embedding_config"`
	ModelSettings          json.RawMessage  `json:"model_settings,omitempty"`
	CompactionSettings     json.RawMessage  `json:"compaction_settings,omitempty"`
	ToolRules              []any            `json:"tool_rules"`
	MessageIDs             []string         `json:"message_ids"`
	ProjectID              *string          `json:"project_id"`
	IdentityIDs            []string         `json:"identity_ids"`
	MessageBufferAutoclear bool             `json:"message_buffer_autoclear"`
	EnableSleeptime        *bool            `json:"enable_sleeptime"`
	LastStopReason         *string          `json:"last_stop_reason"`
	Timezone               string           `json:"timezone"`
	Hidden                 *bool            `json:"hidden"`
	CreatedAt              time.Time        `json:"created_at"`
	UpdatedAt              time.Time        `json:"updated_at"`
	// NextBlockPosition orders attachments: each attach takes the next one.
	NextBlockPosition int64 `json:"next_block_position"`
	// IncludeBaseTools false leaves out the agent type's built-in tools;
	// ToolNames are tools named at creation (built-in ones are offered).
	IncludeBaseTools *bool    `json:"include_base_tools,omitempty"`
	ToolNames        []string `json:"tool_names,omitempty"`
}

// blockRecord is a stored block: the API shape plus what only storage needs.
type blockRecord struct {
	Block
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// attachedBlock is a block as one agent sees it: with its position.
type attachedBlock struct {
	position int64
	block    *blockRecord
}

func decodeAgent(data []byte) (*agentRecord, error) {
	var rec agentRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode agent record: %w", err)
	}
	return &rec, nil
}

// readAgent returns the committed record of agentID, or a not-found error.
func readAgent(txn kv.Txn, agentID string) (*agentRecord, error) {
	data, err := txn.Get(actor.StateKey(agentActor(agentID)))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, errAgentNotFound
	}
	if err != nil {
		return nil, err
	}
	return decodeAgent(data)
}

func readBlock(txn kv.Txn, blockID string) (*blockRecord, error) {
	data, err := txn.Get(blockKey(blockID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, errBlockNotFound
	}
	if err != nil {
		return nil, err
	}
	var b blockRecord
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("decode block %s: %w", blockID, err)
	}
	return &b, nil
}

func writeBlock(txn kv.Txn, b *blockRecord) error {
	data, err := marshal(b)
	if err != nil {
		return err
	}
	return txn.Set(blockKey(b.ID), data)
}

// agentBlocks returns the blocks attached to agentID in attachment order.
func agentBlocks(txn kv.Txn, agentID string) ([]attachedBlock, error) {
	kvs, err := txn.Scan(kv.PrefixRange(attachmentPrefix(agentID)), MaxBlocksPerAgent+1, false)
	if err != nil {
		return nil, err
	}
	if len(kvs) > MaxBlocksPerAgent {
		return nil, fmt.Errorf("agent %s has more than %d blocks attached", agentID, MaxBlocksPerAgent)
	}
	out := make([]attachedBlock, 0, len(kvs))
	for _, p := range kvs {
		pos, err := strconv.ParseInt(string(p.Value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("attachment %q: bad position: %w", p.Key, err)
		}
		blockID := idFromIndexKey(p.Key)
		b, err := readBlock(txn, blockID)
		if err != nil {
			// Attachments and blocks change in the same transactions, so a
			// dangling attachment is corruption, not a race.
			return nil, dangling(err, "agent %s: attached block %s", agentID, blockID)
		}
		out = append(out, attachedBlock{position: pos, block: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].position < out[j].position })
	return out, nil
}

// attach links a block to an agent in both directions.
func attach(txn kv.Txn, rec *agentRecord, blockID string) error {
	pos := rec.NextBlockPosition
	rec.NextBlockPosition++
	if err := txn.Set(attachmentKey(rec.ID, blockID), strconv.AppendInt(nil, pos, 10)); err != nil {
		return err
	}
	return txn.Set(blockAgentKey(blockID, rec.ID), nil)
}

func detach(txn kv.Txn, agentID, blockID string) error {
	if err := txn.Delete(attachmentKey(agentID, blockID)); err != nil {
		return err
	}
	return txn.Delete(blockAgentKey(blockID, agentID))
}

// renderAgent builds the API shape of an agent. blocks may be nil when the
// caller did not ask for them.
func renderAgent(rec *agentRecord, blocks []attachedBlock) *AgentState {
	bs := make([]Block, len(blocks))
	for i, b := range blocks {
		bs[i] = b.block.Block
	}
	maxFiles, window := fileDefaults(rec.LLMConfig.ContextWindow)
	var modelSettings any = modelSettingsFor(rec.LLMConfig)
	if len(rec.ModelSettings) > 0 {
		modelSettings = rec.ModelSettings
	}
	var compaction any
	if len(rec.CompactionSettings) > 0 {
		compaction = rec.CompactionSettings
	}
	var embedding *string
	if rec.EmbeddingConfig != nil {
		embedding = rec.EmbeddingConfig.Handle
	}
	return &AgentState{
		CreatedAt:                    Timestamp{rec.CreatedAt},
		UpdatedAt:                    Timestamp{rec.UpdatedAt},
		ID:                           rec.ID,
		Name:                         rec.Name,
		ToolRules:                    nonNil(rec.ToolRules),
		MessageIDs:                   nonNil(rec.MessageIDs),
		System:                       rec.System,
		AgentType:                    rec.AgentType,
		LLMConfig:                    rec.LLMConfig,
		EmbeddingConfig:              rec.EmbeddingConfig,
		Model:                        rec.LLMConfig.Handle,
		Embedding:                    embedding,
		ModelSettings:                modelSettings,
		CompactionSettings:           compaction,
		Description:                  rec.Description,
		Metadata:                     rec.Metadata,
		Memory:                       Memory{AgentType: rec.AgentType, Blocks: bs, FileBlocks: []any{}},
		Blocks:                       bs,
		Tools:                        []any{},
		Sources:                      []any{},
		Tags:                         nonNil(rec.Tags),
		ToolExecEnvironmentVariables: []any{},
		Secrets:                      []any{},
		ProjectID:                    rec.ProjectID,
		IdentityIDs:                  nonNil(rec.IdentityIDs),
		Identities:                   []any{},
		MessageBufferAutoclear:       rec.MessageBufferAutoclear,
		EnableSleeptime:              rec.EnableSleeptime,
		LastStopReason:               rec.LastStopReason,
		Timezone:                     rec.Timezone,
		MaxFilesOpen:                 maxFiles,
		PerFileViewWindowCharLimit:   window,
		Hidden:                       rec.Hidden,
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
