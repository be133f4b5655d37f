package agent

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"unicode"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// MCPServers is the surface of MCP servers: registered once, their tools
// stored as tools of type external_mcp that agents attach like any other
// and the loop calls through the MCP client.
type MCPServers struct{ c *core }

// MCPIDPrefix is the prefix of MCP server ids (Letta's).
const MCPIDPrefix = "mcp_server"

// Redacted stands for a secret in a rendered server (an auth token, a
// custom header's value); sent back in an update, it keeps the stored one.
const Redacted = "********"

var errNoMCP = &letta.Error{Kind: letta.KindUnavailable, Message: "MCP servers cannot be reached from this server: it was started without an MCP client"}

// Create registers a server, then lists its tools and stores them, as
// Letta does: a server that cannot be reached is still registered (its
// tools come with a refresh), and the failure is logged.
func (s *MCPServers) Create(ctx context.Context, req letta.MCPServerRequest) (*letta.MCPServer, error) {
	if s.c.mcp == nil {
		return nil, errNoMCP
	}
	srv := &schema.MCPServer{}
	if err := applyMCPRequest(srv, req, true); err != nil {
		return nil, err
	}
	if err := s.c.mcp.Check(srv); err != nil {
		return nil, letta.Invalidf("%v", err)
	}
	id, err := s.c.newIDFor(ctx, MCPIDPrefix)
	if err != nil {
		return nil, err
	}
	var out schema.MCPServer
	if err := s.c.invoke(ctx, schema.MCPServerActor(id), opCreateMCPServer, srv, &out); err != nil {
		return nil, err
	}
	if _, err := s.sync(ctx, &out, "", true); err != nil {
		s.c.log.Warn("mcp: the server was registered but its tools could not be listed", "server", out.Name, "id", out.ID, "error", err)
	}
	return renderMCPServer(&out), nil
}

// get reads a server; a malformed id is a missing server, as for Letta.
func (s *MCPServers) get(ctx context.Context, id string) (*schema.MCPServer, error) {
	if !letta.ValidID(MCPIDPrefix, id) {
		return nil, schema.MCPServerNotFound(id)
	}
	var out *schema.MCPServer
	err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		out, err = schema.GetMCPServer(txn, id)
		return err
	})
	return out, err
}

// byName reads the server called name.
func (s *MCPServers) byName(ctx context.Context, name string) (*schema.MCPServer, error) {
	var out *schema.MCPServer
	err := s.c.read(ctx, func(txn kv.Txn) error {
		id, err := schema.MCPServerIDByName(txn, name)
		if err != nil {
			return err
		}
		if id == "" {
			return letta.NotFoundf("MCP server %s not found", letta.Clip(name))
		}
		out, err = schema.GetMCPServer(txn, id)
		return err
	})
	return out, err
}

// Get returns a server.
func (s *MCPServers) Get(ctx context.Context, id string) (*letta.MCPServer, error) {
	srv, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return renderMCPServer(srv), nil
}

// List returns every server, oldest first.
func (s *MCPServers) List(ctx context.Context) ([]letta.MCPServer, error) {
	var all []*schema.MCPServer
	err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		all, err = schema.ListMCPServers(txn)
		return err
	})
	out := make([]letta.MCPServer, len(all))
	for i, srv := range all {
		out[i] = *renderMCPServer(srv)
	}
	return out, err
}

// Update applies a PATCH as Letta does: the config's fields given replace
// the stored ones (a stdio server's command, args and env together, when
// command and args are both given). A rename onto another server's name is
// refused (Letta deletes that other server instead).
func (s *MCPServers) Update(ctx context.Context, id string, req letta.MCPServerRequest) (*letta.MCPServer, error) {
	if s.c.mcp == nil {
		return nil, errNoMCP
	}
	srv, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := applyMCPRequest(srv, req, false); err != nil {
		return nil, err
	}
	if err := s.c.mcp.Check(srv); err != nil {
		return nil, letta.Invalidf("%v", err)
	}
	var out schema.MCPServer
	if err := s.c.invoke(ctx, schema.MCPServerActor(id), opUpdateMCPServer, srv, &out); err != nil {
		return nil, err
	}
	return renderMCPServer(&out), nil
}

// Delete deletes a server and its tools (detached from every agent).
func (s *MCPServers) Delete(ctx context.Context, id string) error {
	if _, err := s.get(ctx, id); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.MCPServerActor(id), opDeleteMCPServer, nil, nil)
}

// Tools lists the stored tools of a server (as last listed), by name.
func (s *MCPServers) Tools(ctx context.Context, id string) ([]letta.Tool, error) {
	if _, err := s.get(ctx, id); err != nil {
		return nil, err
	}
	var out []letta.Tool
	err := s.c.read(ctx, func(txn kv.Txn) error {
		ids, err := schema.MCPServerToolIDs(txn, id)
		if err != nil {
			return err
		}
		for _, tid := range ids {
			t, err := schema.GetTool(txn, tid)
			if err != nil {
				return schema.Dangling(err, "mapping of mcp server %s", id)
			}
			out = append(out, t.Tool)
		}
		return nil
	})
	return out, err
}

// tool reads one of a server's tools.
func (s *MCPServers) tool(ctx context.Context, id, toolID string) (*schema.Tool, error) {
	if _, err := s.get(ctx, id); err != nil {
		return nil, err
	}
	var out *schema.Tool
	err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		out, err = schema.GetTool(txn, toolID)
		if err == nil && schema.MCPServerOf(out) != id {
			err = letta.NotFoundf("Tool %s is not a tool of MCP server %s.", toolID, id)
		}
		return err
	})
	return out, err
}

// Tool returns one of a server's tools.
func (s *MCPServers) Tool(ctx context.Context, id, toolID string) (*letta.Tool, error) {
	t, err := s.tool(ctx, id, toolID)
	if err != nil {
		return nil, err
	}
	return &t.Tool, nil
}

// RunTool calls one of a server's tools outside any turn: nothing is
// stored.
func (s *MCPServers) RunTool(ctx context.Context, id, toolID string, args map[string]any) (*ToolExecutionResult, error) {
	t, err := s.tool(ctx, id, toolID)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(nonNilMap(args))
	if err != nil {
		return nil, err
	}
	out := tool.CallMCP(ctx, s.c.mcp, s.c.read, t, data)
	return executionResult(out, t.ReturnCharLimit), nil
}

// Refresh lists a server's tools again and stores what changed (Letta's
// resync): tools it no longer lists are deleted. A server that cannot be
// reached is a 404 saying so, as Letta answers.
func (s *MCPServers) Refresh(ctx context.Context, id string) (*letta.MCPResyncResult, error) {
	srv, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	out, err := s.sync(ctx, srv, "", true)
	if err != nil {
		return nil, err
	}
	return &out.MCPResyncResult, nil
}

// sync lists a server's tools and stores them (only the one called only,
// if given; deleting the ones no longer listed, if prune).
func (s *MCPServers) sync(ctx context.Context, srv *schema.MCPServer, only string, prune bool) (*syncOutcome, error) {
	if s.c.mcp == nil {
		return nil, errNoMCP
	}
	listed, err := s.c.mcp.ListTools(ctx, srv)
	if err != nil {
		return nil, letta.NotFoundf("Could not connect to MCP server %s to resync tools: %v", srv.Name, err)
	}
	var p syncMCPTools
	p.Prune = prune
	for _, l := range listed {
		if only != "" && l.Name != only {
			continue
		}
		id, err := s.c.newID("tool")
		if err != nil {
			return nil, err
		}
		p.Tools = append(p.Tools, syncedTool{ID: id, Name: l.Name, Description: l.Description, JSONSchema: tool.MCPJSONSchema(l)})
	}
	if only != "" && len(p.Tools) == 0 {
		names := make([]string, len(listed))
		for i, l := range listed {
			names[i] = l.Name
		}
		return nil, letta.Invalidf("Tool %s not found in MCP server %s - available tools: %s", letta.Clip(only), srv.Name, strings.Join(names, ", "))
	}
	var out syncOutcome
	if err := s.c.invoke(ctx, schema.MCPServerActor(srv.ID), opSyncMCPTools, p, &out); err != nil {
		return nil, err
	}
	for _, why := range out.Skipped {
		s.c.log.Warn("mcp: a tool of the server was not stored", "server", srv.Name, "reason", why)
	}
	return &out, nil
}

// LegacyList renders every server as Letta's older /v1/tools/mcp/servers
// does: a map from name to config.
func (s *MCPServers) LegacyList(ctx context.Context) (map[string]letta.MCPServerConfigLegacy, error) {
	all, err := s.List(ctx)
	out := make(map[string]letta.MCPServerConfigLegacy, len(all))
	for _, srv := range all {
		out[srv.ServerName] = legacyConfig(&srv)
	}
	return out, err
}

// LiveTools lists the tools of the server called name, asking it now.
func (s *MCPServers) LiveTools(ctx context.Context, name string) ([]letta.MCPTool, error) {
	if s.c.mcp == nil {
		return nil, errNoMCP
	}
	srv, err := s.byName(ctx, name)
	if err != nil {
		return nil, err
	}
	listed, err := s.c.mcp.ListTools(ctx, srv)
	if err != nil {
		return nil, &letta.Error{Kind: letta.KindUnavailable, Message: err.Error()}
	}
	out := make([]letta.MCPTool, len(listed))
	for i, l := range listed {
		out[i] = letta.MCPTool{Name: l.Name, Description: &l.Description, InputSchema: l.InputSchema}
	}
	return out, nil
}

// AddTool stores one tool of the server called name (Letta's add_mcp_tool).
func (s *MCPServers) AddTool(ctx context.Context, name, toolName string) (*letta.Tool, error) {
	srv, err := s.byName(ctx, name)
	if err != nil {
		return nil, err
	}
	out, err := s.sync(ctx, srv, toolName, false)
	if err != nil {
		return nil, err
	}
	if len(out.Tools) == 0 {
		return nil, letta.Invalidf("tool %s of MCP server %s cannot be stored: %s", letta.Clip(toolName), name, strings.Join(out.Skipped, "; "))
	}
	return &out.Tools[0], nil
}

// applyMCPRequest checks a create (full) or update request and applies it
// to srv.
func applyMCPRequest(srv *schema.MCPServer, req letta.MCPServerRequest, create bool) error {
	if req.ServerName != nil {
		if err := checkMCPName(*req.ServerName); err != nil {
			return err
		}
		srv.Name = *req.ServerName
	}
	c := req.Config
	typ := *c.Type
	switch {
	case typ != schema.MCPStdio && typ != schema.MCPSSE && typ != schema.MCPStreamableHTTP:
		return letta.Invalidf("mcp_server_type must be one of 'stdio', 'sse', 'streamable_http', got %q", letta.Clip(typ))
	case create:
		srv.Type = typ
	case typ != srv.Type:
		return letta.Invalidf("MCP server %s is a %s server; its config cannot change to %s", srv.ID, srv.Type, typ)
	}
	if typ == schema.MCPStdio {
		if c.Command != nil && c.Args != nil {
			srv.Command, srv.Args, srv.Env = *c.Command, *c.Args, maps.Clone(c.Env)
		}
		if strings.TrimSpace(srv.Command) == "" {
			return letta.Invalidf("command must not be empty")
		}
	} else {
		if c.ServerURL != nil {
			srv.URL = *c.ServerURL
		}
		if c.AuthHeader != nil {
			srv.AuthHeader = *c.AuthHeader
		}
		if c.AuthToken != nil && !isRedacted(*c.AuthToken) {
			srv.AuthToken = *c.AuthToken
		}
		if srv.AuthToken != "" && srv.AuthHeader == "" {
			srv.AuthHeader = "Authorization"
		}
		if srv.AuthHeader == "Authorization" && srv.AuthToken != "" && !strings.HasPrefix(srv.AuthToken, "Bearer ") {
			srv.AuthToken = "Bearer " + srv.AuthToken
		}
		if c.CustomHeaders != nil {
			headers := map[string]string{}
			for k, v := range c.CustomHeaders {
				if old, ok := srv.CustomHeaders[k]; ok && isRedacted(v) {
					v = old
				}
				headers[k] = v
			}
			srv.CustomHeaders = headers
		}
	}
	return checkMCPSize(srv)
}

func isRedacted(v string) bool { return v == Redacted || v == "Bearer "+Redacted }

// checkMCPName refuses an empty, overlong or unprintable server name.
func checkMCPName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > letta.MaxMCPServerNameBytes {
		return letta.Invalidf("server_name must be 1 to %d bytes", letta.MaxMCPServerNameBytes)
	}
	if strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return letta.Invalidf("server_name must be printable")
	}
	return nil
}

// checkMCPSize bounds a server's config as stored.
func checkMCPSize(srv *schema.MCPServer) error {
	data, err := json.Marshal(srv)
	if err != nil {
		return err
	}
	if len(data) > letta.MaxMCPConfigBytes {
		return letta.Invalidf("the MCP server's config is %d bytes; at most %d are allowed", len(data), letta.MaxMCPConfigBytes)
	}
	return nil
}

// renderMCPServer renders a server as the API shows it: secrets redacted.
func renderMCPServer(srv *schema.MCPServer) *letta.MCPServer {
	out := &letta.MCPServer{ID: srv.ID, ServerName: srv.Name, MCPServerConfig: letta.MCPServerConfig{Type: new(srv.Type)}}
	c := &out.MCPServerConfig
	if srv.Type == schema.MCPStdio {
		args := srv.Args
		if args == nil {
			args = []string{}
		}
		c.Command, c.Args, c.Env = new(srv.Command), &args, srv.Env
		return out
	}
	c.ServerURL = new(srv.URL)
	if srv.AuthHeader != "" {
		c.AuthHeader = new(srv.AuthHeader)
	}
	if srv.AuthToken != "" {
		tok := Redacted
		if strings.HasPrefix(srv.AuthToken, "Bearer ") {
			tok = "Bearer " + Redacted
		}
		c.AuthToken = &tok
	}
	if srv.CustomHeaders != nil {
		c.CustomHeaders = map[string]string{}
		for k := range srv.CustomHeaders {
			c.CustomHeaders[k] = Redacted
		}
	}
	return out
}
