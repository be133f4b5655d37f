package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// End to end: the HTTP API, the agent loop and the real OpenAI and
// Anthropic providers, against the llmtest double, which rejects requests
// the vendors would reject.

func newDoubleServer(t *testing.T, opts Options, more ...func(*agent.Config)) (*client, *llmtest.Server) {
	t.Helper()
	double := llmtest.NewServer(t)
	cfg := agent.Config{Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini", LLM: double.Registry(), LLMRetryBackoff: time.Millisecond}
	for _, f := range more {
		f(&cfg)
	}
	svc, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	srv := httptest.NewServer(NewHandler(svc, opts))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Close(ctx)
	})
	return &client{t: t, base: srv.URL, header: http.Header{}}, double
}

// checkAccepted fails the test if the double rejected any request.
func checkAccepted(t *testing.T, double *llmtest.Server) {
	t.Helper()
	for i, r := range double.Requests() {
		if r.Rejected != "" {
			t.Errorf("request %d (%s) rejected: %s", i, r.API, r.Rejected)
		}
	}
}

func TestEndToEndProviders(t *testing.T) {
	for _, model := range []string{"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"} {
		t.Run(strings.Split(model, "/")[0], func(t *testing.T) {
			c, double := newDoubleServer(t, Options{})
			a := c.createAgent(`{"name":"e2e","model":"` + model + `","memory_blocks":[{"label":"human","value":"The user is Ada."}]}`)

			// A memory edit, then an answer; non-streaming.
			double.Script(
				llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "memory_replace", Arguments: `{"label":"human","old_str":"Ada","new_str":"Ada Lovelace"}`}}},
				llmtest.Reply{Text: "Noted."},
			)
			var resp map[string]any
			c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"I am Ada Lovelace."}]}`, &resp)
			if sr := resp["stop_reason"].(map[string]any)["stop_reason"]; sr != "end_turn" {
				t.Fatalf("stop %v: %v", sr, resp)
			}
			var block letta.Block
			c.ok("GET", "/v1/agents/"+a.ID+"/core-memory/blocks/human", "", &block)
			if block.Value != "The user is Ada Lovelace." {
				t.Errorf("human %q", block.Value)
			}
			last := double.LastRequest()
			if !strings.Contains(last.System, "The user is Ada Lovelace.") || !strings.Contains(last.System, "<memory_blocks>") {
				t.Errorf("system prompt after the edit:\n%s", last.System)
			}

			// A transient model error is asked again.
			double.Script(llmtest.Reply{Status: 503, ErrorMessage: "overloaded"}, llmtest.Reply{Text: "Back."})
			var retried map[string]any
			c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"still there?"}`, &retried)
			if got := mustJSON(retried); !strings.Contains(got, `"stop_reason":"end_turn"`) || !strings.Contains(got, "Back.") {
				t.Errorf("after a transient error: %s", got)
			}

			// A lasting model error: the history keeps the user message
			// alone; the next turn (two user messages in a row) is still
			// valid for the vendor.
			double.Script(llmtest.Reply{Status: 400, ErrorMessage: "bad request"})
			body, _ := c.stream("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"are you there?","streaming":true,"include_pings":false}`)
			if !strings.Contains(body, `"stop_reason":"llm_api_error"`) || !strings.Contains(body, "event: error\ndata: ") {
				t.Errorf("error stream:\n%s", body)
			}

			// Token streaming through the provider's stream.
			double.Script(llmtest.Reply{Text: "Here I am, streaming.", ChunkSize: 5})
			body, _ = c.stream("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"hello?","streaming":true,"stream_tokens":true,"include_pings":false}`)
			var text string
			n := 0
			for _, ch := range strings.Split(body, "\n\n") {
				var m map[string]any
				if strings.HasPrefix(ch, "data: {") && json.Unmarshal([]byte(ch[6:]), &m) == nil && m["message_type"] == "assistant_message" {
					text += m["content"].(string)
					n++
				}
			}
			if text != "Here I am, streaming." || n < 2 || !strings.HasSuffix(body, "data: [DONE]\n\n") {
				t.Errorf("%d chunks %q:\n%s", n, text, body)
			}
			if !double.LastRequest().Stream {
				t.Error("token streaming did not stream from the provider")
			}

			// A client tool and its approval round trip.
			double.Script(
				llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "toolu_9", Name: "Bash", Arguments: `{"command":"date"}`}}},
				llmtest.Reply{Text: "It is noon."},
			)
			tools := `"client_tools":[{"name":"Bash","description":"Run a shell command","parameters":{"type":"object","properties":{"command":{"type":"string"}},"required":["command"]}}]`
			body, _ = c.stream("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"what time is it?","streaming":true,"include_pings":false,`+tools+`}`)
			if !strings.Contains(body, `"stop_reason":"requires_approval"`) {
				t.Fatalf("approval request:\n%s", body)
			}
			c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"type":"approval","approvals":[{"type":"tool","tool_call_id":"toolu_9","tool_return":"12:00","status":"success"}]}],`+tools+`}`, &resp)
			if !strings.Contains(mustJSON(resp), "It is noon.") {
				t.Errorf("after approval: %v", resp)
			}
			checkAccepted(t, double)

			var hist []map[string]any
			c.ok("GET", "/v1/agents/"+a.ID+"/messages?order=asc&limit=100", "", &hist)
			var kinds []string
			for _, m := range hist {
				kinds = append(kinds, m["message_type"].(string))
			}
			want := "system_message user_message tool_call_message tool_return_message assistant_message user_message assistant_message user_message user_message assistant_message " +
				"user_message approval_request_message tool_return_message assistant_message"
			if strings.Join(kinds, " ") != want {
				t.Errorf("history:\n%s\nwant:\n%s", strings.Join(kinds, " "), want)
			}
		})
	}
}

func TestEndToEndModels(t *testing.T) {
	c, double := newDoubleServer(t, Options{})
	double.SetModels(llmtest.OpenAI, llmtest.Model{ID: "gpt-4o-mini"}, llmtest.Model{ID: "gpt-4.1"})
	var models []map[string]any
	c.ok("GET", "/v1/models/", "", &models)
	handles := map[string]bool{}
	for _, m := range models {
		handles[m["handle"].(string)] = true
	}
	for _, h := range []string{"openai/gpt-4o-mini", "openai/gpt-4.1", "anthropic/claude-sonnet-4-5"} {
		if !handles[h] {
			t.Errorf("missing %s in %v", h, handles)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
