package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/kelpie/kelpie/kv"
)

// Storage layout of messages, runs, conversations and passages. Every key is
// written by the agent's actor (one invocation per turn step), so a step's
// messages, memory edits and run record commit together.
//
//	msg/<agent-id>/<seq, 16 hex>                      stored message (messageRecord JSON)
//	msgid/<message-id>                                "<agent-id>/<seq, 16 hex>": cursor lookups
//	cmsg/<conversation-id>/<seq, 16 hex>              empty: the message belongs to the conversation
//	turnkey/<agent-id>/<sha256 hex>                   run id: an otid or Idempotency-Key already answered
//	active-run/<agent-id>                             run id of the turn in progress
//	run/<run-id>                                      runRecord JSON
//	agent-run/<agent-id>/<run-id>                     empty: the agent's runs, for deletion
//	index/runs/<created, 16 hex>/<run-id>             every run, by creation time
//	conv/<conversation-id>                            conversationRecord JSON
//	agent-conv/<agent-id>/<created, 16 hex>/<conv-id> empty: the agent's conversations
//	passage/<agent-id>/<seq, 16 hex>/<passage-id>     passageRecord JSON, in insertion order
//	passageid/<passage-id>                            key of the passage
//
// Sequence numbers start at 1 and are dense per agent: a turn's messages
// are appended in the order they happened, and turns of one agent never
// interleave.

func msgPrefix(agentID string) []byte { return []byte("msg/" + agentID + "/") }
func msgKey(agentID string, seq uint64) []byte {
	return fmt.Appendf(nil, "msg/%s/%016x", agentID, seq)
}
func msgIDKey(id string) []byte          { return []byte("msgid/" + id) }
func convMsgPrefix(convID string) []byte { return []byte("cmsg/" + convID + "/") }
func convMsgKey(convID string, seq uint64) []byte {
	return fmt.Appendf(nil, "cmsg/%s/%016x", convID, seq)
}
func turnKeyPrefix(agentID string) []byte { return []byte("turnkey/" + agentID + "/") }
func turnKey(agentID, key string) []byte {
	return fmt.Appendf(nil, "turnkey/%s/%x", agentID, sha256.Sum256([]byte(key)))
}
func activeRunKey(agentID string) []byte       { return []byte("active-run/" + agentID) }
func runKey(runID string) []byte               { return []byte("run/" + runID) }
func agentRunPrefix(agentID string) []byte     { return []byte("agent-run/" + agentID + "/") }
func agentRunKey(agentID, runID string) []byte { return []byte("agent-run/" + agentID + "/" + runID) }

const runIndexPrefix = "index/runs/"

func convKey(convID string) []byte          { return []byte("conv/" + convID) }
func agentConvPrefix(agentID string) []byte { return []byte("agent-conv/" + agentID + "/") }
func passagePrefix(agentID string) []byte   { return []byte("passage/" + agentID + "/") }
func passageIDKey(id string) []byte         { return []byte("passageid/" + id) }

// seqFromKey returns the sequence number at the end of a msg/ or cmsg/ key.
func seqFromKey(key []byte) (uint64, error) {
	s := string(key)
	var seq uint64
	_, err := fmt.Sscanf(s[strings.LastIndexByte(s, '/')+1:], "%016x", &seq)
	return seq, err
}

// storedToolCall is a tool call as stored with its assistant message.
type storedToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	// Client marks a call the client runs (a client tool): it waits for
	// the client's result, sent back as an approval reply.
	Client bool `json:"client,omitempty"`
}

// Message roles as stored.
const (
	roleUser      = "user"
	roleAssistant = "assistant"
	roleTool      = "tool"
	roleSystem    = "system"
)

// messageRecord is one stored message.
type messageRecord struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"`
	Seq     uint64 `json:"seq"`
	Role    string `json:"role"`
	// Content is a user message's content as sent (a JSON string or a list
	// of parts); empty for other roles.
	Content json.RawMessage `json:"content,omitempty"`
	// Text is the message's text: what the model sees.
	Text string `json:"text"`
	// ThoughtsInText marks an assistant text that is private thinking (a
	// memgpt agent's text next to its tool calls).
	ThoughtsInText bool             `json:"thoughts_in_text,omitempty"`
	Reasoning      string           `json:"reasoning,omitempty"`
	ToolCalls      []storedToolCall `json:"tool_calls,omitempty"`
	ToolCallID     string           `json:"tool_call_id,omitempty"`
	ToolName       string           `json:"tool_name,omitempty"`
	ToolStatus     string           `json:"tool_status,omitempty"` // success or error
	Otid           string           `json:"otid,omitempty"`
	Name           *string          `json:"name,omitempty"`
	SenderID       *string          `json:"sender_id,omitempty"`
	RunID          string           `json:"run_id,omitempty"`
	StepID         string           `json:"step_id,omitempty"`
	ConversationID string           `json:"conversation_id,omitempty"`
	CreatedAt      time.Time        `json:"created_at"`
	// Input marks a message the client sent: part of its turn but not of
	// the turn's response.
	Input bool `json:"input,omitempty"`
}

// lastSeq returns the highest message sequence number of an agent, 0 if it
// has no messages.
func lastSeq(txn kv.Txn, agentID string) (uint64, error) {
	kvs, err := txn.Scan(kv.PrefixRange(msgPrefix(agentID)), 1, true)
	if err != nil || len(kvs) == 0 {
		return 0, err
	}
	return seqFromKey(kvs[0].Key)
}

func decodeMessage(data []byte) (*messageRecord, error) {
	var m messageRecord
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode message: %w", err)
	}
	return &m, nil
}

// appendMessage stores m as the agent's message number seq.
func appendMessage(txn kv.Txn, m *messageRecord) error {
	data, err := marshal(m)
	if err != nil {
		return err
	}
	if err := txn.Set(msgKey(m.AgentID, m.Seq), data); err != nil {
		return err
	}
	if err := txn.Set(msgIDKey(m.ID), fmt.Appendf(nil, "%s/%016x", m.AgentID, m.Seq)); err != nil {
		return err
	}
	if m.ConversationID != "" {
		return txn.Set(convMsgKey(m.ConversationID, m.Seq), nil)
	}
	return nil
}

// readMessageSeq returns the sequence number of a message of agentID, or a
// not-found error.
func readMessageSeq(txn kv.Txn, agentID, messageID string) (uint64, error) {
	v, err := txn.Get(msgIDKey(messageID))
	if errors.Is(err, kv.ErrNotFound) {
		return 0, &Error{Kind: KindNotFound, Message: fmt.Sprintf("Message %s not found", messageID)}
	}
	if err != nil {
		return 0, err
	}
	owner, hex, ok := strings.Cut(string(v), "/")
	if !ok || owner != agentID {
		return 0, &Error{Kind: KindNotFound, Message: fmt.Sprintf("Message %s not found", messageID)}
	}
	var seq uint64
	if _, err := fmt.Sscanf(hex, "%016x", &seq); err != nil {
		return 0, fmt.Errorf("message index %s: %w", messageID, err)
	}
	return seq, nil
}

func readMessage(txn kv.Txn, agentID string, seq uint64) (*messageRecord, error) {
	data, err := txn.Get(msgKey(agentID, seq))
	if err != nil {
		return nil, fmt.Errorf("message %d of %s: %w", seq, agentID, err)
	}
	return decodeMessage(data)
}

// derivedID returns a UUIDv4-shaped id derived from parts, so that an
// operation retried with the same inputs names the same things.
func derivedID(prefix string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	sum[6] = sum[6]&0x0f | 0x40
	sum[8] = sum[8]&0x3f | 0x80
	id := uuid.UUID(sum[:16]).String()
	if prefix == "" {
		return id
	}
	return prefix + "-" + id
}

// subOtid is the otid of the index'th LettaMessage of a stored message
// (one stored message may render as several, sharing its id).
func subOtid(messageID string, index int) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(index))
	return derivedID("", "otid", messageID, string(b[:]))
}

// ---- LettaMessage: the API's view of messages -----------------------------

// LettaDate renders a message date as Letta does: ISO 8601 to the second,
// with a numeric UTC offset.
type LettaDate struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (d LettaDate) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.UTC().Format("2006-01-02T15:04:05+00:00") + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *LettaDate) UnmarshalJSON(b []byte) error { return d.Time.UnmarshalJSON(b) }

// MessageBase holds the fields every LettaMessage has, in Letta's order.
type MessageBase struct {
	ID          string    `json:"id"`
	Date        LettaDate `json:"date"`
	Name        *string   `json:"name"`
	MessageType string    `json:"message_type"`
	Otid        *string   `json:"otid"`
	SenderID    *string   `json:"sender_id"`
	StepID      *string   `json:"step_id"`
	IsErr       *bool     `json:"is_err,omitempty"`
	SeqID       *int      `json:"seq_id"`
	RunID       *string   `json:"run_id"`
}

// Base returns the common fields.
func (b *MessageBase) Base() *MessageBase { return b }

// LettaMessage is one message as the API shows it: *UserMessage,
// *AssistantMessage, *ReasoningMessage, *ToolCallMessage, *ToolReturnMessage,
// *ApprovalRequestMessage or *SystemMessage.
type LettaMessage interface {
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
)

// MessageTypes are the message types a client may ask for by name.
var MessageTypes = []string{
	TypeSystem, TypeUser, TypeAssistant, TypeReasoning, "hidden_reasoning_message",
	TypeToolCall, TypeToolReturn, TypeApprovalRequest, "approval_response_message",
	"summary_message", "event_message",
}

// SystemMessage is a system message.
type SystemMessage struct {
	MessageBase
	Content string `json:"content"`
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

// Message slots: the index of each part of a stored message among the
// LettaMessages it renders as. They are fixed, not dense, so that a part
// streamed before the message is stored (a token delta) carries the otid the
// stored message later renders with.
const (
	slotReasoning = 0
	slotText      = 1
	slotToolCall0 = 2
)

// base builds the common fields of a LettaMessage rendered from m.
func (m *messageRecord) base(msgType string, slot int) MessageBase {
	otid := m.Otid // the client's, for the message it sent
	if otid == "" || slot != slotText {
		otid = subOtid(m.ID, slot)
	}
	b := MessageBase{
		ID:          m.ID,
		Date:        LettaDate{m.CreatedAt},
		Name:        m.Name,
		MessageType: msgType,
		Otid:        &otid,
		SenderID:    m.SenderID,
	}
	if m.StepID != "" {
		b.StepID = ptr(m.StepID)
	}
	if m.RunID != "" {
		b.RunID = ptr(m.RunID)
	}
	return b
}

// render expands a stored message into the LettaMessages it shows as.
func (m *messageRecord) render() []LettaMessage {
	switch m.Role {
	case roleUser:
		content := m.Content
		if len(content) == 0 {
			content, _ = json.Marshal(m.Text)
		}
		return []LettaMessage{&UserMessage{MessageBase: m.base(TypeUser, slotText), Content: content}}
	case roleSystem:
		return []LettaMessage{&SystemMessage{MessageBase: m.base(TypeSystem, slotText), Content: m.Text}}
	case roleTool:
		status := m.ToolStatus
		if status == "" {
			status = "success"
		}
		return []LettaMessage{&ToolReturnMessage{
			MessageBase: m.base(TypeToolReturn, slotText),
			ToolReturn:  m.Text, Status: status, ToolCallID: m.ToolCallID,
			ToolReturns: []ToolReturn{{Type: "tool", ToolReturn: m.Text, Status: status, ToolCallID: m.ToolCallID}},
		}}
	}
	var out []LettaMessage
	if m.Reasoning != "" {
		out = append(out, &ReasoningMessage{MessageBase: m.base(TypeReasoning, slotReasoning), Source: "reasoner_model", Reasoning: m.Reasoning})
	}
	if m.Text != "" {
		if m.ThoughtsInText {
			out = append(out, &ReasoningMessage{MessageBase: m.base(TypeReasoning, slotText), Source: "non_reasoner_model", Reasoning: m.Text})
		} else {
			out = append(out, &AssistantMessage{MessageBase: m.base(TypeAssistant, slotText), Content: m.Text})
		}
	}
	for i, tc := range m.ToolCalls {
		out = append(out, renderToolCall(m, tc, slotToolCall0+i))
	}
	return out
}

func renderToolCall(m *messageRecord, tc storedToolCall, slot int) LettaMessage {
	call := ToolCall{Name: tc.Name, Arguments: tc.Arguments, ToolCallID: tc.ID}
	switch {
	case tc.Client:
		return &ApprovalRequestMessage{MessageBase: m.base(TypeApprovalRequest, slot), ToolCall: call, ToolCalls: []ToolCall{call}}
	case tc.Name == toolSendMessage:
		// Letta shows the send_message tool's message as what the agent
		// said (use_assistant_message, on by default).
		var args struct {
			Message string `json:"message"`
		}
		if json.Unmarshal([]byte(tc.Arguments), &args) == nil {
			return &AssistantMessage{MessageBase: m.base(TypeAssistant, slot), Content: args.Message}
		}
	}
	return &ToolCallMessage{MessageBase: m.base(TypeToolCall, slot), ToolCall: call, ToolCalls: []ToolCall{call}}
}

// renderAll renders messages in order.
func renderAll(ms []*messageRecord) []LettaMessage {
	var out []LettaMessage
	for _, m := range ms {
		out = append(out, m.render()...)
	}
	return out
}

// ---- usage and stop reasons ------------------------------------------------

// Stop reasons, as Letta names them.
const (
	StopEndTurn            = "end_turn"
	StopError              = "error"
	StopLLMAPIError        = "llm_api_error"
	StopInvalidLLMResponse = "invalid_llm_response"
	StopMaxSteps           = "max_steps"
	StopMaxTokensExceeded  = "max_tokens_exceeded"
	StopCancelled          = "cancelled"
	StopRequiresApproval   = "requires_approval"
	StopContextOverflow    = "context_window_overflow_in_system_prompt"
)

// runStatusFor is the status of a run that stopped for reason.
func runStatusFor(reason string) string {
	switch reason {
	case StopEndTurn, StopMaxSteps, StopRequiresApproval, StopMaxTokensExceeded:
		return RunCompleted
	case StopCancelled:
		return RunCancelled
	}
	return RunFailed
}

// StopReason is the stop_reason message of a response.
type StopReason struct {
	MessageType string `json:"message_type"`
	StopReason  string `json:"stop_reason"`
}

// NewStopReason returns the stop_reason message for reason.
func NewStopReason(reason string) StopReason {
	return StopReason{MessageType: "stop_reason", StopReason: reason}
}

// Usage is Letta's usage_statistics message.
type Usage struct {
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

// usageRecord is what a run stores of its usage.
type usageRecord struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	Steps            int `json:"steps"`
	// ContextTokens is the estimated prompt size of the last step.
	ContextTokens int `json:"context_tokens,omitempty"`
}

func (u usageRecord) render() Usage {
	return Usage{
		MessageType:      "usage_statistics",
		CompletionTokens: u.CompletionTokens,
		PromptTokens:     u.PromptTokens,
		TotalTokens:      u.PromptTokens + u.CompletionTokens,
		StepCount:        u.Steps,
	}
}

// LettaResponse is the answer to a non-streaming message request.
type LettaResponse struct {
	Messages   []LettaMessage `json:"messages"`
	StopReason StopReason     `json:"stop_reason"`
	Usage      Usage          `json:"usage"`
}
