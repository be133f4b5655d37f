package api

import (
	"net/http"

	"github.com/kelpie/kelpie/letta"
)

// The writes of the older /v1/tools/mcp/servers routes: add a server from
// its flat config (answering every server's config), update one by name
// (answering its config), delete one by name (answering those left).

func (s *server) legacyPutMCPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	var cfg letta.MCPServerConfigLegacy
	if err := s.decodeBody(w, r, &cfg); err != nil {
		return nil, err
	}
	if cfg.ServerName == "" {
		return nil, validationError(pyErr{typ: "missing", loc: pyTuple{"body", "server_name"}, msg: "Field required", noInput: true})
	}
	return s.svc.MCPServers.LegacyAdd(r.Context(), cfg)
}

func (s *server) legacyPatchMCPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	var req letta.MCPServerUpdateLegacy
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.MCPServers.LegacyUpdate(r.Context(), r.PathValue("mcp_server_name"), req)
}

func (s *server) legacyDeleteMCPServer(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.MCPServers.LegacyDelete(r.Context(), r.PathValue("mcp_server_name"))
}
