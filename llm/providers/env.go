package providers

import (
	"net/http"
	"strings"

	"github.com/kelpie/kelpie/llm"
)

// FromEnv configures providers from environment variables (getenv is
// usually os.Getenv):
//
//   - "openai" if OPENAI_API_KEY or OPENAI_BASE_URL is set;
//   - "anthropic" if ANTHROPIC_API_KEY or ANTHROPIC_BASE_URL is set;
//   - "ollama" (OpenAI-compatible, no key) if OLLAMA_BASE_URL is set, such
//     as http://localhost:11434 ("/v1" is added when missing);
//   - "vllm" (OpenAI-compatible) if VLLM_API_BASE is set, with
//     VLLM_API_KEY if set.
func FromEnv(getenv func(string) string) *llm.Registry {
	r := llm.NewRegistry()
	client := newProviderClient()
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	r.Hint("openai", "set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible server)")
	r.Hint("anthropic", "set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for a proxy)")
	r.Hint("ollama", "set OLLAMA_BASE_URL, such as http://localhost:11434")
	r.Hint("vllm", "set VLLM_API_BASE, such as http://localhost:8000/v1 (and VLLM_API_KEY if it needs one)")
	if key, base := env("OPENAI_API_KEY"), env("OPENAI_BASE_URL"); key != "" || base != "" {
		r.Register(NewOpenAI(OpenAIConfig{APIKey: key, BaseURL: base, HTTPClient: client}))
	}
	if key, base := env("ANTHROPIC_API_KEY"), env("ANTHROPIC_BASE_URL"); key != "" || base != "" {
		r.Register(NewAnthropic(AnthropicConfig{APIKey: key, BaseURL: base, HTTPClient: client}))
	}
	if base := env("OLLAMA_BASE_URL"); base != "" {
		base = strings.TrimRight(base, "/")
		if !strings.HasSuffix(base, "/v1") {
			base += "/v1"
		}
		r.Register(NewOpenAI(OpenAIConfig{Name: "ollama", BaseURL: base, HTTPClient: client}))
	}
	if base := env("VLLM_API_BASE"); base != "" {
		r.Register(NewOpenAI(OpenAIConfig{Name: "vllm", BaseURL: base, APIKey: env("VLLM_API_KEY"), HTTPClient: client}))
	}
	return r
}

// MaxIdleConnsPerProvider is how many idle connections to one provider are
// kept for reuse: with many agents thinking at once, Go's default of 2 would
// open (and, against a real provider, handshake) a new connection for most
// calls.
const MaxIdleConnsPerProvider = 256

// providerWriteBufferBytes is the write buffer of a connection to a
// provider: a request (headers and body, about 10 KiB for an agent's turn)
// goes out in one write, where Go's default of 4 KiB took two (each a
// system call, and a wake-up of the provider's reader).
const providerWriteBufferBytes = 32 << 10

func newProviderClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = MaxIdleConnsPerProvider * 4
	t.MaxIdleConnsPerHost = MaxIdleConnsPerProvider
	t.WriteBufferSize = providerWriteBufferBytes
	return &http.Client{Transport: t}
}
