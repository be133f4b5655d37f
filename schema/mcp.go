package schema

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// MCP servers are shared, like custom tools: a per-server actor ("mcpservers",
// keeping no state) writes the server's record, its name entry, and the
// custom tools of type external_mcp it offers with their mapping entries.
var (
	MCPServers = &Family{"mcp-server", "mcpserver/",
		"mcpserver/<server-id>", "an MCPServer record (JSON)"}
	MCPServerNames = &Family{"mcp-server-name", "mcpservername/",
		"mcpservername/<name>", "the id of the MCP server with that name: names are unique"}
	MCPServerTools = &Family{"mcp-server-tool", "mcpserver-tool/",
		"mcpserver-tool/<server-id>/<tool-id>", "empty: the tool (of type external_mcp) calls that server"}
)

// MCPServerNamespace is the actor namespace that serialises writes to one
// MCP server and its tools.
const MCPServerNamespace = "mcpservers"

// Transports of an MCP server, as Letta names them (mcp_server_type).
const (
	MCPStdio          = "stdio"
	MCPSSE            = "sse"
	MCPStreamableHTTP = "streamable_http"
)

// ToolTypeMCP is the tool_type of a tool an MCP server offers.
const ToolTypeMCP = "external_mcp"

// MCPMetadataKey is the key of a tool's metadata_ that names its MCP server
// ({"server_name": ..., "server_id": ...}), as Letta stores it.
const MCPMetadataKey = "mcp"

// MCPServer is a registered MCP server: how to start it (stdio) or reach it
// (SSE, streamable HTTP).
type MCPServer struct {
	ID   string `json:"id"`
	Name string `json:"server_name"`
	Type string `json:"mcp_server_type"`
	// Command, Args and Env start a stdio server.
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// URL, the auth header and the custom headers reach an HTTP server;
	// AuthToken and the header values are secrets: stored, sent to the
	// server, never shown back.
	URL           string            `json:"server_url,omitempty"`
	AuthHeader    string            `json:"auth_header,omitempty"`
	AuthToken     string            `json:"auth_token,omitempty"`
	CustomHeaders map[string]string `json:"custom_headers,omitempty"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// MCPServerActor is the actor that serialises writes to an MCP server.
func MCPServerActor(serverID string) actor.ID {
	return actor.ID{Namespace: MCPServerNamespace, Key: serverID}
}

// MCPServerKey is where an MCP server's record is.
func MCPServerKey(serverID string) []byte { return []byte(MCPServers.Prefix + serverID) }

// MCPServerNameKey names the MCP server that has a name.
func MCPServerNameKey(name string) []byte { return []byte(MCPServerNames.Prefix + name) }

// MCPServerToolKey records that a tool calls a server; MCPServerToolsOf
// prefixes every tool of a server.
func MCPServerToolKey(serverID, toolID string) []byte { return join(MCPServerTools, serverID, toolID) }
func MCPServerToolsOf(serverID string) []byte         { return join(MCPServerTools, serverID, "") }

// MCPServerNotFound is the error for a missing MCP server.
func MCPServerNotFound(serverID string) error {
	return letta.NotFoundf("MCP server with id %s not found.", serverID)
}

// GetMCPServer returns an MCP server, or a not-found error.
func GetMCPServer(txn kv.Txn, serverID string) (*MCPServer, error) {
	return get[MCPServer](txn, MCPServerKey(serverID), "mcp server "+serverID, MCPServerNotFound(serverID))
}

// MCPServerIDByName returns the id of the MCP server called name, or "".
func MCPServerIDByName(txn kv.Txn, name string) (string, error) {
	v, err := txn.Get(MCPServerNameKey(name))
	if errors.Is(err, kv.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// PutMCPServer writes a server's record and moves its name entry from
// oldName ("" for a new server).
func PutMCPServer(txn kv.Txn, s *MCPServer, oldName string) error {
	if err := put(txn, MCPServerKey(s.ID), s); err != nil {
		return err
	}
	if oldName != "" && oldName != s.Name {
		if err := txn.Delete(MCPServerNameKey(oldName)); err != nil {
			return err
		}
	}
	return txn.Set(MCPServerNameKey(s.Name), []byte(s.ID))
}

// ListMCPServers returns every MCP server, oldest first.
func ListMCPServers(txn kv.Txn) ([]*MCPServer, error) {
	var out []*MCPServer
	err := kv.ScanEach(txn, kv.PrefixRange([]byte(MCPServers.Prefix)), false, func(e kv.KeyValue) (bool, error) {
		s, err := decode[MCPServer](e.Value, "mcp server")
		if err != nil {
			return false, err
		}
		out = append(out, s)
		return true, nil
	})
	slices.SortFunc(out, func(a, b *MCPServer) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// MCPServerToolIDs returns the ids of the tools a server offers.
func MCPServerToolIDs(txn kv.Txn, serverID string) ([]string, error) {
	links, err := txn.Scan(kv.PrefixRange(MCPServerToolsOf(serverID)), 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(links))
	for i, l := range links {
		out[i] = LastPart(l.Key)
	}
	return out, nil
}

// MCPServerOf returns the id of the MCP server a tool calls, or "" if it
// is not an MCP tool.
func MCPServerOf(t *Tool) string {
	if t.ToolType != ToolTypeMCP {
		return ""
	}
	m, _ := t.Metadata[MCPMetadataKey].(map[string]any)
	id, _ := m["server_id"].(string)
	return id
}

// MCPToolMetadata is the metadata_ of a tool of server s.
func MCPToolMetadata(s *MCPServer) map[string]any {
	return map[string]any{MCPMetadataKey: map[string]any{"server_name": s.Name, "server_id": s.ID}}
}

// PutMCPTool writes a tool of server s: its record (created new, or moved
// from whichever server offered a tool of that name before) and its
// mapping entry.
func PutMCPTool(txn kv.Txn, s *MCPServer, t *Tool, oldName string, created bool) error {
	if prev := MCPServerOf(t); prev != "" && prev != s.ID {
		if err := txn.Delete(MCPServerToolKey(prev, t.ID)); err != nil {
			return err
		}
	}
	t.ToolType, t.Metadata, t.Tags = ToolTypeMCP, MCPToolMetadata(s), []string{MCPMetadataKey + ":" + s.Name}
	if err := PutTool(txn, t, oldName, created); err != nil {
		return err
	}
	return txn.Set(MCPServerToolKey(s.ID, t.ID), nil)
}

// DeleteMCPServer deletes a server, its name entry and every tool it
// offers (detached from every agent).
func DeleteMCPServer(txn kv.Txn, s *MCPServer) error {
	ids, err := MCPServerToolIDs(txn, s.ID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		t, err := GetTool(txn, id)
		if err != nil {
			return Dangling(err, "mapping of mcp server %s", s.ID)
		}
		if err := DeleteTool(txn, t); err != nil {
			return err
		}
	}
	if err := txn.Delete(MCPServerNameKey(s.Name)); err != nil {
		return err
	}
	return txn.Delete(MCPServerKey(s.ID))
}
