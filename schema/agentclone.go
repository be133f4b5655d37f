package schema

import (
	"bytes"
	"maps"
	"slices"

	"github.com/kelpie/kelpie/letta"
)

// Clone returns a copy of a that shares nothing mutable with it (see
// clone).
func (a *Agent) Clone() *Agent { return a.clone() }

// clone returns a copy of a that shares nothing mutable with it (strings
// are immutable; every slice, map and pointer is copied, and the free-form
// parts decoded from JSON, metadata and tool rules, are copied through).
// A field of a reference type added to Agent, LLMConfig or
// EmbeddingConfig must be copied here: TestAgentCloneSharesNothing fills
// every one and fails until it is.
func (a *Agent) clone() *Agent {
	c := *a
	c.Description = clonePtr(a.Description)
	c.Metadata = cloneJSONMap(a.Metadata)
	c.Tags = slices.Clone(a.Tags)
	c.LLMConfig = cloneLLMConfig(a.LLMConfig)
	if a.EmbeddingConfig != nil {
		e := *a.EmbeddingConfig
		e.EmbeddingEndpoint, e.EmbeddingChunkSize, e.Handle = clonePtr(e.EmbeddingEndpoint), clonePtr(e.EmbeddingChunkSize), clonePtr(e.Handle)
		e.AzureEndpoint, e.AzureVersion, e.AzureDeployment = clonePtr(e.AzureEndpoint), clonePtr(e.AzureVersion), clonePtr(e.AzureDeployment)
		c.EmbeddingConfig = &e
	}
	c.ModelSettings = bytes.Clone(a.ModelSettings)
	c.CompactionSettings = bytes.Clone(a.CompactionSettings)
	c.ToolRules = cloneJSONSlice(a.ToolRules)
	c.ProjectID, c.EnableSleeptime, c.LastStopReason = clonePtr(a.ProjectID), clonePtr(a.EnableSleeptime), clonePtr(a.LastStopReason)
	c.LastRunCompletion, c.LastRunDurationMS, c.Hidden = clonePtr(a.LastRunCompletion), clonePtr(a.LastRunDurationMS), clonePtr(a.Hidden)
	c.IncludeBaseTools = clonePtr(a.IncludeBaseTools)
	c.ToolNames = slices.Clone(a.ToolNames)
	c.ToolEnv = maps.Clone(a.ToolEnv)
	return &c
}

func cloneLLMConfig(l letta.LLMConfig) letta.LLMConfig {
	l.DisplayName, l.ModelEndpoint, l.ProviderName = clonePtr(l.DisplayName), clonePtr(l.ModelEndpoint), clonePtr(l.ProviderName)
	l.ProviderCategory, l.ModelWrapper, l.Handle = clonePtr(l.ProviderCategory), clonePtr(l.ModelWrapper), clonePtr(l.Handle)
	l.MaxTokens, l.ReasoningEffort, l.Effort = clonePtr(l.MaxTokens), clonePtr(l.ReasoningEffort), clonePtr(l.Effort)
	l.FrequencyPenalty, l.CompatibilityType, l.Verbosity = clonePtr(l.FrequencyPenalty), clonePtr(l.CompatibilityType), clonePtr(l.Verbosity)
	l.Tier, l.TopLogprobs, l.ToolCallParser = clonePtr(l.Tier), clonePtr(l.TopLogprobs), clonePtr(l.ToolCallParser)
	l.ResponseFormat = cloneJSON(l.ResponseFormat)
	return l
}

// cloneJSON copies a value decoded from JSON into an any: its objects and
// arrays are copied; strings, numbers, booleans and null are values.
func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneJSONMap(v)
	case []any:
		return cloneJSONSlice(v)
	}
	return v
}

func cloneJSONMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneJSON(v)
	}
	return out
}

func cloneJSONSlice(s []any) []any {
	if s == nil {
		return nil
	}
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = cloneJSON(v)
	}
	return out
}

// clone returns a copy of b that shares nothing mutable with it, as
// Agent.clone does: TestBlockCloneSharesNothing fails until a reference
// field added to Block is copied here.
func (b *Block) clone() *Block {
	c := *b
	c.ProjectID, c.TemplateName, c.TemplateID = clonePtr(b.ProjectID), clonePtr(b.TemplateName), clonePtr(b.TemplateID)
	c.BaseTemplateID, c.DeploymentID, c.EntityID = clonePtr(b.BaseTemplateID), clonePtr(b.DeploymentID), clonePtr(b.EntityID)
	c.Description, c.Metadata, c.Hidden = clonePtr(b.Description), cloneJSONMap(b.Metadata), clonePtr(b.Hidden)
	c.CreatedByID, c.LastUpdatedByID, c.Tags = clonePtr(b.CreatedByID), clonePtr(b.LastUpdatedByID), slices.Clone(b.Tags)
	return &c
}
