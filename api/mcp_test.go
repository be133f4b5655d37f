package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/internal/mcptest"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/mcpclient"
)

// withMCP gives the service a real MCP client that may reach loopback.
func withMCP(callTimeout time.Duration) func(*agent.Config) {
	return func(c *agent.Config) {
		c.MCP = mcpclient.New(mcpclient.Config{AllowPrivate: true, CallTimeout: callTimeout})
	}
}

// stdioBody is the create body of the test server over stdio.
func stdioBody(t *testing.T, name string) string {
	cmd, args, env := mcptest.Stdio(t)
	cfg, _ := json.Marshal(map[string]any{"mcp_server_type": "stdio", "command": cmd, "args": args, "env": env})
	return fmt.Sprintf(`{"server_name":%q,"config":%s}`, name, cfg)
}

func (c *client) createMCPServer(body string) *letta.MCPServer {
	c.t.Helper()
	var s letta.MCPServer
	c.ok("POST", "/v1/mcp-servers/", body, &s)
	return &s
}

func (c *client) mcpTools(serverID string) map[string]letta.Tool {
	c.t.Helper()
	var ts []letta.Tool
	c.ok("GET", "/v1/mcp-servers/"+serverID+"/tools", "", &ts)
	out := map[string]letta.Tool{}
	for _, t := range ts {
		out[t.Name] = t
	}
	return out
}

// deleteStatus deletes and returns the status (a 204 has no JSON body).
func (c *client) deleteStatus(path string) int {
	c.t.Helper()
	req, _ := http.NewRequest("DELETE", c.base+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Spec: /v1/mcp-servers registers a stdio server and stores its tools (type
// external_mcp, schema from the server's input schema); lists, retrieves,
// renames and deletes it; a delete takes its tools with it, off every
// agent.
func TestMCPServerLifecycle(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{}, withMCP(0))
	s := c.createMCPServer(stdioBody(t, "local"))
	if s.ServerName != "local" || *s.Type != "stdio" || !strings.HasPrefix(s.ID, "mcp_server-") || len(*s.Args) != 1 {
		t.Fatalf("created %+v", s)
	}
	tools := c.mcpTools(s.ID)
	add, ok := tools["add"]
	if len(tools) != len(mcptest.Tools) || !ok || add.ToolType != "external_mcp" || add.Tags[0] != "mcp:local" {
		t.Fatalf("tools %v", tools)
	}
	params := add.JSONSchema["parameters"].(map[string]any)
	if params["additionalProperties"] != false || !slices.Contains(params["required"].([]any), "a") || add.Metadata["mcp"].(map[string]any)["server_id"] != s.ID {
		t.Errorf("add stored as %+v", add)
	}
	var one letta.Tool
	c.ok("GET", "/v1/mcp-servers/"+s.ID+"/tools/"+add.ID, "", &one)
	if one.ID != add.ID {
		t.Errorf("retrieved %+v", one)
	}
	c.expect(409, "POST", "/v1/mcp-servers/", stdioBody(t, "local"))
	var list []letta.MCPServer
	c.ok("GET", "/v1/mcp-servers/", "", &list)
	if len(list) != 1 || list[0].ID != s.ID {
		t.Errorf("listed %+v", list)
	}

	a := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q]}`, add.ID))
	var renamed letta.MCPServer
	c.ok("PATCH", "/v1/mcp-servers/"+s.ID, `{"server_name":"renamed","config":{"mcp_server_type":"stdio"}}`, &renamed)
	if renamed.ServerName != "renamed" || *renamed.Command != *s.Command {
		t.Errorf("renamed %+v", renamed)
	}
	if tl := c.mcpTools(s.ID)["add"]; tl.Tags[0] != "mcp:renamed" || tl.Metadata["mcp"].(map[string]any)["server_name"] != "renamed" {
		t.Errorf("after a rename add is %+v", tl)
	}
	var res letta.MCPResyncResult
	c.ok("PATCH", "/v1/mcp-servers/"+s.ID+"/refresh", "", &res)
	if len(res.Added)+len(res.Updated)+len(res.Deleted) != 0 {
		t.Errorf("a refresh of an unchanged server changed %+v", res)
	}
	if st := c.deleteStatus("/v1/mcp-servers/" + s.ID); st != 204 {
		t.Fatalf("delete answered %d", st)
	}
	c.expect(404, "GET", "/v1/mcp-servers/"+s.ID, "")
	c.expect(404, "GET", "/v1/tools/"+add.ID, "")
	got := c.getAgent(a.ID)
	if len(got.Tools) == 0 || slices.ContainsFunc(got.Tools, func(tl any) bool { return strings.Contains(fmt.Sprint(tl), "external_mcp") }) {
		t.Errorf("the agent kept an MCP tool, or lost its others: %+v", got.Tools)
	}
}

// Spec: an HTTP server's auth token and custom header values are stored
// and sent, never shown back; an update that sends the redacted values
// back keeps the stored ones.
func TestMCPServerSecretsNotEchoed(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{}, withMCP(0))
	srv := mcptest.StartHTTP(t, map[string]string{"Authorization": "Bearer s3cret", "X-Team": "kelpie"})
	body := fmt.Sprintf(`{"server_name":"remote","config":{"mcp_server_type":"streamable_http","server_url":%q,
		"auth_header":"Authorization","auth_token":"Bearer s3cret","custom_headers":{"X-Team":"kelpie"}}}`, srv.URL+"/mcp")
	s := c.createMCPServer(body)
	raw := c.do("GET", "/v1/mcp-servers/"+s.ID, "")
	for _, secret := range []string{"s3cret", "kelpie"} {
		if strings.Contains(string(raw.body), secret) {
			t.Errorf("a secret is shown: %s", raw.body)
		}
	}
	if *s.AuthHeader != "Authorization" || *s.AuthToken != "Bearer "+agent.Redacted || s.CustomHeaders["X-Team"] != agent.Redacted {
		t.Errorf("created %+v", s)
	}
	if len(c.mcpTools(s.ID)) != len(mcptest.Tools) {
		t.Fatalf("the tools were not stored with the server's headers")
	}
	// The client sends back what it was shown: the secrets stay.
	shown, _ := json.Marshal(s.MCPServerConfig)
	c.ok("PATCH", "/v1/mcp-servers/"+s.ID, fmt.Sprintf(`{"config":%s}`, shown), nil)
	var res letta.MCPResyncResult
	c.ok("PATCH", "/v1/mcp-servers/"+s.ID+"/refresh", "", &res)
	// A wrong token is sent as given, and the server refuses it.
	c.ok("PATCH", "/v1/mcp-servers/"+s.ID, `{"config":{"mcp_server_type":"streamable_http","auth_token":"wrong"}}`, nil)
	if d := c.expect(404, "PATCH", "/v1/mcp-servers/"+s.ID+"/refresh", ""); !strings.Contains(d, "Could not connect to MCP server remote") {
		t.Errorf("refresh with a wrong token: %s", d)
	}
}

// Spec: bad configs are refused and change nothing: missing fields with
// Letta's 422, a bad type or URL with 400, loopback unless allowed.
func TestMCPServerValidation(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{}, withMCP(0))
	c.expect(422, "POST", "/v1/mcp-servers/", `{"server_name":"x"}`)
	c.expect(422, "POST", "/v1/mcp-servers/", `{"server_name":"x","config":{"command":"ls","args":[]}}`)
	c.expect(422, "POST", "/v1/mcp-servers/", `{"server_name":"x","config":{"mcp_server_type":"stdio","command":"ls"}}`)
	c.expect(400, "POST", "/v1/mcp-servers/", `{"server_name":"x","config":{"mcp_server_type":"ftp","server_url":"x"}}`)
	c.expect(400, "POST", "/v1/mcp-servers/", `{"server_name":"x","config":{"mcp_server_type":"sse","server_url":"ftp://example.com"}}`)
	c.expect(400, "POST", "/v1/mcp-servers/", `{"server_name":"","config":{"mcp_server_type":"stdio","command":"ls","args":[]}}`)
	c.expect(404, "GET", "/v1/mcp-servers/mcp_server-00000000-0000-4000-8000-000000000000", "")
	c.expect(404, "GET", "/v1/mcp-servers/nope", "")

	strict, _ := newTurnServer(t, nil, Options{}, func(cfg *agent.Config) {
		cfg.MCP = mcpclient.New(mcpclient.Config{DisableStdio: true})
	})
	if d := strict.expect(400, "POST", "/v1/mcp-servers/", `{"server_name":"x","config":{"mcp_server_type":"streamable_http","server_url":"http://127.0.0.1:9/mcp"}}`); !strings.Contains(d, "non-public IP not allowed") {
		t.Errorf("loopback: %s", d)
	}
	if d := strict.expect(400, "POST", "/v1/mcp-servers/", stdioBody(t, "x")); !strings.Contains(d, "stdio servers are disabled") {
		t.Errorf("stdio: %s", d)
	}
	var list []letta.MCPServer
	c.ok("GET", "/v1/mcp-servers/", "", &list)
	strict.ok("GET", "/v1/mcp-servers/", "", &list)
	if len(list) != 0 {
		t.Errorf("refused creates stored %+v", list)
	}
}

func pidGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// Spec: in a turn, the model calls an MCP tool; the call runs outside the
// agent's actor, its result is committed and reaches the model's next
// request; the stdio server it started is gone once the call is answered.
func TestTurnCallsMCPTool(t *testing.T) {
	p := &scripted{}
	p.add(toolCallReply("call_1", "add", `{"a": 2, "b": 40}`), replyAfterToolResult,
		toolCallReply("call_2", "pid", `{}`), replyAfterToolResult)
	c, _ := newTurnServer(t, p, Options{}, withMCP(0))
	s := c.createMCPServer(stdioBody(t, "local"))
	tools := c.mcpTools(s.ID)
	a := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q,%q],"include_base_tools":false}`, tools["add"].ID, tools["pid"].ID))

	var resp turnResponse
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"add 2 and 40"}]}`, &resp)
	got := string(resp.Messages)
	for _, want := range []string{`"tool_return":"42"`, `"status":"success"`, `the tool said: 42`} {
		if !strings.Contains(got, want) {
			t.Errorf("response lacks %s: %s", want, got)
		}
	}
	var hist []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages?order=asc", "", &hist)
	if !slices.ContainsFunc(hist, func(m map[string]any) bool {
		return m["message_type"] == "tool_return_message" && m["tool_return"] == "42"
	}) {
		t.Errorf("history lacks the result: %v", hist)
	}

	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"your pid?"}]}`, &resp)
	_, after, _ := strings.Cut(string(resp.Messages), "the tool said: ")
	pid, err := strconv.Atoi(strings.TrimRight(after[:strings.IndexByte(after, '"')], " "))
	if err != nil {
		t.Fatalf("no pid reached the model: %s", resp.Messages)
	}
	if !pidGone(pid) {
		t.Errorf("the stdio server %d still runs after its call", pid)
	}
}

// Spec: an MCP server that dies during a call, hangs, or cannot be reached
// gives the model a clear error result; the turn goes on and ends.
func TestTurnMCPServerFailures(t *testing.T) {
	p := &scripted{}
	p.add(toolCallReply("call_1", "crash", `{}`), replyAfterToolResult,
		toolCallReply("call_2", "hang", `{}`), replyAfterToolResult,
		toolCallReply("call_3", "echo", `{"message":"hi"}`), replyAfterToolResult)
	c, _ := newTurnServer(t, p, Options{}, withMCP(time.Second))
	s := c.createMCPServer(stdioBody(t, "local"))
	tools := c.mcpTools(s.ID)
	a := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q,%q],"include_base_tools":false}`, tools["crash"].ID, tools["hang"].ID))

	turn := func(want ...string) {
		t.Helper()
		var resp turnResponse
		c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"go"}]}`, &resp)
		for _, w := range want {
			if !strings.Contains(string(resp.Messages), w) {
				t.Errorf("response lacks %s: %s", w, resp.Messages)
			}
		}
		if resp.StopReason.StopReason != letta.StopEndTurn {
			t.Errorf("stop %v", resp.StopReason)
		}
	}
	turn(`"status":"error"`, `the tool said: Error: MCP server \"local\" failed during the call of crash: the server exited: exit status 3; it printed: boom`)
	turn(`the tool said: Error: MCP server \"local\" did not answer the call of hang within 1s; its outcome is unknown`)

	// A remote server's tools, then the server gone.
	if st := c.deleteStatus("/v1/mcp-servers/" + s.ID); st != 204 {
		t.Fatalf("delete answered %d", st)
	}
	srv := mcptest.StartHTTP(t, nil)
	remote := c.createMCPServer(fmt.Sprintf(`{"server_name":"remote","config":{"mcp_server_type":"streamable_http","server_url":%q}}`, srv.URL+"/mcp"))
	c.ok("PATCH", "/v1/agents/"+a.ID+"/tools/attach/"+c.mcpTools(remote.ID)["echo"].ID, "", nil)
	srv.Close()
	turn(`the tool said: Error: could not connect to MCP server \"remote\" to call echo`)
}

// Spec: the routes letta-code's /mcp dialog uses: servers by name, a
// server's tools listed live, one stored as a tool; and running a tool
// directly through /v1/mcp-servers.
func TestMCPLegacyRoutesAndRun(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{}, withMCP(0))
	s := c.createMCPServer(stdioBody(t, "local"))
	var byName map[string]letta.MCPServerConfigLegacy
	c.ok("GET", "/v1/tools/mcp/servers", "", &byName)
	if byName["local"].Type != "stdio" || byName["local"].ServerName != "local" {
		t.Errorf("servers by name %+v", byName)
	}
	var live []letta.MCPTool
	c.ok("GET", "/v1/tools/mcp/servers/local/tools", "", &live)
	if len(live) != len(mcptest.Tools) || live[0].InputSchema == nil {
		t.Errorf("live tools %+v", live)
	}
	c.expect(404, "GET", "/v1/tools/mcp/servers/nope/tools", "")
	var echo letta.Tool
	c.ok("POST", "/v1/tools/mcp/servers/local/echo", "", &echo)
	if echo.ID != c.mcpTools(s.ID)["echo"].ID {
		t.Errorf("added %+v", echo)
	}
	if d := c.expect(400, "POST", "/v1/tools/mcp/servers/local/nope", ""); !strings.Contains(d, "available tools: add, big") {
		t.Errorf("unknown tool: %s", d)
	}
	var res agent.ToolExecutionResult
	c.ok("POST", "/v1/mcp-servers/"+s.ID+"/tools/"+echo.ID+"/run", `{"args":{"message":"hello"}}`, &res)
	if res.Status != "success" || res.FuncReturn != "hello" {
		t.Errorf("run answered %+v", res)
	}
}
