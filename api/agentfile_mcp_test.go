package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/internal/mcptest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// mcpServersByName lists a server's MCP servers by name.
func (c *client) mcpServersByName() map[string]letta.MCPServer {
	c.t.Helper()
	var list []letta.MCPServer
	c.ok("GET", "/v1/mcp-servers/", "", &list)
	out := map[string]letta.MCPServer{}
	for _, s := range list {
		out[s.ServerName] = s
	}
	return out
}

// Spec: an export lists the MCP servers of the agent's MCP tools in
// Letta's shape (stdio_config without env, server_url) and no secret; an
// import creates them, with the file's MCP tools as their tools, or reuses
// the server of that name (its secrets kept), in the import's one
// transaction: a file refused half-way leaves no server behind. A server
// without an MCP client refuses such a file.
func TestAgentFileMCPServers(t *testing.T) {
	var store, store2 kv.Store
	c, _ := newTurnServer(t, nil, Options{}, withMCP(0), func(cfg *agent.Config) { store = cfg.Store })
	local := c.createMCPServer(stdioBody(t, "local"))
	h := mcptest.StartHTTP(t, map[string]string{"Authorization": "Bearer s3cret"})
	remote := c.createMCPServer(fmt.Sprintf(`{"server_name":"remote","config":{"mcp_server_type":"streamable_http","server_url":%q,"auth_token":"s3cret"}}`, h.URL+"/mcp"))
	// Both offer the same tools: the last registered took them all, so
	// echo is given back to the first.
	var echo letta.Tool
	c.ok("POST", "/v1/tools/mcp/servers/local/echo", "", &echo)
	add := c.mcpTools(remote.ID)["add"]
	a := c.createAgent(fmt.Sprintf(`{"name":"mcp-user","tool_ids":[%q,%q]}`, echo.ID, add.ID))

	exp := c.do("GET", "/v1/agents/"+a.ID+"/export", "")
	if exp.status != http.StatusOK {
		t.Fatalf("export: %d %s", exp.status, exp.body)
	}
	for _, secret := range []string{"s3cret", mcptest.EnvServe} {
		if strings.Contains(string(exp.body), secret) {
			t.Errorf("the export shows a secret (%s): %s", secret, exp.body)
		}
	}
	var f letta.AgentFile
	if err := json.Unmarshal(exp.body, &f); err != nil {
		t.Fatal(err)
	}
	byName := map[string]letta.AgentFileMCPServer{}
	for _, s := range f.MCPServers {
		byName[s.ServerName] = s
	}
	ls, rs := byName["local"], byName["remote"]
	if len(f.MCPServers) != 2 || !strings.HasPrefix(ls.ID, "mcp_server-") || ls.ServerType != "stdio" || ls.StdioConfig == nil ||
		ls.StdioConfig.Command != *local.Command || ls.StdioConfig.Type != "stdio" || ls.ServerURL != nil ||
		rs.ServerType != "streamable_http" || rs.ServerURL == nil || *rs.ServerURL != h.URL+"/mcp" || rs.StdioConfig != nil {
		t.Fatalf("exported servers %+v", f.MCPServers)
	}

	// Into a fresh server: the servers and the file's two tools are
	// created; once its token is entered again, the remote one answers.
	c2, _ := newTurnServer(t, nil, Options{}, withMCP(0), func(cfg *agent.Config) { store2 = cfg.Store })
	r := c2.upload(exp.body)
	if r.status != http.StatusOK {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	var imported letta.ImportedAgents
	json.Unmarshal(r.body, &imported)
	servers := c2.mcpServersByName()
	if len(servers) != 2 || *servers["local"].Type != "stdio" || *servers["remote"].ServerURL != h.URL+"/mcp" || servers["remote"].AuthToken != nil {
		t.Fatalf("imported servers %+v", servers)
	}
	imAdd, ok := c2.mcpTools(servers["remote"].ID)["add"]
	if !ok || len(c2.mcpTools(servers["local"].ID)) != 1 || imAdd.ToolType != "external_mcp" {
		t.Fatalf("imported tools: %v", c2.mcpTools(servers["remote"].ID))
	}
	st := c2.getAgent(imported.AgentIDs[0])
	if n := strings.Count(fmt.Sprint(st.Tools), "external_mcp"); n != 2 || !strings.Contains(fmt.Sprint(st.Tools), imAdd.ID) {
		t.Errorf("the imported agent has %d MCP tools, want echo and add (%s)", n, imAdd.ID)
	}
	c2.ok("PATCH", "/v1/mcp-servers/"+servers["remote"].ID, `{"config":{"mcp_server_type":"streamable_http","auth_token":"s3cret"}}`, nil)
	var res agent.ToolExecutionResult
	c2.ok("POST", "/v1/mcp-servers/"+servers["remote"].ID+"/tools/"+imAdd.ID+"/run", `{"args":{"a":2,"b":3}}`, &res)
	if res.Status != "success" || res.FuncReturn != "5" {
		t.Errorf("the imported tool ran: %+v", res)
	}

	// Into the same server: its servers of those names are reused, with
	// their secrets, and so are their tools.
	if r := c.upload(exp.body); r.status != http.StatusOK {
		t.Fatalf("re-import: %d %s", r.status, r.body)
	}
	again := c.mcpServersByName()
	if len(again) != 2 || again["remote"].ID != remote.ID || again["local"].ID != local.ID || *again["remote"].AuthToken == "" {
		t.Errorf("servers after a re-import %+v", again)
	}
	c.ok("POST", "/v1/mcp-servers/"+remote.ID+"/tools/"+add.ID+"/run", `{"args":{"a":1,"b":1}}`, &res)
	if res.Status != "success" {
		t.Errorf("the reused server lost its token: %+v", res)
	}

	// A file refused in the middle of its import leaves nothing: a new
	// server first, then one whose name is a server of another type here.
	var agents []letta.AgentState
	c.ok("GET", "/v1/agents", "", &agents)
	bad := f
	bad.MCPServers = []letta.AgentFileMCPServer{
		{ID: "mcp_server-2", ServerType: "sse", ServerName: "fresh", ServerURL: new(h.URL + "/sse")},
		{ID: "mcp_server-3", ServerType: "streamable_http", ServerName: "local", ServerURL: new(h.URL + "/mcp")},
		rs,
	}
	bad.Tools = nil
	for _, tl := range f.Tools {
		if tl.Name != "echo" {
			bad.Tools = append(bad.Tools, tl)
		}
	}
	bad.Agents = []letta.AgentFileAgent{f.Agents[0]}
	bad.Agents[0].ToolIDs = []string{bad.Tools[0].ID}
	body, _ := json.Marshal(bad)
	if r := c.upload(body); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "is a stdio server here") {
		t.Fatalf("a file with a server of another type: %d %s", r.status, r.body)
	}
	var after []letta.AgentState
	c.ok("GET", "/v1/agents", "", &after)
	if _, made := c.mcpServersByName()["fresh"]; made || len(after) != len(agents) {
		t.Errorf("a refused import left a server or an agent behind")
	}

	// An MCP tool must name one of the file's servers.
	bad.MCPServers = nil
	body, _ = json.Marshal(bad)
	if r := c.upload(body); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "not among the file's mcp_servers") {
		t.Errorf("an MCP tool without its server: %d %s", r.status, r.body)
	}

	// A server that cannot reach MCP servers refuses the file.
	c3, _ := newTestServer(t, Options{})
	if r := c3.upload(exp.body); r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "MCP") {
		t.Errorf("import without an MCP client: %d %s", r.status, r.body)
	}
	checkStore(t, store)
	checkStore(t, store2)
}

// Spec: an agent file as Letta's serializer writes MCP servers (its
// MCPServerSchema: stdio_config with server_name and type, a tool whose
// metadata_ names the server by name and by Letta's id) imports.
func TestAgentFileLettaMCPShape(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{}, withMCP(0))
	h := mcptest.StartHTTP(t, nil)
	file := strings.NewReplacer("TOOLS_AND_SERVERS", `
 "tools": [{"id": "tool-0", "tool_type": "external_mcp", "description": "Adds.", "source_type": "python", "name": "add",
   "tags": ["mcp:numbers"], "source_code": null,
   "json_schema": {"name": "add", "description": "Adds.", "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}},
   "args_json_schema": null, "return_char_limit": 6000, "pip_requirements": null, "npm_requirements": null, "default_requires_approval": null,
   "created_by_id": null, "last_updated_by_id": null,
   "metadata_": {"mcp": {"server_name": "numbers", "server_id": "mcp_server-6b8f1c2e-0c1d-4a7e-9f3b-2d4e5f6a7b8c"}}},
  {"id": "tool-1", "tool_type": "external_mcp", "description": "Echoes.", "source_type": "python", "name": "echo",
   "tags": ["mcp:tools_here"], "source_code": null, "json_schema": {"name": "echo", "parameters": {"type": "object", "properties": {}}},
   "return_char_limit": 6000, "metadata_": {"mcp": {"server_name": "tools_here", "server_id": "mcp_server-1b2c3d4e-0c1d-4a7e-9f3b-2d4e5f6a7b8c"}}}],
 "mcp_servers": [
  {"id": "mcp_server-0", "server_type": "streamable_http", "server_name": "numbers", "server_url": "`+h.URL+`/mcp", "stdio_config": null, "metadata_": null},
  {"id": "mcp_server-1", "server_type": "stdio", "server_name": "tools_here", "server_url": null,
   "stdio_config": {"server_name": "tools_here", "type": "stdio", "command": "test-command", "args": ["arg1", "arg2"]}, "metadata_": {}}],`,
		`"tool_ids": ["tool-0", "tool-1", "tool-2"]`, `"tool_ids": ["tool-0", "tool-1"]`,
	).Replace(lettaMCPBase)
	r := c.upload([]byte(file))
	if r.status != http.StatusOK {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	servers := c.mcpServersByName()
	if len(servers) != 2 || *servers["tools_here"].Command != "test-command" || len(*servers["tools_here"].Args) != 2 {
		t.Fatalf("servers %+v", servers)
	}
	var res agent.ToolExecutionResult
	add := c.mcpTools(servers["numbers"].ID)["add"]
	c.ok("POST", "/v1/mcp-servers/"+servers["numbers"].ID+"/tools/"+add.ID+"/run", `{"args":{"a":2,"b":2}}`, &res)
	if res.Status != "success" || res.FuncReturn != "4" {
		t.Errorf("the imported tool ran: %+v", res)
	}
}

// lettaMCPBase is lettaExport's agent with its tools and servers left to
// fill in.
var lettaMCPBase = func() string {
	start := strings.Index(lettaExport, "\n \"tools\": [") + 1
	end := strings.Index(lettaExport, `"mcp_servers": [],`) + len(`"mcp_servers": [],`)
	return lettaExport[:start] + "TOOLS_AND_SERVERS" + lettaExport[end:]
}()
