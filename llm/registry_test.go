package llm_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
	"github.com/kelpie/kelpie/llm/providers"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFromEnvConfigured(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want []string
	}{
		{nil, nil},
		{map[string]string{"OPENAI_API_KEY": "k"}, []string{"openai"}},
		{map[string]string{"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, []string{"openai"}},
		{map[string]string{"ANTHROPIC_API_KEY": "k", "OPENAI_API_KEY": "k"}, []string{"openai", "anthropic"}},
		{map[string]string{"ANTHROPIC_BASE_URL": "http://127.0.0.1:1", "OLLAMA_BASE_URL": "http://127.0.0.1:11434", "VLLM_API_BASE": "http://127.0.0.1:8000/v1"},
			[]string{"anthropic", "ollama", "vllm"}},
		{map[string]string{"OPENAI_API_KEY": "  "}, nil},
	}
	for _, c := range cases {
		got := providers.FromEnv(envOf(c.env)).Configured()
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("env %v: configured %v, want %v", c.env, got, c.want)
		}
	}
}

func TestResolve(t *testing.T) {
	r := providers.FromEnv(envOf(map[string]string{"OPENAI_API_KEY": "k"}))
	p, model, err := r.Resolve("openai/gpt-4o-mini")
	if err != nil || p.Name() != "openai" || model != "gpt-4o-mini" {
		t.Fatalf("got %v %q %v", p, model, err)
	}
	// Model names may contain slashes.
	if _, model, err := r.Resolve("openai/meta-llama/Llama-3.1-8B"); err != nil || model != "meta-llama/Llama-3.1-8B" {
		t.Errorf("got %q %v", model, err)
	}
	for _, h := range []string{"gpt-4o-mini", "/gpt-4o", "openai/", ""} {
		if _, _, err := r.Resolve(h); !errors.Is(err, llm.ErrInvalidHandle) {
			t.Errorf("%q: err = %v", h, err)
		}
	}
	_, _, err = r.Resolve("anthropic/claude-sonnet-4-5")
	if !errors.Is(err, llm.ErrProviderNotConfigured) || !strings.Contains(err.Error(), "ANTHROPIC_API_KEY") || !strings.Contains(err.Error(), "configured: openai") {
		t.Errorf("err = %v", err)
	}
	_, _, err = r.Resolve("mystery/model")
	if !errors.Is(err, llm.ErrProviderNotConfigured) || !strings.Contains(err.Error(), `unknown provider "mystery"`) {
		t.Errorf("err = %v", err)
	}
	empty := providers.FromEnv(envOf(nil))
	if _, _, err := empty.Resolve("openai/gpt-4o"); err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") || !strings.Contains(err.Error(), "none is configured") {
		t.Errorf("err = %v", err)
	}
}

func TestRegisterReplaces(t *testing.T) {
	srv := llmtest.NewServer(t)
	r := llm.NewRegistry()
	r.Register(providers.NewOpenAI(providers.OpenAIConfig{Name: "local", BaseURL: "http://127.0.0.1:1/v1"}))
	r.Register(providers.NewOpenAI(providers.OpenAIConfig{Name: "local", BaseURL: srv.OpenAIBaseURL()}))
	if got := r.Configured(); !reflect.DeepEqual(got, []string{"local"}) {
		t.Fatalf("configured %v", got)
	}
	p, model, err := r.Resolve("local/llama3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Complete(context.Background(), llm.Request{Model: model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := srv.LastRequest().Model; got != "llama3" {
		t.Errorf("model %q", got)
	}
}

func TestRegistryEndToEnd(t *testing.T) {
	srv := llmtest.NewServer(t)
	reg := srv.Registry()
	for _, h := range []string{"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"} {
		p, model, err := reg.Resolve(h)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := p.Complete(context.Background(), llm.Request{Model: model, Messages: []llm.Message{{Role: llm.RoleUser, Content: "ping " + h}}}, func(llm.Delta) {})
		if err != nil || resp.Content != "ping "+h {
			t.Fatalf("%s: %+v %v", h, resp, err)
		}
	}
}

func TestModels(t *testing.T) {
	srv := llmtest.NewServer(t)
	srv.SetModels(llmtest.OpenAI, llmtest.Model{ID: "gpt-4o"}, llmtest.Model{ID: "gpt-4o-mini"}, llmtest.Model{ID: "local-llama", ContextWindow: 8192})
	many := make([]llmtest.Model, 45) // more than a page
	for i := range many {
		many[i] = llmtest.Model{ID: "claude-" + string(rune('a'+i/26)) + string(rune('a'+i%26)), ContextWindow: 200000}
	}
	srv.SetModels(llmtest.Anthropic, many...)
	reg := srv.Registry()
	models := reg.Catalog(context.Background())
	if len(models) != 3+45 {
		t.Fatalf("%d models: %+v", len(models), models)
	}
	want := []llm.ModelInfo{
		{Handle: "openai/gpt-4o", Provider: "openai", Name: "gpt-4o"},
		{Handle: "openai/gpt-4o-mini", Provider: "openai", Name: "gpt-4o-mini"},
		{Handle: "openai/local-llama", Provider: "openai", Name: "local-llama", ContextWindow: 8192},
		{Handle: "anthropic/claude-aa", Provider: "anthropic", Name: "claude-aa", ContextWindow: 200000},
	}
	if !reflect.DeepEqual(models[:4], want) {
		t.Errorf("models %+v", models[:4])
	}
	if last := models[len(models)-1]; last.Name != "claude-bs" {
		t.Errorf("last %+v", last)
	}

	// A failing provider contributes nothing.
	srv.FailModels(500)
	if got := reg.Catalog(context.Background()); len(got) != 0 {
		t.Errorf("models while failing: %d", len(got))
	}
}

func TestModelsCacheAndTimeout(t *testing.T) {
	srv := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Register(srv.OpenAIProvider())
	reg.Register(slowLister{})
	reg.ModelsTimeout = 100 * time.Millisecond
	start := time.Now()
	for range 3 {
		if got := reg.Catalog(context.Background()); len(got) != 2 {
			t.Fatalf("models %+v", got)
		}
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v", el)
	}
	if n := srv.ModelsCalls(llmtest.OpenAI); n != 1 {
		t.Errorf("%d listings, want 1 (cached)", n)
	}
	// Registering again drops the cache.
	reg.Register(srv.OpenAIProvider())
	reg.Catalog(context.Background())
	if n := srv.ModelsCalls(llmtest.OpenAI); n != 2 {
		t.Errorf("%d listings after re-register", n)
	}
}

// slowLister never finishes listing within the timeout.
type slowLister struct{}

func (slowLister) Name() string { return "slow" }
func (slowLister) Complete(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
	return nil, errors.New("unused")
}
func (slowLister) ListModels(ctx context.Context) ([]llm.ModelInfo, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
