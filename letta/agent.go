package letta

import "encoding/json"

// LLMConfig is Letta's llm_config.
type LLMConfig struct {
	Model                    string   `json:"model"`
	DisplayName              *string  `json:"display_name"`
	ModelEndpointType        string   `json:"model_endpoint_type"`
	ModelEndpoint            *string  `json:"model_endpoint"`
	ProviderName             *string  `json:"provider_name"`
	ProviderCategory         *string  `json:"provider_category"`
	ModelWrapper             *string  `json:"model_wrapper"`
	ContextWindow            int      `json:"context_window"`
	PutInnerThoughtsInKwargs bool     `json:"put_inner_thoughts_in_kwargs"`
	Handle                   *string  `json:"handle"`
	Temperature              float64  `json:"temperature"`
	MaxTokens                *int     `json:"max_tokens"`
	EnableReasoner           bool     `json:"enable_reasoner"`
	ReasoningEffort          *string  `json:"reasoning_effort"`
	MaxReasoningTokens       int      `json:"max_reasoning_tokens"`
	Effort                   *string  `json:"effort"`
	FrequencyPenalty         *float64 `json:"frequency_penalty"`
	CompatibilityType        *string  `json:"compatibility_type"`
	Verbosity                *string  `json:"verbosity"`
	Tier                     *string  `json:"tier"`
	ParallelToolCalls        bool     `json:"parallel_tool_calls"`
	ResponseFormat           any      `json:"response_format"`
	Strict                   bool     `json:"strict"`
	ReturnLogprobs           bool     `json:"return_logprobs"`
	TopLogprobs              *int     `json:"top_logprobs"`
	ReturnTokenIDs           bool     `json:"return_token_ids"`
	ToolCallParser           *string  `json:"tool_call_parser"`
}

// EmbeddingConfig is Letta's embedding_config.
type EmbeddingConfig struct {
	EmbeddingEndpointType string  `json:"embedding_endpoint_type"`
	EmbeddingEndpoint     *string `json:"embedding_endpoint"`
	EmbeddingModel        string  `json:"embedding_model"`
	EmbeddingDim          int     `json:"embedding_dim"`
	EmbeddingChunkSize    *int    `json:"embedding_chunk_size"`
	Handle                *string `json:"handle"`
	BatchSize             int     `json:"batch_size"`
	AzureEndpoint         *string `json:"azure_endpoint"`
	AzureVersion          *string `json:"azure_version"`
	AzureDeployment       *string `json:"azure_deployment"`
}

// Memory is AgentState.memory.
type Memory struct {
	AgentType      string  `json:"agent_type"`
	GitEnabled     bool    `json:"git_enabled"`
	Blocks         []Block `json:"blocks"`
	FileBlocks     []any   `json:"file_blocks"`
	PromptTemplate string  `json:"prompt_template"`
}

// AgentState is an agent as the API returns it.
type AgentState struct {
	CreatedByID                  *string          `json:"created_by_id"`
	LastUpdatedByID              *string          `json:"last_updated_by_id"`
	CreatedAt                    Timestamp        `json:"created_at"`
	UpdatedAt                    Timestamp        `json:"updated_at"`
	ID                           string           `json:"id"`
	Name                         string           `json:"name"`
	ToolRules                    []any            `json:"tool_rules"`
	MessageIDs                   []string         `json:"message_ids"`
	System                       string           `json:"system"`
	AgentType                    string           `json:"agent_type"`
	LLMConfig                    LLMConfig        `json:"llm_config"`
	EmbeddingConfig              *EmbeddingConfig `json:"embedding_config"`
	Model                        *string          `json:"model"`
	Embedding                    *string          `json:"embedding"`
	ModelSettings                any              `json:"model_settings"`
	CompactionSettings           any              `json:"compaction_settings"`
	ResponseFormat               any              `json:"response_format"`
	Description                  *string          `json:"description"`
	Metadata                     map[string]any   `json:"metadata"`
	Memory                       Memory           `json:"memory"`
	Blocks                       []Block          `json:"blocks"`
	Tools                        []any            `json:"tools"`
	Sources                      []any            `json:"sources"`
	Tags                         []string         `json:"tags"`
	ToolExecEnvironmentVariables []any            `json:"tool_exec_environment_variables"`
	Secrets                      []any            `json:"secrets"`
	ProjectID                    *string          `json:"project_id"`
	TemplateID                   *string          `json:"template_id"`
	BaseTemplateID               *string          `json:"base_template_id"`
	DeploymentID                 *string          `json:"deployment_id"`
	EntityID                     *string          `json:"entity_id"`
	IdentityIDs                  []string         `json:"identity_ids"`
	Identities                   []any            `json:"identities"`
	PendingApproval              any              `json:"pending_approval"`
	MessageBufferAutoclear       bool             `json:"message_buffer_autoclear"`
	EnableSleeptime              *bool            `json:"enable_sleeptime"`
	MultiAgentGroup              *Group           `json:"multi_agent_group"`
	ManagedGroup                 any              `json:"managed_group"`
	LastRunCompletion            *Timestamp       `json:"last_run_completion"`
	LastRunDurationMS            *int64           `json:"last_run_duration_ms"`
	LastStopReason               *string          `json:"last_stop_reason"`
	Timezone                     string           `json:"timezone"`
	MaxFilesOpen                 int              `json:"max_files_open"`
	PerFileViewWindowCharLimit   int              `json:"per_file_view_window_char_limit"`
	Hidden                       *bool            `json:"hidden"`
}

// CreateAgentRequest is the body of POST /v1/agents. Unknown fields are
// ignored, as Letta does.
type CreateAgentRequest struct {
	Name               *string          `json:"name"`
	MemoryBlocks       []CreateBlock    `json:"memory_blocks"`
	BlockIDs           []string         `json:"block_ids"`
	Tags               []string         `json:"tags"`
	System             *string          `json:"system"`
	AgentType          *string          `json:"agent_type"`
	Description        *string          `json:"description"`
	Metadata           map[string]any   `json:"metadata"`
	LLMConfig          *LLMConfig       `json:"llm_config"`
	EmbeddingConfig    *EmbeddingConfig `json:"embedding_config"`
	Model              *string          `json:"model"`
	Embedding          *string          `json:"embedding"`
	ModelSettings      json.RawMessage  `json:"model_settings"`
	CompactionSettings json.RawMessage  `json:"compaction_settings"`
	ContextWindowLimit *int             `json:"context_window_limit"`
	ToolRules          []any            `json:"tool_rules"`
	Tools              []string         `json:"tools"`
	ToolIDs            []string         `json:"tool_ids"`
	// ToolExecEnvironmentVariables (deprecated by Letta) and Secrets are
	// the agent's tools' environment; Secrets win on a shared key.
	ToolExecEnvironmentVariables map[string]string `json:"tool_exec_environment_variables"`
	Secrets                      map[string]string `json:"secrets"`
	IncludeBaseTools             *bool             `json:"include_base_tools"`
	ProjectID                    *string           `json:"project_id"`
	IdentityIDs                  []string          `json:"identity_ids"`
	MessageBufferAutoclear       bool              `json:"message_buffer_autoclear"`
	EnableSleeptime              *bool             `json:"enable_sleeptime"`
	Timezone                     *string           `json:"timezone"`
	Hidden                       *bool             `json:"hidden"`
	// InitialMessageSequence are the messages a new agent's context
	// starts with, after its system message.
	InitialMessageSequence []MessageCreate `json:"initial_message_sequence"`
}

// UpdateAgentRequest is the body of PATCH /v1/agents/{id}. Absent or null
// fields are left unchanged; list fields replace the whole list.
type UpdateAgentRequest struct {
	Name                   *string          `json:"name"`
	System                 *string          `json:"system"`
	Description            *string          `json:"description"`
	Tags                   *[]string        `json:"tags"`
	Metadata               *map[string]any  `json:"metadata"`
	BlockIDs               *[]string        `json:"block_ids"`
	LLMConfig              *LLMConfig       `json:"llm_config"`
	EmbeddingConfig        *EmbeddingConfig `json:"embedding_config"`
	Model                  *string          `json:"model"`
	Embedding              *string          `json:"embedding"`
	ContextWindowLimit     *int             `json:"context_window_limit"`
	ToolRules              *[]any           `json:"tool_rules"`
	ProjectID              *string          `json:"project_id"`
	IdentityIDs            *[]string        `json:"identity_ids"`
	MessageBufferAutoclear *bool            `json:"message_buffer_autoclear"`
	EnableSleeptime        *bool            `json:"enable_sleeptime"`
	LastStopReason         *string          `json:"last_stop_reason"`
	Timezone               *string          `json:"timezone"`
	Hidden                 *bool            `json:"hidden"`
	// ToolExecEnvironmentVariables and Secrets replace the agent's tools'
	// environment.
	ToolExecEnvironmentVariables *map[string]string `json:"tool_exec_environment_variables"`
	Secrets                      *map[string]string `json:"secrets"`
}
