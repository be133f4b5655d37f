package letta

import "encoding/json"

// MessageCreate is one input of a message request: a message (Letta's
// MessageCreate) or an approval reply (ApprovalCreate, type "approval").
type MessageCreate struct {
	Type     string          `json:"type"`
	Role     string          `json:"role"`
	Content  json.RawMessage `json:"content"`
	Name     *string         `json:"name"`
	Otid     *string         `json:"otid"`
	SenderID *string         `json:"sender_id"`

	Approvals         []ApprovalReturn `json:"approvals"`
	Approve           *bool            `json:"approve"`
	ApprovalRequestID *string          `json:"approval_request_id"`
	Reason            *string          `json:"reason"`
}

// ApprovalReturn answers one waiting tool call: with the client tool's
// result (type "tool") or with a decision (type "approval").
type ApprovalReturn struct {
	Type       string          `json:"type"`
	ToolCallID string          `json:"tool_call_id"`
	ToolReturn json.RawMessage `json:"tool_return"`
	Status     string          `json:"status"`
	Stdout     []string        `json:"stdout"`
	Stderr     []string        `json:"stderr"`
	Approve    *bool           `json:"approve"`
	Reason     *string         `json:"reason"`
}

// MessageRequest is the body of the message routes (Letta's
// LettaStreamingRequest and ConversationMessageRequest).
type MessageRequest struct {
	Messages                  []MessageCreate `json:"messages"`
	Input                     json.RawMessage `json:"input"`
	MaxSteps                  *int            `json:"max_steps"`
	Streaming                 *bool           `json:"streaming"`
	StreamTokens              bool            `json:"stream_tokens"`
	IncludePings              *bool           `json:"include_pings"`
	Background                bool            `json:"background"`
	IncludeReturnMessageTypes []string        `json:"include_return_message_types"`
	ClientTools               []ClientTool    `json:"client_tools"`
	AgentID                   *string         `json:"agent_id"`
	OverrideModel             *string         `json:"override_model"`
}

// ClientTool is a tool the client runs (Letta's ClientToolSchema).
type ClientTool struct {
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}
