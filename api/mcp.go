package api

import (
	"net/http"

	"github.com/kelpie/kelpie/letta"
)

// decodeMCPRequest reads the body of a create or update of an MCP server:
// config and its mcp_server_type are required (the union's discriminator),
// and server_name on create.
func (s *server) decodeMCPRequest(w http.ResponseWriter, r *http.Request, create bool) (letta.MCPServerRequest, error) {
	var req letta.MCPServerRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return req, err
	}
	var missing []pyErr
	if create && req.ServerName == nil {
		missing = append(missing, pyErr{typ: "missing", loc: pyTuple{"body", "server_name"}, msg: "Field required", noInput: true})
	}
	switch {
	case req.Config == nil:
		missing = append(missing, pyErr{typ: "missing", loc: pyTuple{"body", "config"}, msg: "Field required", noInput: true})
	case req.Config.Type == nil:
		missing = append(missing, pyErr{typ: "union_tag_not_found", loc: pyTuple{"body", "config"},
			msg: "Unable to extract tag using discriminator 'mcp_server_type'", noInput: true})
	case create && *req.Config.Type == "stdio" && (req.Config.Command == nil || req.Config.Args == nil):
		for field, v := range map[string]bool{"command": req.Config.Command == nil, "args": req.Config.Args == nil} {
			if v {
				missing = append(missing, pyErr{typ: "missing", loc: pyTuple{"body", "config", "stdio", field}, msg: "Field required", noInput: true})
			}
		}
	case create && *req.Config.Type != "stdio" && req.Config.ServerURL == nil:
		missing = append(missing, pyErr{typ: "missing", loc: pyTuple{"body", "config", *req.Config.Type, "server_url"}, msg: "Field required", noInput: true})
	}
	if len(missing) > 0 {
		return req, validationError(missing...)
	}
	return req, nil
}

func (s *server) createMCPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := s.decodeMCPRequest(w, r, true)
	if err != nil {
		return nil, err
	}
	return s.svc.MCPServers.Create(r.Context(), req)
}

func (s *server) listMCPServers(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.MCPServers.List(r.Context())
}

func (s *server) getMCPServer(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.MCPServers.Get(r.Context(), r.PathValue("mcp_server_id"))
}

func (s *server) updateMCPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := s.decodeMCPRequest(w, r, false)
	if err != nil {
		return nil, err
	}
	return s.svc.MCPServers.Update(r.Context(), r.PathValue("mcp_server_id"), req)
}

// deleteMCPServer answers 204, as Letta does.
func (s *server) deleteMCPServer(w http.ResponseWriter, r *http.Request) (any, error) {
	if err := s.svc.MCPServers.Delete(r.Context(), r.PathValue("mcp_server_id")); err != nil {
		return nil, err
	}
	w.WriteHeader(http.StatusNoContent)
	return written{}, nil
}

func (s *server) listMCPServerTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.MCPServers.Tools(r.Context(), r.PathValue("mcp_server_id"))
}

func (s *server) getMCPServerTool(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "tool_id")
	if err != nil {
		return nil, err
	}
	return s.svc.MCPServers.Tool(r.Context(), r.PathValue("mcp_server_id"), id)
}

func (s *server) runMCPServerTool(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "tool_id")
	if err != nil {
		return nil, err
	}
	var req letta.MCPToolRunRequest
	if r.ContentLength != 0 {
		if err := s.decodeBody(w, r, &req); err != nil {
			return nil, err
		}
	}
	return s.svc.MCPServers.RunTool(r.Context(), r.PathValue("mcp_server_id"), id, req.Args)
}

// refreshMCPServer serves PATCH /v1/mcp-servers/{id}/refresh. Its agent_id
// only names, for Letta, the agent on whose behalf the server is asked.
func (s *server) refreshMCPServer(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.MCPServers.Refresh(r.Context(), r.PathValue("mcp_server_id"))
}

// The older routes under /v1/tools/mcp/servers that letta-code's /mcp
// dialog uses: list servers by name, list a server's tools live, and store
// one of them as a tool.

func (s *server) legacyListMCPServers(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.MCPServers.LegacyList(r.Context())
}

func (s *server) legacyListMCPTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.MCPServers.LiveTools(r.Context(), r.PathValue("mcp_server_name"))
}

func (s *server) legacyAddMCPTool(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.MCPServers.AddTool(r.Context(), r.PathValue("mcp_server_name"), r.PathValue("mcp_tool_name"))
}
