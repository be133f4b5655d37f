package providers_test

// The OpenAI provider's own wire behaviour: its error bodies and codes,
// stream quirks of compatible servers, and the headers it sends.

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
	"github.com/kelpie/kelpie/llm/providers"
)

// Compatible servers send errors in other shapes than OpenAI's.
func TestOpenAICompatibleErrorBodies(t *testing.T) {
	bodies := map[string]string{
		`{"error":"model 'llama9' not found"}`: "model 'llama9' not found",
		`{"detail":"Not Found"}`:               "Not Found",
		`upstream exploded`:                    "upstream exploded",
		``:                                     "Not Found",
	}
	for body, want := range bodies {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(body))
		}))
		p := providers.NewOpenAI(providers.OpenAIConfig{Name: "ollama", BaseURL: hs.URL + "/v1"})
		_, _, err := complete(t, p, userReq("hi"), true)
		hs.Close()
		var e *llm.Error
		if !errors.As(err, &e) || e.Status != 404 || e.Retryable || e.Message != want || e.Provider != "ollama" {
			t.Errorf("body %q: err = %#v", body, err)
		}
	}
}

// Compatible servers that send tool calls whole, without indexes, or with
// finish_reason "stop".
func TestOpenAIStreamQuirks(t *testing.T) {
	chunks := []string{
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}}]},"finish_reason":null}]}`,
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"id":"b","type":"function","function":{"name":"g","arguments":"{}"}}]},"finish_reason":null}]}`,
		`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`,
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range chunks {
			_, _ = w.Write([]byte("data: " + c + "\n\n"))
		}
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
	}))
	defer hs.Close()
	p := providers.NewOpenAI(providers.OpenAIConfig{Name: "vllm", BaseURL: hs.URL + "/v1"})
	resp, _, err := complete(t, p, userReq("hi"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := []llm.ToolCall{{ID: "a", Name: "f", Arguments: `{"x":1}`}, {ID: "b", Name: "g", Arguments: "{}"}}
	if !reflect.DeepEqual(resp.ToolCalls, want) || resp.StopReason != llm.StopToolCalls || resp.Usage.CompletionTokens != 4 {
		t.Errorf("response %+v", resp)
	}
}

// Spec: a chat-completions request carries the key as a bearer token, the
// configured headers and those of OPENAI_CUSTOM_HEADERS, as the SDK's
// requests do; the organization and project of the process environment go
// to api.openai.com only.
func TestOpenAIRequestHeaders(t *testing.T) {
	t.Setenv("OPENAI_ORG_ID", "org-1")
	t.Setenv("OPENAI_PROJECT_ID", "proj-1")
	t.Setenv("OPENAI_CUSTOM_HEADERS", "X-Custom: one\nX-Other:two")
	got := make(chan http.Header, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"choices":[{"finish_reason":"stop","message":{"content":"hi"}}]}`)
	}))
	defer srv.Close()
	p := providers.NewOpenAI(providers.OpenAIConfig{BaseURL: srv.URL + "/v1", APIKey: "sk-1", Headers: map[string]string{"X-Configured": "yes"}})
	if _, _, err := complete(t, p, userReq("hi"), false); err != nil {
		t.Fatal(err)
	}
	h := <-got
	for k, want := range map[string]string{"Authorization": "Bearer sk-1", "X-Configured": "yes", "X-Custom": "one", "X-Other": "two",
		"Content-Type": "application/json", "OpenAI-Organization": "", "OpenAI-Project": ""} {
		if v := h.Get(k); v != want {
			t.Errorf("%s: %q, want %q", k, v, want)
		}
	}
}

func TestOpenAIErrorCodes(t *testing.T) {
	srv := llmtest.NewServer(t)
	p := srv.OpenAIProvider()
	srv.Script(
		llmtest.Reply{Status: 429, ErrorCode: "insufficient_quota", ErrorMessage: "You exceeded your current quota"},
		llmtest.Reply{Status: 400, ErrorCode: "context_length_exceeded", ErrorMessage: "This model's maximum context length is 128000 tokens."},
	)
	_, _, err := complete(t, p, userReq("hi"), false)
	var e *llm.Error
	if !errors.As(err, &e) || e.Retryable || e.Code != "insufficient_quota" {
		t.Errorf("quota: %+v", err)
	}
	_, _, err = complete(t, p, userReq("hi"), true)
	if !errors.As(err, &e) || e.Retryable || !e.ContextExceeded || e.Code != "context_length_exceeded" {
		t.Errorf("context: %+v", err)
	}
}
