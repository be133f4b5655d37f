package letta

// Step is a step of a run as the API renders it (Letta's Step): one model
// call, its usage and its messages.
type Step struct {
	ID                 string         `json:"id"`
	Origin             *string        `json:"origin"`
	ProviderID         *string        `json:"provider_id"`
	RunID              *string        `json:"run_id"`
	AgentID            *string        `json:"agent_id"`
	ProviderName       *string        `json:"provider_name"`
	ProviderCategory   *string        `json:"provider_category"`
	Model              *string        `json:"model"`
	ModelHandle        *string        `json:"model_handle"`
	ModelEndpoint      *string        `json:"model_endpoint"`
	ContextWindowLimit *int           `json:"context_window_limit"`
	CompletionTokens   int            `json:"completion_tokens"`
	PromptTokens       int            `json:"prompt_tokens"`
	TotalTokens        int            `json:"total_tokens"`
	StopReason         *string        `json:"stop_reason"`
	Tags               []string       `json:"tags"`
	Tid                *string        `json:"tid"`
	TraceID            *string        `json:"trace_id"`
	Messages           []any          `json:"messages"`
	Feedback           *string        `json:"feedback"`
	ProjectID          *string        `json:"project_id"`
	ErrorType          *string        `json:"error_type"`
	ErrorData          map[string]any `json:"error_data"`
	Status             string         `json:"status"`
}

// StepMetrics is a step's timing (Letta's StepMetrics), in nanoseconds.
type StepMetrics struct {
	ID                string  `json:"id"`
	RunID             *string `json:"run_id"`
	AgentID           *string `json:"agent_id"`
	StepStartNS       *int64  `json:"step_start_ns"`
	LLMRequestStartNS *int64  `json:"llm_request_start_ns"`
	LLMRequestNS      *int64  `json:"llm_request_ns"`
	ToolExecutionNS   *int64  `json:"tool_execution_ns"`
	StepNS            *int64  `json:"step_ns"`
	ProjectID         *string `json:"project_id"`
}

// StepFeedback is the body of PATCH /v1/steps/{step_id}/feedback.
type StepFeedback struct {
	Feedback *string  `json:"feedback"`
	Tags     []string `json:"tags"`
}
