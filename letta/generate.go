package letta

// GenerateRequest is Letta's request for a completion made directly with an
// agent's model (POST /v1/agents/{agent_id}/generate): no memory, no tools,
// nothing stored.
type GenerateRequest struct {
	Prompt       *string `json:"prompt"`
	SystemPrompt *string `json:"system_prompt"`
	// OverrideModel is a model handle used instead of the agent's.
	OverrideModel *string `json:"override_model"`
	// ResponseSchema asks for structured output: the model is made to call
	// a tool whose parameters are the schema's properties, and the
	// arguments it gives are the answer.
	ResponseSchema map[string]any `json:"response_schema"`
}

// GenerateResponse is Letta's answer to a GenerateRequest.
type GenerateResponse struct {
	Content string          `json:"content"`
	Model   string          `json:"model"`
	Usage   UsageStatistics `json:"usage"`
}
