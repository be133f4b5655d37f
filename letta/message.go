package letta

import "encoding/json"

// MessageBase holds the fields every Message has, in Letta's order.
type MessageBase struct {
	ID          string      `json:"id"`
	Date        MessageDate `json:"date"`
	Name        *string     `json:"name"`
	MessageType string      `json:"message_type"`
	Otid        *string     `json:"otid"`
	SenderID    *string     `json:"sender_id"`
	StepID      *string     `json:"step_id"`
	IsErr       *bool       `json:"is_err,omitempty"`
	SeqID       *int        `json:"seq_id"`
	RunID       *string     `json:"run_id"`
}

// Base returns the common fields.
func (b *MessageBase) Base() *MessageBase { return b }

// Message is one message as the API shows it: *UserMessage,
// *AssistantMessage, *ReasoningMessage, *ToolCallMessage, *ToolReturnMessage,
// *ApprovalRequestMessage or *SystemMessage.
type Message interface {
	Base() *MessageBase
}

// Message types.
const (
	TypeSystem          = "system_message"
	TypeUser            = "user_message"
	TypeAssistant       = "assistant_message"
	TypeReasoning       = "reasoning_message"
	TypeToolCall        = "tool_call_message"
	TypeToolReturn      = "tool_return_message"
	TypeApprovalRequest = "approval_request_message"
	TypeSummary         = "summary_message"
)

// MessageTypes are the message types a client may ask for by name.
var MessageTypes = []string{
	TypeSystem, TypeUser, TypeAssistant, TypeReasoning, "hidden_reasoning_message",
	TypeToolCall, TypeToolReturn, TypeApprovalRequest, "approval_response_message",
	TypeSummary, "event_message",
}

// SystemMessage is a system message.
type SystemMessage struct {
	MessageBase
	Content string `json:"content"`
}

// SummaryMessage is the summary of messages compacted out of a context.
type SummaryMessage struct {
	MessageBase
	Summary string `json:"summary"`
}

// UserMessage is a message from the user.
type UserMessage struct {
	MessageBase
	Content json.RawMessage `json:"content"`
}

// AssistantMessage is what the agent said to the user.
type AssistantMessage struct {
	MessageBase
	Content string `json:"content"`
}

// ReasoningMessage is the agent's reasoning.
type ReasoningMessage struct {
	MessageBase
	Source    string  `json:"source"`
	Reasoning string  `json:"reasoning"`
	Signature *string `json:"signature"`
}

// ToolCall is a tool call as the API shows it.
type ToolCall struct {
	Name       string `json:"name"`
	Arguments  string `json:"arguments"`
	ToolCallID string `json:"tool_call_id"`
}

// ToolCallMessage is a call of a tool the server runs.
type ToolCallMessage struct {
	MessageBase
	ToolCall  ToolCall   `json:"tool_call"`
	ToolCalls []ToolCall `json:"tool_calls"`
}

// ApprovalRequestMessage is a tool call waiting for the client: to run it
// (a client tool) and send back its result.
type ApprovalRequestMessage struct {
	MessageBase
	ToolCall  ToolCall   `json:"tool_call"`
	ToolCalls []ToolCall `json:"tool_calls"`
}

// ToolReturn is one tool result inside a tool_return_message.
type ToolReturn struct {
	Type       string   `json:"type"`
	ToolReturn string   `json:"tool_return"`
	Status     string   `json:"status"`
	ToolCallID string   `json:"tool_call_id"`
	Stdout     []string `json:"stdout"`
	Stderr     []string `json:"stderr"`
}

// ToolReturnMessage is a tool's result.
type ToolReturnMessage struct {
	MessageBase
	ToolReturn  string       `json:"tool_return"`
	Status      string       `json:"status"`
	ToolCallID  string       `json:"tool_call_id"`
	Stdout      []string     `json:"stdout"`
	Stderr      []string     `json:"stderr"`
	ToolReturns []ToolReturn `json:"tool_returns"`
}

// Stop reasons, as Letta names them: why a turn ended.
const (
	StopEndTurn            = "end_turn"
	StopError              = "error"
	StopLLMAPIError        = "llm_api_error"
	StopInvalidLLMResponse = "invalid_llm_response"
	StopInvalidToolCall    = "invalid_tool_call" // a tool rule's prefilled arguments do not fit the tool
	StopMaxSteps           = "max_steps"
	StopMaxTokensExceeded  = "max_tokens_exceeded"
	StopCancelled          = "cancelled"
	StopRequiresApproval   = "requires_approval"
	StopToolRule           = "tool_rule" // a terminal (exit_loop) tool was called
	StopContextOverflow    = "context_window_overflow_in_system_prompt"
)

// StopReasonMessage is the stop_reason message of a response.
type StopReasonMessage struct {
	MessageType string `json:"message_type"`
	StopReason  string `json:"stop_reason"`
}

// NewStopReasonMessage returns the stop_reason message for reason.
func NewStopReasonMessage(reason string) StopReasonMessage {
	return StopReasonMessage{MessageType: "stop_reason", StopReason: reason}
}

// UsageStatistics is Letta's usage_statistics message.
type UsageStatistics struct {
	MessageType       string   `json:"message_type"`
	CompletionTokens  int      `json:"completion_tokens"`
	PromptTokens      int      `json:"prompt_tokens"`
	TotalTokens       int      `json:"total_tokens"`
	StepCount         int      `json:"step_count"`
	RunIDs            []string `json:"run_ids"`
	CachedInputTokens *int     `json:"cached_input_tokens"`
	CacheWriteTokens  *int     `json:"cache_write_tokens"`
	ReasoningTokens   *int     `json:"reasoning_tokens"`
	ContextTokens     *int     `json:"context_tokens"`
}

// Response is the answer to a non-streaming message request (Letta's
// LettaResponse).
type Response struct {
	Messages   []Message         `json:"messages"`
	StopReason StopReasonMessage `json:"stop_reason"`
	Usage      UsageStatistics   `json:"usage"`
}
