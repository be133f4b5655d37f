package agent

import (
	"context"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// Models is the surface of the models agents can use.
type Models struct{ c *core }

// Context windows: the cap on one derived from a model handle (Letta's
// GLOBAL_MAX_CONTEXT_WINDOW_LIMIT; context_window_limit overrides it) and
// the most a request may set.
const (
	MaxContextWindow    = 128_000    // tokens
	MaxContextWindowSet = 10_000_000 // tokens
	defaultMaxTokens    = 16_384     // the max_tokens of a derived llm_config
)

// Known providers' API endpoints.
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

// contextWindows are the context windows of known model families, by name
// prefix, in tokens.
var contextWindows = []struct {
	prefix string
	tokens int
}{
	{"gpt-4o", 128_000}, {"gpt-4.1", 256_000}, {"gpt-5", 272_000}, {"gpt-4-turbo", 128_000},
	{"gpt-4", 8_192}, {"o1", 200_000}, {"o3", 200_000}, {"o4", 200_000}, {"claude", 200_000},
}

// modelCatalog is implemented by resolvers that can list their models
// (*llm.Registry).
type modelCatalog interface {
	Catalog(ctx context.Context) []llm.ModelInfo
}

// List lists the models of the configured providers, and the default model
// when its provider is configured, as Letta's Model.
func (s *Models) List(ctx context.Context) []letta.Model {
	out := []letta.Model{}
	for _, mi := range s.available(ctx) {
		provider, name := mi.Provider, mi.Name
		if provider == "" || name == "" {
			provider, name, _ = strings.Cut(mi.Handle, "/")
		}
		var window *int
		if mi.ContextWindow > 0 {
			window = new(min(mi.ContextWindow, MaxContextWindow))
		}
		cfg, err := llmConfigFor(mi.Handle, window)
		if err != nil {
			cfg = letta.LLMConfig{Model: name, ModelEndpointType: provider, ProviderName: new(provider),
				ProviderCategory: new("base"), ContextWindow: or(window, loop.DefaultContextWindow), Handle: new(mi.Handle), Temperature: 1.0}
		}
		out = append(out, letta.Model{
			Handle: mi.Handle, Name: name, DisplayName: name, ProviderType: provider, ProviderName: provider,
			ModelType: "llm", LLMConfig: cfg, MaxContextWindow: cfg.ContextWindow,
		})
	}
	return out
}

// available lists the configured providers' models, the default model
// first when its provider is configured and does not list it.
func (s *Models) available(ctx context.Context) []llm.ModelInfo {
	c := s.c
	if c.llm == nil {
		return nil
	}
	var out []llm.ModelInfo
	if cat, ok := c.llm.(modelCatalog); ok {
		out = cat.Catalog(ctx)
	}
	if c.defaultModel != "" {
		if _, _, err := c.llm.Resolve(c.defaultModel); err == nil &&
			!slices.ContainsFunc(out, func(mi llm.ModelInfo) bool { return mi.Handle == c.defaultModel }) {
			provider, name, _ := strings.Cut(c.defaultModel, "/")
			out = append([]llm.ModelInfo{{Handle: c.defaultModel, Provider: provider, Name: name}}, out...)
		}
	}
	return out
}

func or[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// AutoModel is the model handle that leaves the choice to the server
// (letta-code-sdk asks for it by default); here it names the server's
// default model.
const AutoModel = "letta/auto"

// autoModel returns handle, or the default model's handle if handle is
// AutoModel.
func (c *core) autoModel(handle *string) (*string, error) {
	if handle == nil || *handle != AutoModel {
		return handle, nil
	}
	if c.defaultModel == "" {
		return nil, letta.Invalidf("INVALID_ARGUMENT: %s names the server's default model, and none is configured (kelpie serve --default-model)", AutoModel)
	}
	return new(c.defaultModel), nil
}

// splitHandle splits "provider/model".
func splitHandle(field, handle string) (provider, model string, err error) {
	provider, model, ok := strings.Cut(handle, "/")
	if !ok || provider == "" || model == "" {
		return "", "", letta.Invalidf("INVALID_ARGUMENT: The %s handle should be in the format provider/model-name", field)
	}
	return provider, model, nil
}

// llmConfigFor derives an llm_config from a model handle.
func llmConfigFor(handle string, contextWindowLimit *int) (letta.LLMConfig, error) {
	provider, model, err := splitHandle("model", handle)
	if err != nil {
		return letta.LLMConfig{}, err
	}
	if !modelEndpointTypes[provider] {
		return letta.LLMConfig{}, letta.Invalidf("NOT_FOUND: Handle %s not found: unknown provider %q", handle, provider)
	}
	cw := loop.DefaultContextWindow
	for _, m := range contextWindows {
		if strings.HasPrefix(model, m.prefix) {
			cw = min(m.tokens, MaxContextWindow)
			break
		}
	}
	cfg := letta.LLMConfig{
		Model: model, ModelEndpointType: provider, ProviderName: new(provider), ProviderCategory: new("base"),
		ContextWindow: or(contextWindowLimit, cw), Handle: new(handle), Temperature: 1.0, MaxTokens: new(defaultMaxTokens),
	}
	if ep, ok := providerEndpoints[provider]; ok {
		cfg.ModelEndpoint = new(ep)
	}
	return cfg, nil
}

// resolveLLMConfig picks the llm_config: given whole, else from the model
// handle, else from the default handle.
func resolveLLMConfig(defaultModel string, given *letta.LLMConfig, model *string, contextWindowLimit *int) (letta.LLMConfig, error) {
	if given != nil {
		c := *given
		if contextWindowLimit != nil {
			c.ContextWindow = *contextWindowLimit
		}
		return c, nil
	}
	handle := or(model, "")
	if handle == "" {
		handle = defaultModel
	}
	if handle == "" {
		return letta.LLMConfig{}, letta.Invalidf("INVALID_ARGUMENT: Must specify either model or llm_config in request")
	}
	return llmConfigFor(handle, contextWindowLimit)
}

// DefaultEmbedding is the embedding of an agent created without one:
// Letta's default embedding config (OpenAI's text-embedding-3-small).
const DefaultEmbedding = memory.DefaultEmbedding

// embeddingOrDefault returns cfg, or the config of DefaultEmbedding when
// there is none: clients validate embedding_config as an object.
func embeddingOrDefault(cfg *letta.EmbeddingConfig) *letta.EmbeddingConfig {
	if cfg != nil {
		return cfg
	}
	def, err := embeddingConfigFor(DefaultEmbedding)
	if err != nil {
		panic("agent: DefaultEmbedding is not a valid handle: " + err.Error())
	}
	return def
}

// embeddingConfigFor derives an embedding_config from an embedding handle.
func embeddingConfigFor(handle string) (*letta.EmbeddingConfig, error) {
	provider, model, err := splitHandle("embedding", handle)
	if err != nil {
		return nil, err
	}
	dim := 1536
	if model == "text-embedding-3-large" {
		dim = 3072
	}
	cfg := &letta.EmbeddingConfig{
		EmbeddingEndpointType: provider, EmbeddingModel: model, EmbeddingDim: dim,
		EmbeddingChunkSize: new(300), Handle: new(handle), BatchSize: 32,
	}
	if ep, ok := providerEndpoints[provider]; ok {
		cfg.EmbeddingEndpoint = new(ep)
	}
	return cfg, nil
}

func checkModel(model, embedding *string, contextWindowLimit *int) error {
	if model != nil {
		if _, err := llmConfigFor(*model, nil); err != nil {
			return err
		}
	}
	if embedding != nil {
		if _, err := embeddingConfigFor(*embedding); err != nil {
			return err
		}
	}
	if c := contextWindowLimit; c != nil && (*c <= 0 || *c > MaxContextWindowSet) {
		return letta.Invalidf("context_window_limit %d is out of range: want 1 to %d tokens", *c, MaxContextWindowSet)
	}
	return nil
}

// modelSettingsFor is the model_settings Letta derives from an llm_config.
func modelSettingsFor(c letta.LLMConfig) modelSettings {
	s := modelSettings{MaxOutputTokens: 4096, ParallelToolCalls: true, ProviderType: c.ModelEndpointType,
		Strict: c.Strict, Temperature: c.Temperature}
	s.Reasoning.ReasoningEffort = "minimal"
	if c.MaxTokens != nil {
		s.MaxOutputTokens = *c.MaxTokens
	}
	if c.ReasoningEffort != nil {
		s.Reasoning.ReasoningEffort = *c.ReasoningEffort
	}
	return s
}

// modelSettings is the model_settings of an agent created without them.
// Its fields are in the order of their names, as a map's would be
// encoded: the JSON is what Letta's is, and is encoded without a map to
// build and sort for every agent answered.
type modelSettings struct {
	MaxOutputTokens   int    `json:"max_output_tokens"`
	ParallelToolCalls bool   `json:"parallel_tool_calls"`
	ProviderType      string `json:"provider_type"`
	Reasoning         struct {
		ReasoningEffort string `json:"reasoning_effort"`
	} `json:"reasoning"`
	ResponseFormat any     `json:"response_format"` // always null
	Strict         bool    `json:"strict"`
	Temperature    float64 `json:"temperature"`
}
