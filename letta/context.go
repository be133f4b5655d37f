package letta

import "encoding/json"

// ContextWindowOverview is GET /v1/agents/{id}/context: what a context
// holds, section by section, with token counts.
type ContextWindowOverview struct {
	ContextWindowSizeMax           int          `json:"context_window_size_max"`
	ContextWindowSizeCurrent       int          `json:"context_window_size_current"`
	NumMessages                    int          `json:"num_messages"`
	NumArchivalMemory              int          `json:"num_archival_memory"`
	NumRecallMemory                int          `json:"num_recall_memory"`
	NumTokensExternalMemorySummary int          `json:"num_tokens_external_memory_summary"`
	ExternalMemorySummary          string       `json:"external_memory_summary"`
	NumTokensSystem                int          `json:"num_tokens_system"`
	SystemPrompt                   string       `json:"system_prompt"`
	NumTokensCoreMemory            int          `json:"num_tokens_core_memory"`
	CoreMemory                     string       `json:"core_memory"`
	NumTokensMemoryFilesystem      int          `json:"num_tokens_memory_filesystem"`
	MemoryFilesystem               *string      `json:"memory_filesystem"`
	NumTokensToolUsageRules        int          `json:"num_tokens_tool_usage_rules"`
	ToolUsageRules                 *string      `json:"tool_usage_rules"`
	NumTokensDirectories           int          `json:"num_tokens_directories"`
	Directories                    *string      `json:"directories"`
	NumTokensSummaryMemory         int          `json:"num_tokens_summary_memory"`
	SummaryMemory                  *string      `json:"summary_memory"`
	NumTokensFunctionsDefinitions  int          `json:"num_tokens_functions_definitions"`
	FunctionsDefinitions           []OpenAITool `json:"functions_definitions"`
	NumTokensMessages              int          `json:"num_tokens_messages"`
	Messages                       []RawMessage `json:"messages"`
}

// OpenAITool is a tool definition in OpenAI's shape.
type OpenAITool struct {
	Type     string         `json:"type"`
	Function OpenAIFunction `json:"function"`
}

// OpenAIFunction is the function of an OpenAITool.
type OpenAIFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// RawMessage is a stored message in Letta's own shape (not a LettaMessage):
// what the context overview lists.
type RawMessage struct {
	ID             string           `json:"id"`
	AgentID        string           `json:"agent_id"`
	Role           string           `json:"role"`
	Content        []TextContent    `json:"content"`
	Name           *string          `json:"name"`
	ToolCalls      []OpenAIToolCall `json:"tool_calls"`
	ToolCallID     *string          `json:"tool_call_id"`
	StepID         *string          `json:"step_id"`
	RunID          *string          `json:"run_id"`
	Otid           *string          `json:"otid"`
	ConversationID *string          `json:"conversation_id"`
	CreatedAt      Timestamp        `json:"created_at"`
}

// TextContent is a text part of a RawMessage.
type TextContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// OpenAIToolCall is a tool call in OpenAI's shape.
type OpenAIToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}
