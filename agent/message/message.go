// Package message is an agent's message history as the API shows it:
// stored messages rendered as Letta's messages, listed page by page (of the
// agent, of one conversation, of one run) and read for search.
//
// Guarantees:
//   - Rendering is deterministic: a stored message renders as the same
//     messages, with the same ids and otids, every time, and a part
//     streamed before its message was stored (a token delta) carries the
//     otid the stored message later renders with.
//   - A listing reads one snapshot: its pages are consecutive pieces of the
//     history in storage order, strictly between their cursors.
package message

import (
	"encoding/binary"
	"encoding/json"
	"strings"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// SendMessageTool is the tool whose calls are what an agent says to the
// user (memgpt agents answer through it).
const SendMessageTool = "send_message"

// Slots: the index of each part of a stored message among the messages it
// renders as. They are fixed, not dense, so that a part streamed before the
// message is stored (a token delta) carries the otid the stored message
// later renders with.
const (
	SlotReasoning = 0
	SlotText      = 1
	SlotToolCall0 = 2
)

// SubOtid is the otid of the slot'th part of a stored message.
func SubOtid(messageID string, slot int) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(slot))
	return letta.DerivedID("", "otid", messageID, string(b[:]))
}

// base builds the common fields of a part of m.
func base(m *schema.Message, msgType string, slot int) letta.MessageBase {
	otid := m.Otid // the client's, for the message it sent
	if otid == "" || slot != SlotText {
		otid = SubOtid(m.ID, slot)
	}
	b := letta.MessageBase{
		ID:          m.ID,
		Date:        letta.MessageDate{Time: m.CreatedAt},
		Name:        m.Name,
		MessageType: msgType,
		Otid:        &otid,
		SenderID:    m.SenderID,
	}
	if m.StepID != "" {
		b.StepID = new(m.StepID)
	}
	if m.RunID != "" {
		b.RunID = new(m.RunID)
	}
	return b
}

// Render expands a stored message into the messages it shows as.
func Render(m *schema.Message) []letta.Message {
	switch m.Role {
	case schema.RoleUser:
		content := m.Content
		if len(content) == 0 {
			content, _ = json.Marshal(m.Text)
		}
		return []letta.Message{&letta.UserMessage{MessageBase: base(m, letta.TypeUser, SlotText), Content: content}}
	case schema.RoleSystem:
		return []letta.Message{&letta.SystemMessage{MessageBase: base(m, letta.TypeSystem, SlotText), Content: m.Text}}
	case schema.RoleSummary:
		return []letta.Message{&letta.SummaryMessage{MessageBase: base(m, letta.TypeSummary, SlotText), Summary: m.Text}}
	case schema.RoleTool:
		status := m.ToolStatus
		if status == "" {
			status = "success"
		}
		return []letta.Message{&letta.ToolReturnMessage{
			MessageBase: base(m, letta.TypeToolReturn, SlotText),
			ToolReturn:  m.Text, Status: status, ToolCallID: m.ToolCallID,
			ToolReturns: []letta.ToolReturn{{Type: "tool", ToolReturn: m.Text, Status: status, ToolCallID: m.ToolCallID}},
		}}
	}
	var out []letta.Message
	if m.Reasoning != "" {
		out = append(out, &letta.ReasoningMessage{MessageBase: base(m, letta.TypeReasoning, SlotReasoning), Source: "reasoner_model", Reasoning: m.Reasoning})
	}
	if m.Text != "" {
		if m.ThoughtsInText {
			out = append(out, &letta.ReasoningMessage{MessageBase: base(m, letta.TypeReasoning, SlotText), Source: "non_reasoner_model", Reasoning: m.Text})
		} else {
			out = append(out, &letta.AssistantMessage{MessageBase: base(m, letta.TypeAssistant, SlotText), Content: m.Text})
		}
	}
	for i, tc := range m.ToolCalls {
		out = append(out, renderToolCall(m, tc, SlotToolCall0+i))
	}
	return out
}

func renderToolCall(m *schema.Message, tc schema.ToolCall, slot int) letta.Message {
	call := letta.ToolCall{Name: tc.Name, Arguments: tc.Arguments, ToolCallID: tc.ID}
	switch {
	case tc.Client:
		return &letta.ApprovalRequestMessage{MessageBase: base(m, letta.TypeApprovalRequest, slot), ToolCall: call, ToolCalls: []letta.ToolCall{call}}
	case tc.Name == SendMessageTool:
		// Letta shows the send_message tool's message as what the agent
		// said (use_assistant_message, on by default).
		if said, ok := sentText(tc); ok {
			return &letta.AssistantMessage{MessageBase: base(m, letta.TypeAssistant, slot), Content: said}
		}
	}
	return &letta.ToolCallMessage{MessageBase: base(m, letta.TypeToolCall, slot), ToolCall: call, ToolCalls: []letta.ToolCall{call}}
}

// sentText is the message of a send_message call, if its arguments hold
// one.
func sentText(tc schema.ToolCall) (string, bool) {
	var args struct {
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(tc.Arguments), &args) != nil {
		return "", false
	}
	return args.Message, true
}

// Shown reports whether a stored message renders as anything: an
// assistant message with no text, reasoning or tool call (the model
// answered with nothing) is stored, for the history's sake, but shows
// nothing.
func Shown(m *schema.Message) bool {
	return m.Role != schema.RoleAssistant || m.Reasoning != "" || m.Text != "" || len(m.ToolCalls) > 0
}

// RenderAll renders messages in order; never nil.
func RenderAll(ms []*schema.Message) []letta.Message {
	out := []letta.Message{}
	for _, m := range ms {
		out = append(out, Render(m)...)
	}
	return out
}

// SearchText is the text of a message that searches look at: its text and
// what it said through send_message.
func SearchText(m *schema.Message) string {
	text := m.Text
	for _, tc := range m.ToolCalls {
		if tc.Name != SendMessageTool {
			continue
		}
		if said, ok := sentText(tc); ok {
			text = strings.TrimSpace(text + "\n" + said)
		}
	}
	return text
}
