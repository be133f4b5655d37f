package letta

// MCPServerConfig is the config of Letta's CreateMCPServerRequest and
// UpdateMCPServerRequest, and the server as /v1/mcp-servers renders it
// (StdioMCPServer, SSEMCPServer, StreamableHTTPMCPServer: one shape,
// mcp_server_type telling which fields apply). In an update, nil fields
// are left as they are.
type MCPServerConfig struct {
	Type *string `json:"mcp_server_type"`
	// stdio
	Command *string           `json:"command,omitempty"`
	Args    *[]string         `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	// sse, streamable_http
	ServerURL     *string           `json:"server_url,omitempty"`
	AuthHeader    *string           `json:"auth_header,omitempty"`
	AuthToken     *string           `json:"auth_token,omitempty"`
	CustomHeaders map[string]string `json:"custom_headers,omitempty"`
}

// MCPServerRequest is the body of POST and PATCH /v1/mcp-servers.
type MCPServerRequest struct {
	ServerName *string          `json:"server_name"`
	Config     *MCPServerConfig `json:"config"`
}

// MCPServer is an MCP server as /v1/mcp-servers renders it.
type MCPServer struct {
	ID         string `json:"id"`
	ServerName string `json:"server_name"`
	MCPServerConfig
}

// MCPServerConfigLegacy is a server as the older /v1/tools/mcp/servers
// routes render it (Letta's StdioServerConfig, SSEServerConfig,
// StreamableHTTPServerConfig).
type MCPServerConfigLegacy struct {
	ServerName string `json:"server_name"`
	Type       string `json:"type"`
	MCPServerConfig
}

// MCPResyncResult is what a refresh of a server's tools changed (Letta's
// MCPServerResyncResult).
type MCPResyncResult struct {
	Deleted []string `json:"deleted"`
	Updated []string `json:"updated"`
	Added   []string `json:"added"`
}

// MCPToolRunRequest is the body of POST
// /v1/mcp-servers/{id}/tools/{tool_id}/run.
type MCPToolRunRequest struct {
	Args map[string]any `json:"args"`
}

// MCPTool is a tool as an MCP server lists it (Letta's MCPTool), for the
// live listing of /v1/tools/mcp/servers/{name}/tools.
type MCPTool struct {
	Name        string         `json:"name"`
	Description *string        `json:"description"`
	InputSchema map[string]any `json:"inputSchema"`
}

// Limits of MCP server configs.
const (
	MaxMCPServerNameBytes = 256
	MaxMCPConfigBytes     = 64 << 10 // command, args, env, URL and headers together
)
