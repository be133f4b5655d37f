package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
	"github.com/kelpie/kelpie/sandbox"
)

// incomingMarker starts every message an agent sends another.
const incomingMarker = "[Incoming message from agent with ID '"

// obedientModel is a model that does what it is told: a user message
// "call <tool> <json arguments>" is answered with that call; a message
// from another agent with incoming(sender, text), or "pong" when incoming
// is nil; a tool result with "done: <result>".
func obedientModel(incoming func(sender, text string) llmtest.Reply) func(llmtest.Request) llmtest.Reply {
	return func(r llmtest.Request) llmtest.Reply {
		last := r.Messages[len(r.Messages)-1]
		switch {
		case last.Role == "tool":
			return llmtest.Reply{Text: "done: " + last.Content}
		case strings.Contains(last.Content, incomingMarker):
			text := last.Content[strings.Index(last.Content, incomingMarker)+len(incomingMarker):]
			sender, _, _ := strings.Cut(text, "'")
			if incoming == nil {
				return llmtest.Reply{Text: "pong"}
			}
			return incoming(sender, last.Content)
		}
		if cmd, ok := strings.CutPrefix(r.LastUserText(), "call "); ok {
			name, args, _ := strings.Cut(cmd, " ")
			return llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: name, Arguments: args}}}
		}
		return llmtest.Reply{Text: "ok"}
	}
}

// builtinTurn is a message response as these tests read it.
type builtinTurn struct {
	Messages []struct {
		MessageType string `json:"message_type"`
		Content     any    `json:"content"`
		ToolReturn  string `json:"tool_return"`
		Status      string `json:"status"`
		Name        string `json:"name"`
	} `json:"messages"`
}

// toolReturn is the response's one tool result.
func (r builtinTurn) toolReturn(t *testing.T) (text, status string) {
	t.Helper()
	for _, m := range r.Messages {
		if m.MessageType == "tool_return_message" {
			return m.ToolReturn, m.Status
		}
	}
	t.Fatalf("no tool result in %+v", r.Messages)
	return "", ""
}

// order sends an agent a user message telling the model what to call.
func (c *client) order(agentID, tool string, args any) builtinTurn {
	c.t.Helper()
	data, _ := json.Marshal(args)
	body, _ := json.Marshal(map[string]any{"messages": []map[string]any{{"role": "user", "content": "call " + tool + " " + string(data)}}})
	var r builtinTurn
	c.ok("POST", "/v1/agents/"+agentID+"/messages", string(body), &r)
	return r
}

// lastToolResultSent is the content of the last tool result the model was
// sent.
func lastToolResultSent(double *llmtest.Server) string {
	reqs := double.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		ms := reqs[i].Messages
		for j := len(ms) - 1; j >= 0; j-- {
			if ms[j].Role == "tool" {
				return ms[j].Content
			}
		}
	}
	return ""
}

// Spec: run_code runs through a turn: the model calls it, the code runs
// in the bubblewrap sandbox, and its result (Letta's shape) is stored and
// reaches the model; the agent tool run route runs it too.
func TestRunCodeThroughATurn(t *testing.T) {
	kelpietest.NeedTool(t, "bwrap")
	box, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, double := newDoubleServer(t, Options{}, func(cfg *agent.Config) { cfg.Tools = box })
	double.SetDefault(obedientModel(nil))
	a := c.createAgent(`{"agent_type":"letta_v1_agent","include_base_tools":false,"tools":["run_code"]}`)
	r := c.order(a.ID, "run_code", map[string]string{"code": "print('hi')\n6 * 7", "language": "python"})
	text, status := r.toolReturn(t)
	want := `{"results": ["42"], "logs": {"stdout": ["hi\n"], "stderr": []}}`
	if status != "success" || text != want {
		t.Errorf("run_code returned %s %q, want %q", status, text, want)
	}
	if got := lastToolResultSent(double); !strings.Contains(got, `"results": ["42"]`) {
		t.Errorf("the model was sent %q", got)
	}
	r = c.order(a.ID, "run_code", map[string]string{"code": "1", "language": "java"})
	if text, status := r.toolReturn(t); status != "error" || !strings.Contains(text, "runs python, js, ts only") {
		t.Errorf("java: %s %q", status, text)
	}
	// Python code calls the agent's custom tools by name.
	var tl letta.Tool
	c.ok("POST", "/v1/tools", sourceBody(doubleSource, ""), &tl)
	c.ok("PATCH", "/v1/agents/"+a.ID+"/tools/attach/"+tl.ID, "", nil)
	r = c.order(a.ID, "run_code", map[string]string{"code": "double(21)", "language": "python"})
	if text, status := r.toolReturn(t); status != "success" || !strings.Contains(text, `"results": ["'42'"]`) {
		t.Errorf("run_code calling a custom tool: %s %q", status, text)
	}
	var run agent.ToolExecutionResult
	c.ok("POST", "/v1/agents/"+a.ID+"/tools/run_code/run", `{"args":{"code":"sum(range(5))","language":"python"}}`, &run)
	if run.Status != "success" || !strings.Contains(fmt.Sprint(run.FuncReturn), `"results": ["10"]`) {
		t.Errorf("run route: %+v", run)
	}
	checkAccepted(t, double)
}

// Spec: fetch_webpage runs through a turn against a page on loopback
// (allowed by the operator's flag): the page's text reaches the model.
// web_search searches Exa (a double on loopback) with the agent's own
// EXA_API_KEY, and its results reach the model; without a key it answers
// an error result saying so.
func TestWebToolsThroughATurn(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, `<html><head><title>Tide table</title></head><body><h1>High tide</h1><p>At 06:12 and 18:40.</p></body></html>`)
	}))
	defer page.Close()
	exa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/search" || r.Header.Get("x-api-key") != "agent-key" {
			http.Error(w, `{"error":"Invalid API key"}`, http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"results":[{"title":"Tides today","url":"https://tides.example/today","publishedDate":null,"author":null,"summary":"High tide at 06:12."}]}`)
	}))
	defer exa.Close()
	c, double := newDoubleServer(t, Options{}, func(cfg *agent.Config) {
		cfg.Web = tool.NewFetcher(tool.FetchConfig{AllowPrivate: true})
		cfg.Search = tool.NewSearcher(tool.SearchConfig{BaseURL: exa.URL})
	})
	double.SetDefault(obedientModel(nil))
	a := c.createAgent(`{"agent_type":"letta_v1_agent","include_base_tools":false,"tools":["web_search","fetch_webpage"]}`)
	r := c.order(a.ID, "fetch_webpage", map[string]string{"url": page.URL})
	if text, status := r.toolReturn(t); status != "success" || !strings.Contains(text, "# High tide\n\nAt 06:12 and 18:40.") {
		t.Errorf("fetch_webpage returned %s %q", status, text)
	}
	if got := lastToolResultSent(double); !strings.Contains(got, "At 06:12 and 18:40.") {
		t.Errorf("the model was sent %q", got)
	}
	r = c.order(a.ID, "web_search", map[string]string{"query": "tides"})
	if text, status := r.toolReturn(t); status != "error" || !strings.Contains(text, "EXA_API_KEY is not set") {
		t.Errorf("web_search without a key returned %s %q", status, text)
	}
	c.ok("PATCH", "/v1/agents/"+a.ID, `{"tool_exec_environment_variables":{"EXA_API_KEY":"agent-key"}}`, nil)
	r = c.order(a.ID, "web_search", map[string]string{"query": "tides"})
	if text, status := r.toolReturn(t); status != "success" || !strings.Contains(text, `"summary": "High tide at 06:12."`) {
		t.Errorf("web_search returned %s %q", status, text)
	}
	if got := lastToolResultSent(double); !strings.Contains(got, "High tide at 06:12.") {
		t.Errorf("the model was sent %q", got)
	}
	var run agent.ToolExecutionResult
	c.ok("POST", "/v1/agents/"+a.ID+"/tools/fetch_webpage/run", `{"args":{"url":"`+page.URL+`"}}`, &run)
	if run.Status != "success" || !strings.Contains(fmt.Sprint(run.FuncReturn), "High tide") {
		t.Errorf("run route: %+v", run)
	}
	checkAccepted(t, double)
}
