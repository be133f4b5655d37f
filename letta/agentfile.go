package letta

import "encoding/json"

// AgentFile is Letta's agent file (.af, its AgentFileSchema): agents with
// their messages, and the blocks, tools, groups, folders and MCP servers
// they use, each under an id local to the file ("agent-0", "block-3", ...)
// that the file's references use.
type AgentFile struct {
	Agents     []AgentFileAgent     `json:"agents"`
	Groups     []AgentFileGroup     `json:"groups"`
	Blocks     []AgentFileBlock     `json:"blocks"`
	Files      []AgentFileFile      `json:"files"`
	Sources    []AgentFileSource    `json:"sources"`
	Tools      []Tool               `json:"tools"`
	MCPServers []AgentFileMCPServer `json:"mcp_servers"`
	Skills     []json.RawMessage    `json:"skills"`
	Metadata   map[string]string    `json:"metadata"`
	CreatedAt  *Timestamp           `json:"created_at"`
}

// AgentFileAgent is an agent of an agent file (Letta's AgentSchema): a
// create request whose tool_ids and block_ids are the file's ids, with its
// messages.
type AgentFileAgent struct {
	CreateAgentRequest
	ID                  string               `json:"id"`
	InContextMessageIDs []string             `json:"in_context_message_ids"`
	Messages            []AgentFileMessage   `json:"messages"`
	FilesAgents         []AgentFileFileAgent `json:"files_agents"`
	GroupIDs            []string             `json:"group_ids"`
	SourceIDs           []string             `json:"source_ids"`
	// MaxFilesOpen and PerFileViewWindowCharLimit are carried through from
	// the agent as Letta exports them.
	MaxFilesOpen               *int `json:"max_files_open,omitempty"`
	PerFileViewWindowCharLimit *int `json:"per_file_view_window_char_limit,omitempty"`
}

// AgentFileMessage is a message of an agent file (Letta's MessageSchema):
// its stored shape, with an id local to the file.
type AgentFileMessage struct {
	ID          string                `json:"id"`
	Role        string                `json:"role"`
	Content     json.RawMessage       `json:"content"`
	Name        *string               `json:"name"`
	Otid        *string               `json:"otid"`
	SenderID    *string               `json:"sender_id"`
	BatchItemID *string               `json:"batch_item_id"`
	GroupID     *string               `json:"group_id"`
	Model       *string               `json:"model"`
	AgentID     *string               `json:"agent_id"`
	ToolCalls   []OpenAIToolCall      `json:"tool_calls"`
	ToolCallID  *string               `json:"tool_call_id"`
	ToolReturns []AgentFileToolReturn `json:"tool_returns"`
	CreatedAt   Timestamp             `json:"created_at"`
	Approve     *bool                 `json:"approve"`
	// ApprovalRequestID, DenialReason and Approvals belong to approval
	// messages (human-in-the-loop replies).
	ApprovalRequestID *string           `json:"approval_request_id"`
	DenialReason      *string           `json:"denial_reason"`
	Approvals         []json.RawMessage `json:"approvals"`
}

// AgentFileToolReturn is a tool's result as Letta stores it with a tool
// message (its ToolReturn).
type AgentFileToolReturn struct {
	ToolCallID   *string         `json:"tool_call_id"`
	Status       string          `json:"status"`
	Stdout       []string        `json:"stdout"`
	Stderr       []string        `json:"stderr"`
	FuncResponse json.RawMessage `json:"func_response"`
}

// AgentFileBlock is a block of an agent file (Letta's BlockSchema).
type AgentFileBlock struct {
	CreateBlock
	ID string `json:"id"`
}

// AgentFileGroup is a group of an agent file (Letta's GroupSchema): a
// group create request whose agent ids are the file's.
type AgentFileGroup struct {
	GroupCreate
	ID string `json:"id"`
}

// ImportedAgents is the answer of POST /v1/agents/import.
type ImportedAgents struct {
	AgentIDs []string `json:"agent_ids"`
}

// AgentFileRevision is the metadata revision_id Kelpie's agent files carry:
// Letta writes its database migration's id there; Kelpie names its own
// export format.
const AgentFileRevision = "kelpie-agentfile-1"

// AgentFileMCPServer is an MCP server of an agent file (Letta's
// MCPServerSchema): how to reach or start it, without its secrets (no
// token, no custom headers, no stdio env).
type AgentFileMCPServer struct {
	ID          string          `json:"id"`
	ServerType  string          `json:"server_type"`
	ServerName  string          `json:"server_name"`
	ServerURL   *string         `json:"server_url"`
	StdioConfig *AgentFileStdio `json:"stdio_config"`
	Metadata    map[string]any  `json:"metadata_"`
}

// AgentFileStdio is how an agent file starts a stdio MCP server (Letta's
// StdioServerConfig). Exports leave out its env; an import takes one a
// file has.
type AgentFileStdio struct {
	ServerName string            `json:"server_name"`
	Type       string            `json:"type"`
	Command    string            `json:"command"`
	Args       []string          `json:"args"`
	Env        map[string]string `json:"env,omitempty"`
}
