package agent

import (
	"strings"
)

// Agent types Letta defines, and the default.
var agentTypes = map[string]bool{
	"memgpt_agent": true, "memgpt_v2_agent": true, "letta_v1_agent": true, "react_agent": true,
	"workflow_agent": true, "split_thread_agent": true, "sleeptime_agent": true,
	"voice_convo_agent": true, "voice_sleeptime_agent": true,
}

const DefaultAgentType = "letta_v1_agent"

// MaxContextWindow caps the context window derived from a model handle, as
// Letta's GLOBAL_MAX_CONTEXT_WINDOW_LIMIT does; context_window_limit
// overrides it.
const (
	MaxContextWindow     = 128_000 // tokens
	DefaultContextWindow = 32_768  // tokens, for models Kelpie does not know
	MaxContextWindowSet  = 10_000_000
)

// Known model families: their endpoint defaults and context windows.
var providerEndpoints = map[string]string{
	"openai":    "https://api.openai.com/v1",
	"anthropic": "https://api.anthropic.com/v1",
}

// modelEndpointTypes are the model_endpoint_type values Letta accepts; a
// handle's provider must be one of them.
var modelEndpointTypes = map[string]bool{
	"openai": true, "anthropic": true, "google_ai": true, "google_vertex": true, "azure": true,
	"groq": true, "ollama": true, "webui": true, "webui-legacy": true, "lmstudio": true,
	"lmstudio-legacy": true, "lmstudio-chatcompletions": true, "llamacpp": true, "koboldcpp": true,
	"vllm": true, "hugging-face": true, "minimax": true, "mistral": true, "together": true,
	"bedrock": true, "deepseek": true, "xai": true, "zai": true, "zai_coding": true, "baseten": true,
	"fireworks": true, "openrouter": true, "chatgpt_oauth": true,
}

var contextWindows = []struct {
	prefix string
	tokens int
}{
	{"gpt-4o", 128_000}, {"gpt-4.1", 256_000}, {"gpt-5", 272_000}, {"gpt-4-turbo", 128_000},
	{"gpt-4", 8_192}, {"o1", 200_000}, {"o3", 200_000}, {"o4", 200_000}, {"claude", 200_000},
}

// splitHandle splits "provider/model".
func splitHandle(field, handle string) (provider, model string, err error) {
	provider, model, ok := strings.Cut(handle, "/")
	if !ok || provider == "" || model == "" {
		return "", "", invalidf("INVALID_ARGUMENT: The %s handle should be in the format provider/model-name", field)
	}
	return provider, model, nil
}

// llmConfigFor derives an llm_config from a model handle.
func llmConfigFor(handle string, contextWindowLimit *int) (LLMConfig, error) {
	provider, model, err := splitHandle("model", handle)
	if err != nil {
		return LLMConfig{}, err
	}
	if !modelEndpointTypes[provider] {
		return LLMConfig{}, invalidf("NOT_FOUND: Handle %s not found: unknown provider %q", handle, provider)
	}
	cw := DefaultContextWindow
	for _, m := range contextWindows {
		if strings.HasPrefix(model, m.prefix) {
			cw = min(m.tokens, MaxContextWindow)
			break
		}
	}
	if contextWindowLimit != nil {
		cw = *contextWindowLimit
	}
	maxTokens := 16_384
	cfg := LLMConfig{
		Model:             model,
		ModelEndpointType: provider,
		ProviderName:      ptr(provider),
		ProviderCategory:  ptr("base"),
		ContextWindow:     cw,
		Handle:            ptr(handle),
		Temperature:       1.0,
		MaxTokens:         &maxTokens,
	}
	if ep, ok := providerEndpoints[provider]; ok {
		cfg.ModelEndpoint = ptr(ep)
	}
	return cfg, nil
}

// embeddingConfigFor derives an embedding_config from an embedding handle.
func embeddingConfigFor(handle string) (*EmbeddingConfig, error) {
	provider, model, err := splitHandle("embedding", handle)
	if err != nil {
		return nil, err
	}
	dim := 1536
	if model == "text-embedding-3-large" {
		dim = 3072
	}
	chunk := 300
	cfg := &EmbeddingConfig{
		EmbeddingEndpointType: provider,
		EmbeddingModel:        model,
		EmbeddingDim:          dim,
		EmbeddingChunkSize:    &chunk,
		Handle:                ptr(handle),
		BatchSize:             32,
	}
	if ep, ok := providerEndpoints[provider]; ok {
		cfg.EmbeddingEndpoint = ptr(ep)
	}
	return cfg, nil
}

// fileDefaults are Letta's max_files_open and per-file window, derived from
// the context window.
func fileDefaults(contextWindow int) (maxFiles, windowChars int) {
	switch {
	case contextWindow <= 0:
		return 5, 50_000
	case contextWindow <= 8_000:
		return 3, 5_000
	case contextWindow <= 32_000:
		return 5, 15_000
	case contextWindow <= 128_000:
		return 10, 25_000
	case contextWindow <= 200_000:
		return 10, 40_000
	default:
		return 15, 40_000
	}
}

// modelSettingsFor is the model_settings Letta derives from an llm_config.
func modelSettingsFor(c LLMConfig) map[string]any {
	maxOut := 4096
	if c.MaxTokens != nil {
		maxOut = *c.MaxTokens
	}
	effort := "minimal"
	if c.ReasoningEffort != nil {
		effort = *c.ReasoningEffort
	}
	return map[string]any{
		"max_output_tokens":   maxOut,
		"parallel_tool_calls": true,
		"provider_type":       c.ModelEndpointType,
		"temperature":         c.Temperature,
		"reasoning":           map[string]any{"reasoning_effort": effort},
		"response_format":     nil,
		"strict":              c.Strict,
	}
}

func ptr[T any](v T) *T { return &v }
