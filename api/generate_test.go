package api

import (
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// TestGenerate: /generate asks the agent's model once (a system message
// and the prompt, no tools, no memory) and stores nothing; a response
// schema forces Letta's structured_output tool and its arguments are the
// answer; errors are Letta's (422 for a blank prompt, 404 for an unknown
// model or agent, 502 when the provider fails).
func TestGenerate(t *testing.T) {
	c, double := newDoubleServer(t, Options{})
	a := c.createAgent(`{"name":"gen","memory_blocks":[{"label":"human","value":"secret fact"}]}`)
	before := len(double.Requests())

	double.Script(llmtest.Reply{Text: "Paris", Usage: &llm.Usage{PromptTokens: 12, CompletionTokens: 1}})
	var got letta.GenerateResponse
	c.ok("POST", "/v1/agents/"+a.ID+"/generate", `{"prompt":"Capital of France?"}`, &got)
	if got.Content != "Paris" || got.Model != "gpt-4o-mini" || got.Usage.PromptTokens != 12 || got.Usage.TotalTokens != 13 {
		t.Errorf("answer %+v", got)
	}
	reqs := double.Requests()[before:]
	if len(reqs) != 1 || reqs[0].System != "You are a helpful assistant." || len(reqs[0].Tools) != 0 ||
		len(reqs[0].Messages) != 2 || reqs[0].Messages[1].Content != "Capital of France?" || strings.Contains(reqs[0].System, "secret fact") {
		t.Fatalf("the model got %+v", reqs)
	}

	double.Script(llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "c1", Name: "structured_output", Arguments: `{"city":"Paris"}`}}})
	c.ok("POST", "/v1/agents/"+a.ID+"/generate", `{"prompt":"Capital?","system_prompt":"Be terse.","response_schema":{"properties":{"city":{"type":"string"}}}}`, &got)
	last := double.Requests()[len(double.Requests())-1]
	if got.Content != `{"city":"Paris"}` || last.ToolChoice != "structured_output" || len(last.Tools) != 1 || last.System != "Be terse." ||
		!strings.Contains(string(last.Tools[0].Parameters), `"required":["city"]`) {
		t.Errorf("structured: %+v; the model got tools %+v choice %q system %q", got, last.Tools, last.ToolChoice, last.System)
	}

	c.expect(422, "POST", "/v1/agents/"+a.ID+"/generate", `{}`)
	c.expect(422, "POST", "/v1/agents/"+a.ID+"/generate", `{"prompt":""}`)
	c.expect(422, "POST", "/v1/agents/"+a.ID+"/generate", `{"prompt":"  "}`)
	if d := c.expect(404, "POST", "/v1/agents/"+a.ID+"/generate", `{"prompt":"hi","override_model":"nope/model-x"}`); d != "Model 'nope/model-x' not found or not accessible" {
		t.Errorf("unknown model: %q", d)
	}
	c.expect(404, "POST", "/v1/agents/agent-123e4567-e89b-42d3-8456-426614174000/generate", `{"prompt":"hi"}`)
	double.Script(llmtest.Reply{Status: 400, ErrorMessage: "bad request from provider"})
	if d := c.expect(502, "POST", "/v1/agents/"+a.ID+"/generate", `{"prompt":"hi"}`); !strings.HasPrefix(d, "LLM provider error: ") {
		t.Errorf("provider failure: %q", d)
	}

	var msgs []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages", "", &msgs)
	for _, m := range msgs {
		if m["message_type"] != "system_message" {
			t.Errorf("generate stored a message: %v", m)
		}
	}
}
