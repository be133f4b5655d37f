package letta

// Model is a model as GET /v1/models lists it (Letta's Model: an llm_config
// with the model's handle and names).
type Model struct {
	Handle       string `json:"handle"`
	Name         string `json:"name"`
	DisplayName  string `json:"display_name"`
	ProviderType string `json:"provider_type"`
	ProviderName string `json:"provider_name"`
	ModelType    string `json:"model_type"`
	LLMConfig
	MaxContextWindow int `json:"max_context_window"`
}
