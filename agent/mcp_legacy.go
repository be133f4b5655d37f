package agent

import (
	"context"

	"github.com/kelpie/kelpie/letta"
)

// The writes of Letta's older /v1/tools/mcp/servers routes, which name a
// server by its name and give its config flat (Letta's StdioServerConfig
// and the like): they are the /v1/mcp-servers writes, answered as those
// routes answer.

// legacyConfigs lists every server as the older routes render them.
func (s *MCPServers) legacyConfigs(ctx context.Context) ([]letta.MCPServerConfigLegacy, error) {
	all, err := s.List(ctx)
	out := make([]letta.MCPServerConfigLegacy, len(all))
	for i, srv := range all {
		out[i] = legacyConfig(&srv)
	}
	return out, err
}

func legacyConfig(srv *letta.MCPServer) letta.MCPServerConfigLegacy {
	return letta.MCPServerConfigLegacy{ServerName: srv.ServerName, Type: *srv.Type, MCPServerConfig: srv.MCPServerConfig}
}

// LegacyAdd creates a server from its flat config (PUT
// /v1/tools/mcp/servers) and lists every server. A config without a type
// is a stdio server if it has a command, else an SSE server, as Letta's
// union reads it.
func (s *MCPServers) LegacyAdd(ctx context.Context, cfg letta.MCPServerConfigLegacy) ([]letta.MCPServerConfigLegacy, error) {
	typ := cfg.Type
	switch {
	case typ != "":
	case cfg.Command != nil:
		typ = "stdio"
	default:
		typ = "sse"
	}
	c := cfg.MCPServerConfig
	c.Type = &typ
	if typ == "stdio" && c.Args == nil {
		c.Args = &[]string{} // Letta requires args; an empty list runs the bare command
	}
	if _, err := s.Create(ctx, letta.MCPServerRequest{ServerName: &cfg.ServerName, Config: &c}); err != nil {
		return nil, err
	}
	return s.legacyConfigs(ctx)
}

// LegacyUpdate updates the server called name (PATCH
// /v1/tools/mcp/servers/{name}) and returns its config.
func (s *MCPServers) LegacyUpdate(ctx context.Context, name string, req letta.MCPServerUpdateLegacy) (*letta.MCPServerConfigLegacy, error) {
	srv, err := s.byName(ctx, name)
	if err != nil {
		return nil, err
	}
	typ := srv.Type
	c := letta.MCPServerConfig{Type: &typ, ServerURL: req.ServerURL, AuthHeader: req.AuthHeader, AuthToken: req.AuthToken, CustomHeaders: req.CustomHeaders}
	if req.StdioConfig != nil {
		c.Command, c.Args, c.Env = req.StdioConfig.Command, req.StdioConfig.Args, req.StdioConfig.Env
	}
	if req.Token != nil {
		c.AuthHeader, c.AuthToken = new("Authorization"), new("Bearer "+*req.Token)
	}
	out, err := s.Update(ctx, srv.ID, letta.MCPServerRequest{ServerName: req.ServerName, Config: &c})
	if err != nil {
		return nil, err
	}
	cfg := legacyConfig(out)
	return &cfg, nil
}

// LegacyDelete deletes the server called name (DELETE
// /v1/tools/mcp/servers/{name}) and lists the servers left.
func (s *MCPServers) LegacyDelete(ctx context.Context, name string) ([]letta.MCPServerConfigLegacy, error) {
	srv, err := s.byName(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := s.Delete(ctx, srv.ID); err != nil {
		return nil, err
	}
	return s.legacyConfigs(ctx)
}
