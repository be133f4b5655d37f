package api

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/kelpie/kelpie/internal/mcptest"
	"github.com/kelpie/kelpie/letta"
)

// Spec: the older routes' writes: PUT /v1/tools/mcp/servers adds a server
// from its flat config (its tools stored) and answers every server's
// config; PATCH by name renames and reconfigures it; DELETE by name
// deletes it and its tools and answers the servers left; bad input
// changes nothing.
func TestMCPLegacyWrites(t *testing.T) {
	c, _ := newTurnServer(t, nil, Options{}, withMCP(0))
	cmd, args, env := mcptest.Stdio(t)
	flat, _ := json.Marshal(map[string]any{"server_name": "old", "type": "stdio", "command": cmd, "args": args, "env": env})
	var all []letta.MCPServerConfigLegacy
	c.ok("PUT", "/v1/tools/mcp/servers", string(flat), &all)
	if len(all) != 1 || all[0].ServerName != "old" || all[0].Type != "stdio" || *all[0].Command != cmd {
		t.Fatalf("after PUT: %+v", all)
	}
	var servers []letta.MCPServer
	c.ok("GET", "/v1/mcp-servers", "", &servers)
	if len(servers) != 1 || len(c.mcpTools(servers[0].ID)) != len(mcptest.Tools) {
		t.Fatalf("servers %+v", servers)
	}
	c.expect(422, "PUT", "/v1/tools/mcp/servers", `{"type":"stdio","command":"x","args":[]}`)
	c.expect(400, "PUT", "/v1/tools/mcp/servers", `{"server_name":"web","type":"sse","server_url":"ftp://x"}`)

	var cfg letta.MCPServerConfigLegacy
	c.ok("PATCH", "/v1/tools/mcp/servers/old", fmt.Sprintf(`{"server_name":"new","stdio_config":{"server_name":"new","command":%q,"args":%s,"env":%s}}`, cmd, mustJSON(args), mustJSON(env)), &cfg)
	if cfg.ServerName != "new" || cfg.Type != "stdio" {
		t.Errorf("after PATCH: %+v", cfg)
	}
	c.expect(404, "PATCH", "/v1/tools/mcp/servers/old", `{"server_name":"x"}`)
	c.ok("GET", "/v1/tools/mcp/servers/new/tools", "", new([]letta.MCPTool))

	c.expect(404, "DELETE", "/v1/tools/mcp/servers/old", "")
	c.ok("DELETE", "/v1/tools/mcp/servers/new", "", &all)
	if len(all) != 0 {
		t.Errorf("after DELETE: %+v", all)
	}
	var tools []letta.Tool
	c.ok("GET", "/v1/tools?name=echo", "", &tools)
	if len(tools) != 0 {
		t.Errorf("the deleted server's tools remain: %+v", tools)
	}
}
