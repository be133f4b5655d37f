package letta

// MCPServerUpdateLegacy is the body of PATCH /v1/tools/mcp/servers/{name}:
// Letta's UpdateStdioMCPServer, UpdateSSEMCPServer and
// UpdateStreamableHTTPMCPServer in one (their fields do not clash).
type MCPServerUpdateLegacy struct {
	ServerName *string `json:"server_name"`
	// StdioConfig replaces a stdio server's command, args and env.
	StdioConfig *MCPServerConfigLegacy `json:"stdio_config"`
	ServerURL   *string                `json:"server_url"`
	// Token is an SSE server's bearer token.
	Token         *string           `json:"token"`
	AuthHeader    *string           `json:"auth_header"`
	AuthToken     *string           `json:"auth_token"`
	CustomHeaders map[string]string `json:"custom_headers"`
}
