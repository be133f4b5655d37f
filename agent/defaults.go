package agent

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// defaultSystemPrompt is the system prompt of an agent created without one.
// Kelpie writes its own; the agent's memory blocks are rendered after it.
const defaultSystemPrompt = `<base_instructions>
You are a helpful agent with a persistent memory. You remember across conversations.
<memory>
Your memory has two parts:
- Memory blocks: labelled sections (each with a description and a value) that are always in your context, below these instructions. Each block has a size limit. Keep them accurate and concise: edit them with your memory tools when you learn something worth keeping.
- External memory: past messages and archival passages that are not in your context; search them with your tools when they may help.
</memory>
Keep working, calling tools as needed, until the task is done or you need the user's input. To hand control back, answer without calling a tool.
</base_instructions>`

// Descriptions given to the conventional blocks when created without one.
var defaultBlockDescriptions = map[string]string{
	"human":   "What you know about the person you talk with: their name, preferences and anything that helps you help them.",
	"persona": "Who you are: your personality, tone and the way you behave. Keep your responses consistent with it.",
}

var (
	nameAdjectives = []string{"Amber", "Brave", "Calm", "Clever", "Curious", "Eager", "Gentle", "Happy", "Keen", "Lively", "Lucky", "Misty", "Noble", "Quiet", "Rapid", "Silver", "Steady", "Swift", "Vivid", "Witty"}
	nameNouns      = []string{"Badger", "Comet", "Falcon", "Fox", "Harbor", "Heron", "Kelpie", "Lantern", "Maple", "Meadow", "Otter", "Panda", "Pebble", "Quill", "River", "Robin", "Sparrow", "Tide", "Willow", "Wren"}
)

// randomName returns an AdjectiveNoun name, as Letta gives unnamed agents.
func randomName(r io.Reader) (string, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	n := binary.BigEndian.Uint32(b[:])
	return nameAdjectives[n%uint32(len(nameAdjectives))] + nameNouns[(n>>16)%uint32(len(nameNouns))], nil
}

func newBlockRecord(id string, cb CreateBlock, now time.Time) *blockRecord {
	limit := DefaultBlockLimitChars
	if cb.Limit != nil {
		limit = *cb.Limit
	}
	label := deref(cb.Label)
	desc := cb.Description
	if desc == nil {
		if d, ok := defaultBlockDescriptions[label]; ok {
			desc = &d
		}
	}
	meta := cb.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	return &blockRecord{
		Block: Block{
			ID:                  id,
			Value:               deref(cb.Value),
			Limit:               limit,
			ProjectID:           cb.ProjectID,
			TemplateName:        cb.TemplateName,
			IsTemplate:          cb.IsTemplate,
			PreserveOnMigration: cb.PreserveOnMigration,
			Label:               label,
			ReadOnly:            cb.ReadOnly,
			Description:         desc,
			Metadata:            meta,
			Hidden:              cb.Hidden,
			Tags:                nonNil(cb.Tags),
		},
		CreatedAt: now,
		UpdatedAt: now,
	}
}

// newAgentRecord resolves a create request into the record to store.
func newAgentRecord(e *env, id string, req CreateAgentRequest, now time.Time) (*agentRecord, error) {
	rec := &agentRecord{
		ID:                     id,
		AgentType:              DefaultAgentType,
		Description:            req.Description,
		Metadata:               req.Metadata,
		Tags:                   nonNil(req.Tags),
		ModelSettings:          jsonOrNil(req.ModelSettings),
		CompactionSettings:     jsonOrNil(req.CompactionSettings),
		ToolRules:              nonNil(req.ToolRules),
		MessageIDs:             []string{},
		ProjectID:              req.ProjectID,
		IdentityIDs:            nonNil(req.IdentityIDs),
		MessageBufferAutoclear: req.MessageBufferAutoclear,
		EnableSleeptime:        req.EnableSleeptime,
		Timezone:               "UTC",
		Hidden:                 req.Hidden,
		CreatedAt:              now,
		UpdatedAt:              now,
	}
	if req.AgentType != nil {
		rec.AgentType = *req.AgentType
	}
	rec.System = systemPromptFor(rec.AgentType)
	rec.IncludeBaseTools, rec.ToolNames = req.IncludeBaseTools, req.Tools
	if req.System != nil {
		rec.System = *req.System
	}
	if req.Timezone != nil {
		rec.Timezone = *req.Timezone
	}
	if req.Name != nil {
		rec.Name = *req.Name
	} else {
		name, err := randomName(e.rand)
		if err != nil {
			return nil, err
		}
		rec.Name = name
	}
	llm, err := resolveLLMConfig(e, req.LLMConfig, req.Model, req.ContextWindowLimit)
	if err != nil {
		return nil, err
	}
	rec.LLMConfig = llm
	rec.EmbeddingConfig = req.EmbeddingConfig
	if req.Embedding != nil {
		if rec.EmbeddingConfig, err = embeddingConfigFor(*req.Embedding); err != nil {
			return nil, err
		}
	}
	return rec, nil
}

// resolveLLMConfig picks the llm_config: given whole, else from the model
// handle, else from the default handle.
func resolveLLMConfig(e *env, given *LLMConfig, model *string, contextWindowLimit *int) (LLMConfig, error) {
	if given != nil {
		c := *given
		if contextWindowLimit != nil {
			c.ContextWindow = *contextWindowLimit
		}
		return c, nil
	}
	handle := deref(model)
	if handle == "" {
		handle = e.defaultModel
	}
	if handle == "" {
		return LLMConfig{}, invalidf("INVALID_ARGUMENT: Must specify either model or llm_config in request")
	}
	return llmConfigFor(handle, contextWindowLimit)
}

// applyAgentUpdate applies the scalar and list fields of an update to rec;
// block_ids are applied by the caller, which needs the transaction.
func applyAgentUpdate(rec *agentRecord, req UpdateAgentRequest) error {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&rec.Name, req.Name)
	set(&rec.System, req.System)
	set(&rec.Timezone, req.Timezone)
	if req.Description != nil {
		rec.Description = req.Description
	}
	if req.Tags != nil {
		rec.Tags = nonNil(*req.Tags)
	}
	if req.Metadata != nil {
		rec.Metadata = *req.Metadata
	}
	if req.ToolRules != nil {
		rec.ToolRules = nonNil(*req.ToolRules)
	}
	if req.ProjectID != nil {
		rec.ProjectID = req.ProjectID
	}
	if req.IdentityIDs != nil {
		rec.IdentityIDs = nonNil(*req.IdentityIDs)
	}
	if req.MessageBufferAutoclear != nil {
		rec.MessageBufferAutoclear = *req.MessageBufferAutoclear
	}
	if req.EnableSleeptime != nil {
		rec.EnableSleeptime = req.EnableSleeptime
	}
	if req.LastStopReason != nil {
		rec.LastStopReason = req.LastStopReason
	}
	if req.Hidden != nil {
		rec.Hidden = req.Hidden
	}
	switch {
	case req.LLMConfig != nil:
		rec.LLMConfig = *req.LLMConfig
	case req.Model != nil:
		c, err := llmConfigFor(*req.Model, req.ContextWindowLimit)
		if err != nil {
			return err
		}
		rec.LLMConfig = c
	}
	if req.ContextWindowLimit != nil {
		rec.LLMConfig.ContextWindow = *req.ContextWindowLimit
	}
	if req.EmbeddingConfig != nil {
		rec.EmbeddingConfig = req.EmbeddingConfig
	}
	if req.Embedding != nil {
		c, err := embeddingConfigFor(*req.Embedding)
		if err != nil {
			return err
		}
		rec.EmbeddingConfig = c
	}
	return nil
}

// jsonOrNil treats an explicit JSON null like an absent value.
func jsonOrNil(m json.RawMessage) json.RawMessage {
	if string(m) == "null" {
		return nil
	}
	return m
}
