package embedding

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Limits of the embeddings client.
const (
	// MaxBatchTexts is how many texts one request carries (OpenAI takes
	// up to 2048; local servers often fewer).
	MaxBatchTexts = 256
	// MaxResponseBytes bounds an embeddings response (256 texts of 3072
	// dimensions as JSON take about 16 MiB).
	MaxResponseBytes = 64 << 20
	// MaxErrorBodyBytes is how much of an error response is kept for the
	// message.
	MaxErrorBodyBytes = 4 << 10
)

// ErrNotConfigured is returned (wrapped) for a handle whose provider has
// no embeddings endpoint configured.
var ErrNotConfigured = errors.New("embedding provider not configured")

// Embedder computes embeddings for a model handle ("provider/model").
type Embedder interface {
	Embed(ctx context.Context, handle string, texts []string) ([][]float32, error)
}

// Client speaks the OpenAI-compatible embeddings API of one server.
type Client struct {
	// BaseURL is the API root, such as https://api.openai.com/v1 or
	// http://localhost:11434/v1; requests go to BaseURL+"/embeddings".
	BaseURL string
	// APIKey, if set, is sent as a bearer token.
	APIKey string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
}

type request struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	EncodingFormat string   `json:"encoding_format"`
}

type response struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
}

// Embed returns the normalised embeddings of texts under model (the
// provider's own model name), in the texts' order.
func (c *Client) Embed(ctx context.Context, model string, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += MaxBatchTexts {
		batch := texts[start:min(start+MaxBatchTexts, len(texts))]
		vs, err := c.embedBatch(ctx, model, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
	}
	return out, nil
}

func (c *Client) embedBatch(ctx context.Context, model string, texts []string) ([][]float32, error) {
	body, err := json.Marshal(request{Model: model, Input: texts, EncodingFormat: "float"})
	if err != nil {
		return nil, err
	}
	url := strings.TrimRight(c.BaseURL, "/") + "/embeddings"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("embeddings from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBodyBytes))
		return nil, &StatusError{URL: url, Status: resp.StatusCode, Body: strings.TrimSpace(string(msg))}
	}
	var r response
	dec := json.NewDecoder(io.LimitReader(resp.Body, MaxResponseBytes))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("embeddings from %s: unreadable answer: %w", url, err)
	}
	return ordered(url, r, len(texts))
}

// ordered checks that r holds one non-empty vector per text and returns
// them in the texts' order, normalised.
func ordered(url string, r response, n int) ([][]float32, error) {
	if len(r.Data) != n {
		return nil, fmt.Errorf("embeddings from %s: %d vectors for %d texts", url, len(r.Data), n)
	}
	out := make([][]float32, n)
	for _, d := range r.Data {
		if d.Index < 0 || d.Index >= n || out[d.Index] != nil {
			return nil, fmt.Errorf("embeddings from %s: vector index %d is out of range or repeated", url, d.Index)
		}
		if len(d.Embedding) == 0 {
			return nil, fmt.Errorf("embeddings from %s: empty vector at index %d", url, d.Index)
		}
		out[d.Index] = Normalize(d.Embedding)
	}
	return out, nil
}

// StatusError is an embeddings request answered with an error status.
type StatusError struct {
	URL    string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("embeddings from %s: status %d: %s", e.URL, e.Status, e.Body)
}

// Registry maps provider names to embeddings clients and resolves handles
// ("provider/model"). It is safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	clients map[string]*Client
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{clients: map[string]*Client{}} }

// Register serves the handles of provider with c, replacing any client it
// had.
func (r *Registry) Register(provider string, c *Client) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clients[provider] = c
}

// Providers reports whether any provider is configured.
func (r *Registry) Providers() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.clients)
}

// Embed embeds texts with the model handle names.
func (r *Registry) Embed(ctx context.Context, handle string, texts []string) ([][]float32, error) {
	provider, model, ok := strings.Cut(handle, "/")
	if !ok || provider == "" || model == "" {
		return nil, fmt.Errorf("embedding handle %q is not provider/model", handle)
	}
	r.mu.RLock()
	c := r.clients[provider]
	r.mu.RUnlock()
	if c == nil {
		return nil, fmt.Errorf("%w: %q (for %s)", ErrNotConfigured, provider, handle)
	}
	return c.Embed(ctx, model, texts)
}

// FromEnv configures the OpenAI-compatible embeddings servers the model
// providers are configured with (getenv is usually os.Getenv):
// "openai" from OPENAI_API_KEY / OPENAI_BASE_URL, "ollama" from
// OLLAMA_BASE_URL ("/v1" added when missing), "vllm" from VLLM_API_BASE
// and VLLM_API_KEY. KELPIE_EMBEDDING_BASE_URL, if set, overrides the
// "openai" base URL alone (with KELPIE_EMBEDDING_API_KEY), for chat on one
// server and embeddings on another.
func FromEnv(getenv func(string) string, hc *http.Client) *Registry {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	r := NewRegistry()
	if key, base := env("OPENAI_API_KEY"), env("OPENAI_BASE_URL"); key != "" || base != "" {
		if base == "" {
			base = DefaultOpenAIBaseURL
		}
		r.Register("openai", &Client{BaseURL: base, APIKey: key, HTTP: hc})
	}
	if base := env("KELPIE_EMBEDDING_BASE_URL"); base != "" {
		r.Register("openai", &Client{BaseURL: base, APIKey: env("KELPIE_EMBEDDING_API_KEY"), HTTP: hc})
	}
	if base := env("OLLAMA_BASE_URL"); base != "" {
		base = strings.TrimRight(base, "/")
		if !strings.HasSuffix(base, "/v1") {
			base += "/v1"
		}
		r.Register("ollama", &Client{BaseURL: base, HTTP: hc})
	}
	if base := env("VLLM_API_BASE"); base != "" {
		r.Register("vllm", &Client{BaseURL: base, APIKey: env("VLLM_API_KEY"), HTTP: hc})
	}
	return r
}

// DefaultOpenAIBaseURL is OpenAI's API.
const DefaultOpenAIBaseURL = "https://api.openai.com/v1"
