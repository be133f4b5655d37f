package api

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/sandbox"
)

// withSandbox gives the service a real bubblewrap sandbox.
func withSandbox(t testing.TB) func(*agent.Config) {
	kelpietest.NeedTool(t, "bwrap")
	s, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return func(c *agent.Config) { c.Tools = s }
}

// sourceBody is a tool create body with only Python source: the schema is
// derived from it.
func sourceBody(src, extra string) string {
	data, _ := json.Marshal(src)
	if extra != "" {
		extra = "," + extra
	}
	return fmt.Sprintf(`{"source_code":%s%s}`, data, extra)
}

const doubleSource = `def double(x: int) -> str:
    """Double a number.

    Args:
        x (int): The number.

    Returns:
        str: Twice the number.
    """
    print("doubling", x)
    return str(x * 2)
`

// turnResponse is a LettaResponse as a client decodes it.
type turnResponse struct {
	Messages   json.RawMessage `json:"messages"`
	StopReason struct {
		StopReason string `json:"stop_reason"`
	} `json:"stop_reason"`
}

// replyAfterToolResult answers with the text of the last tool result the
// model was sent, so a test sees what reached the model.
func replyAfterToolResult(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
	last := req.Messages[len(req.Messages)-1]
	if last.Role != llm.RoleTool {
		return textReply("no tool result reached me")(ctx, req, onDelta)
	}
	return textReply("the tool said: "+last.Content)(ctx, req, onDelta)
}

// Spec: a turn in which the model calls a custom tool runs it in the
// sandbox, commits its result (cut to return_char_limit) in the turn, and
// sends that result to the model; the schema the model is offered is the
// one derived from the source.
func TestTurnCallsCustomTool(t *testing.T) {
	p := &scripted{}
	var offered []llm.Tool
	p.add(func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
		offered = req.Tools
		return toolCallReply("call_1", "double", `{"x": 21}`)(ctx, req, d)
	}, replyAfterToolResult,
		toolCallReply("call_2", "long", `{}`), replyAfterToolResult)
	c, _ := newTurnServer(t, p, Options{}, withSandbox(t))
	tl := c.createTool(sourceBody(doubleSource, ""))
	if tl.JSONSchema["description"] != "Double a number." {
		t.Fatalf("derived schema %v", tl.JSONSchema)
	}
	long := c.createTool(sourceBody("def long():\n    \"\"\"Say a lot.\"\"\"\n    return 'y' * 100\n", `"return_char_limit":10`))
	a := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q,%q],"include_base_tools":false}`, tl.ID, long.ID))

	var resp turnResponse
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"double 21"}]}`, &resp)
	if len(offered) != 2 || offered[0].Name != "double" || !strings.Contains(string(offered[0].Parameters), `"x":{"description":"The number.","type":"integer"}`) {
		t.Errorf("offered %+v", offered)
	}
	got := string(resp.Messages)
	for _, want := range []string{`"message_type":"tool_call_message"`, `"tool_return":"42"`, `"status":"success"`, `"stdout":["doubling 21\n"]`, `the tool said: 42`} {
		if !strings.Contains(got, want) {
			t.Errorf("response lacks %s: %s", want, got)
		}
	}
	if resp.StopReason.StopReason != letta.StopEndTurn {
		t.Errorf("stop %v", resp.StopReason)
	}
	// The result is committed: the history has it.
	var hist []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages?order=asc", "", &hist)
	found := false
	for _, m := range hist {
		found = found || m["message_type"] == "tool_return_message" && m["tool_return"] == "42"
	}
	if !found {
		t.Errorf("history lacks the result: %v", hist)
	}

	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"talk"}]}`, &resp)
	raw := resp.Messages
	if want := "yyyyyyyyyy... [NOTE: function output was truncated since it exceeded the character limit (100 > 10)]"; !strings.Contains(string(raw), want) {
		t.Errorf("truncation: %s", raw)
	}
}

// Spec: a custom tool that fails gives the model an error result, and the
// turn goes on.
func TestTurnCustomToolFailure(t *testing.T) {
	p := &scripted{}
	p.add(toolCallReply("call_1", "boom", `{}`), replyAfterToolResult)
	c, _ := newTurnServer(t, p, Options{}, withSandbox(t))
	tl := c.createTool(sourceBody("def boom():\n    \"\"\"Explode.\"\"\"\n    raise RuntimeError('kaput')\n", ""))
	a := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q]}`, tl.ID))
	var resp turnResponse
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"go"}]}`, &resp)
	raw := resp.Messages
	if !strings.Contains(string(raw), `"tool_return":"Error: RuntimeError: kaput","status":"error"`) || !strings.Contains(string(raw), "the tool said: Error: RuntimeError: kaput") {
		t.Errorf("response %s", raw)
	}
}

// Spec: POST /v1/tools/run runs source once and stores nothing; POST
// /v1/agents/{id}/tools/{name}/run runs an agent's custom tool.
func TestRunToolRoutes(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{}, withSandbox(t))
	before := c.count("/v1/tools/count")
	var ret letta.ToolReturnMessage
	c.ok("POST", "/v1/tools/run", fmt.Sprintf(`{"source_code":%q,"args":{"x":4},"env_vars":{"K":"v"}}`, doubleSource), &ret)
	if ret.Status != "success" || ret.ToolReturn != "8" || ret.MessageType != "tool_return_message" || len(ret.Stdout) != 1 {
		t.Errorf("run from source %+v", ret)
	}
	c.ok("POST", "/v1/tools/run", `{"source_code":"def env():\n    import os\n    return os.environ['K']\n","name":"env","args":{},"env_vars":{"K":"v"}}`, &ret)
	if ret.ToolReturn != "v" {
		t.Errorf("env_vars: %+v", ret)
	}
	c.expect(422, "POST", "/v1/tools/run", `{"source_code":"def f(): pass"}`)
	if n := c.count("/v1/tools/count"); n != before {
		t.Errorf("run stored a tool: %d, want %d", n, before)
	}
	tl := c.createTool(sourceBody(doubleSource, ""))
	a := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q]}`, tl.ID))
	var res agent.ToolExecutionResult
	c.ok("POST", "/v1/agents/"+a.ID+"/tools/double/run", `{"args":{"x":5}}`, &res)
	if res.Status != "success" || res.FuncReturn != "10" {
		t.Errorf("agent run %+v", res)
	}
	c.expect(404, "POST", "/v1/agents/"+a.ID+"/tools/nope/run", `{}`)
	c.expect(404, "POST", "/v1/agents/"+a.ID+"/tools/double/walk", `{}`)
	c.expect(400, "POST", "/v1/tools", sourceBody("def f(x):\n    \"\"\"F.\n\n    Args:\n        x: X.\n    \"\"\"\n", ""))
}

// Spec: an agent's tool rules steer its turns: run_first forces the
// first call, max_count_per_step withdraws a tool once used up, and an
// exit_loop tool ends the turn with stop reason tool_rule; a repeated rule
// is refused.
func TestToolRulesInTurn(t *testing.T) {
	p := &scripted{}
	var reqs []llm.Request
	record := func(next func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error)) func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
		return func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
			reqs = append(reqs, req)
			return next(ctx, req, d)
		}
	}
	p.add(record(toolCallReply("call_1", "conversation_search", `{"query":"tea"}`)),
		record(toolCallReply("call_2", "archival_memory_insert", `{"content":"likes tea"}`)),
		record(textReply("should not be asked")))
	c, _ := newTurnServer(t, p, Options{})
	c.expect(400, "POST", "/v1/agents", `{"tool_rules":[{"tool_name":"a","type":"exit_loop"},{"tool_name":"a","type":"exit_loop"}]}`)
	a := c.createAgent(`{"tool_rules":[{"tool_name":"conversation_search","type":"run_first"},
		{"tool_name":"conversation_search","type":"max_count_per_step","max_count_limit":1},
		{"tool_name":"archival_memory_insert","type":"exit_loop"}]}`)
	var resp turnResponse
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"remember tea"}]}`, &resp)
	if resp.StopReason.StopReason != letta.StopToolRule || len(reqs) != 2 {
		t.Fatalf("stop %q after %d model requests, want tool_rule after 2", resp.StopReason.StopReason, len(reqs))
	}
	offered := func(req llm.Request) []string {
		var out []string
		for _, tl := range req.Tools {
			out = append(out, tl.Name)
		}
		return out
	}
	if got := offered(reqs[0]); len(got) != 1 || got[0] != "conversation_search" || reqs[0].ToolChoice != "conversation_search" {
		t.Errorf("first step offered %v forcing %q", got, reqs[0].ToolChoice)
	}
	if got := offered(reqs[1]); slices.Contains(got, "conversation_search") || !slices.Contains(got, "archival_memory_insert") || reqs[1].ToolChoice != "" {
		t.Errorf("second step offered %v forcing %q", got, reqs[1].ToolChoice)
	}
}

// Spec: a tool that requires approval (the per-agent toggle, or a
// custom tool's default_requires_approval) stops the turn with an
// approval request; a denial answers the model with an error and runs
// nothing; an approval runs the tool (a custom one in the sandbox) and
// the turn goes on with its result.
func TestToolApproval(t *testing.T) {
	p := &scripted{}
	p.add(toolCallReply("call_a", "archival_memory_insert", `{"content":"likes tea"}`), replyAfterToolResult,
		toolCallReply("call_b", "archival_memory_insert", `{"content":"likes tea"}`), replyAfterToolResult,
		toolCallReply("call_c", "double", `{"x": 4}`), replyAfterToolResult)
	c, _ := newTurnServer(t, p, Options{}, withSandbox(t))
	a := c.createAgent(`{}`)
	var st letta.AgentState
	c.ok("PATCH", "/v1/agents/"+a.ID+"/tools/approval/archival_memory_insert", `{"requires_approval":true}`, &st)
	if raw, _ := json.Marshal(st.ToolRules); !strings.Contains(string(raw), `"tool_name":"archival_memory_insert","type":"requires_approval"`) {
		t.Fatalf("tool rules %s", raw)
	}
	send := func(body string) string {
		var resp turnResponse
		c.ok("POST", "/v1/agents/"+a.ID+"/messages", body, &resp)
		return resp.StopReason.StopReason + " " + string(resp.Messages)
	}
	approval := func(id string, approve bool) string {
		return fmt.Sprintf(`{"messages":[{"type":"approval","approvals":[{"type":"approval","tool_call_id":%q,"approve":%v,"reason":"not now"}]}]}`, id, approve)
	}
	passages := func() int {
		var ps []any
		c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory", "", &ps)
		return len(ps)
	}
	if got := send(`{"messages":[{"role":"user","content":"remember tea"}]}`); !strings.HasPrefix(got, "requires_approval ") || !strings.Contains(got, `"message_type":"approval_request_message"`) {
		t.Fatalf("call needing approval: %s", got)
	}
	if got := send(approval("call_a", false)); !strings.Contains(got, "the tool said: Error: the user denied this tool call. Reason: not now") || passages() != 0 {
		t.Errorf("denied: %s; %d passages", got, passages())
	}
	send(`{"messages":[{"role":"user","content":"please remember tea"}]}`)
	if got := send(approval("call_b", true)); !strings.Contains(got, "the tool said: Saved to archival memory.") || passages() != 1 {
		t.Errorf("approved: %s; %d passages", got, passages())
	}

	// A custom tool that requires approval by default.
	tl := c.createTool(sourceBody(doubleSource, `"default_requires_approval":true`))
	c.ok("PATCH", "/v1/agents/"+a.ID+"/tools/attach/"+tl.ID, "", &st)
	if raw, _ := json.Marshal(st.ToolRules); !strings.Contains(string(raw), `"tool_name":"double","type":"requires_approval"`) {
		t.Fatalf("attach did not add the approval rule: %s", raw)
	}
	if got := send(`{"messages":[{"role":"user","content":"double 4"}]}`); !strings.HasPrefix(got, "requires_approval ") {
		t.Fatalf("custom call needing approval: %s", got)
	}
	if got := send(approval("call_c", true)); !strings.HasPrefix(got, "end_turn ") || !strings.Contains(got, `"tool_return":"8"`) || !strings.Contains(got, "the tool said: 8") {
		t.Errorf("approved custom tool: %s", got)
	}
	c.ok("PATCH", "/v1/agents/"+a.ID+"/tools/approval/double?requires_approval=false", "", &st)
	if raw, _ := json.Marshal(st.ToolRules); strings.Contains(string(raw), `"tool_name":"double"`) {
		t.Errorf("toggle off left %s", raw)
	}
	c.expect(422, "PATCH", "/v1/agents/"+a.ID+"/tools/approval/double", "")
}

// Spec: an agent's secrets and tool_exec_environment_variables reach its
// custom tools' environment (and nothing else of the server's does); the
// API names them but never echoes a value; an update replaces them.
func TestToolEnvironment(t *testing.T) {
	p := &scripted{}
	p.add(toolCallReply("call_1", "env", `{}`), replyAfterToolResult)
	c, _ := newTurnServer(t, p, Options{}, withSandbox(t))
	tl := c.createTool(sourceBody("def env() -> str:\n    \"\"\"Read the environment.\"\"\"\n    import os\n    return os.environ.get('API_TOKEN', '-') + ' ' + os.environ.get('MODE', '-') + ' ' + os.environ.get('OPENAI_API_KEY', '-')\n", ""))
	a := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q],"secrets":{"API_TOKEN":"s3cret"},"tool_exec_environment_variables":{"MODE":"fast","API_TOKEN":"overridden"}}`, tl.ID))
	raw, _ := json.Marshal(a.Secrets)
	if strings.Contains(string(raw), "s3cret") || !strings.Contains(string(raw), `"key":"API_TOKEN"`) || len(a.Secrets) != 2 {
		t.Errorf("secrets rendered as %s", raw)
	}
	var resp turnResponse
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"env?"}]}`, &resp)
	if !strings.Contains(string(resp.Messages), `"tool_return":"s3cret fast -"`) {
		t.Errorf("turn: %s", resp.Messages)
	}
	var st letta.AgentState
	c.ok("PATCH", "/v1/agents/"+a.ID, `{"secrets":{"API_TOKEN":"new"}}`, &st)
	var res agent.ToolExecutionResult
	c.ok("POST", "/v1/agents/"+a.ID+"/tools/env/run", `{}`, &res)
	if res.FuncReturn != "new - -" {
		t.Errorf("after update: %+v", res)
	}
	c.expect(400, "POST", "/v1/agents", `{"secrets":{"BAD NAME":"x"}}`)
}
