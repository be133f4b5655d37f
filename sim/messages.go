package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Messages as the API shows them, parsed from send responses (JSON or an
// SSE stream) and listings.

// msgJSON is one LettaMessage (one part of a stored message: a stored
// message shows as several parts sharing its id), or one event of a stream.
type msgJSON struct {
	ID          string          `json:"id"`
	MessageType string          `json:"message_type"`
	Otid        string          `json:"otid"`
	RunID       string          `json:"run_id"`
	Content     json.RawMessage `json:"content"`
	Reasoning   string          `json:"reasoning"`
	ToolCall    *toolCallJSON   `json:"tool_call"`
	ToolCallID  string          `json:"tool_call_id"`
	Status      string          `json:"status"`
	ToolReturn  string          `json:"tool_return"`
	Summary     string          `json:"summary"` // of a summary_message
	// Stream events.
	StopReason string `json:"stop_reason"`
	Detail     string `json:"detail"`

	// text is the content (a JSON string) or the reasoning, decoded; a
	// token-streamed part's deltas joined.
	text string
}

type toolCallJSON struct {
	Name       string `json:"name"`
	Arguments  string `json:"arguments"`
	ToolCallID string `json:"tool_call_id"`
}

// Message types.
const (
	mtUser       = "user_message"
	mtAssistant  = "assistant_message"
	mtReasoning  = "reasoning_message"
	mtToolCall   = "tool_call_message"
	mtToolReturn = "tool_return_message"
	mtApproval   = "approval_request_message"
	// A context's system message and summary belong to no run, and a
	// system message is recompiled in place (same id, new text).
	mtSystem  = "system_message"
	mtSummary = "summary_message"
)

func (m *msgJSON) decodeText() {
	m.text = m.Reasoning
	if len(m.Content) > 0 {
		var s string
		if json.Unmarshal(m.Content, &s) == nil {
			m.text = s
		} else {
			m.text = string(m.Content)
		}
	}
}

// sig identifies a part with everything the API shows of it but its
// position (seq_id) and date.
func (m *msgJSON) sig() string {
	tc := ""
	if m.ToolCall != nil {
		tc = m.ToolCall.Name + "(" + m.ToolCall.Arguments + ")#" + m.ToolCall.ToolCallID
	}
	text := m.text
	if m.MessageType == mtSystem {
		text = "" // recompiled in place
	}
	return strings.Join([]string{m.MessageType, m.ID, m.Otid, m.RunID, text, tc, m.ToolCallID, m.Status, m.ToolReturn}, "|")
}

func (m *msgJSON) String() string {
	s := fmt.Sprintf("%s %s", m.MessageType, m.ID)
	switch {
	case m.MessageType == mtUser:
		s += " otid=" + m.Otid
	case m.ToolCall != nil:
		s += fmt.Sprintf(" %s(%s) call=%s", m.ToolCall.Name, clipString(m.ToolCall.Arguments, 80), m.ToolCall.ToolCallID)
	case m.MessageType == mtToolReturn:
		s += fmt.Sprintf(" call=%s %s %q", m.ToolCallID, m.Status, clipString(m.ToolReturn, 80))
	default:
		s += fmt.Sprintf(" %q", clipString(m.text, 80))
	}
	if m.RunID != "" {
		s += " run=" + m.RunID
	}
	return s
}

// sendResp is the answer to a message send.
type sendResp struct {
	// Msgs are the response's messages in order; a part streamed token
	// by token is its deltas joined.
	Msgs []msgJSON
	// Stop is the stop reason; Error the detail of a stream's error event.
	Stop, Error string
	// RunID is the run, from the messages or the error event ("" when
	// neither tells).
	RunID string
	// Done: the whole answer arrived (a stream ended with [DONE]).
	Done bool
	// Tokens: streamed token by token, so text parts may be deltas of a
	// step that was never committed.
	Tokens bool
}

func (r *sendResp) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stop=%s run=%s", r.Stop, r.RunID)
	if !r.Done {
		b.WriteString(" (cut off)")
	}
	parts := make([]string, len(r.Msgs))
	for i := range r.Msgs {
		parts[i] = r.Msgs[i].String()
	}
	fmt.Fprintf(&b, " [%s]", strings.Join(parts, "; "))
	return b.String()
}

// clean reports whether the turn stopped after committing every step it
// took: then every part streamed as deltas was committed.
func (r *sendResp) clean() bool {
	switch r.Stop {
	case "end_turn", "max_steps", "max_tokens_exceeded":
		return true
	}
	return false
}

// tentative reports whether part m of r may never have been committed.
func (r *sendResp) tentative(m *msgJSON) bool {
	return r.Tokens && (m.MessageType == mtAssistant || m.MessageType == mtReasoning)
}

func streamDone(body []byte) bool {
	return bytes.Contains(body, []byte("data: [DONE]\n\n"))
}

func parseSend(body []byte, streaming, tokens bool) (*sendResp, error) {
	r := &sendResp{Tokens: tokens}
	if !streaming {
		var v struct {
			Messages   []msgJSON `json:"messages"`
			StopReason struct {
				StopReason string `json:"stop_reason"`
			} `json:"stop_reason"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			return nil, err
		}
		for i := range v.Messages {
			v.Messages[i].decodeText()
		}
		r.Msgs, r.Stop, r.Done = v.Messages, v.StopReason.StopReason, true
	} else {
		for _, ev := range strings.Split(string(body), "\n\n") {
			var data string
			for _, line := range strings.Split(ev, "\n") {
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					data = d
				}
			}
			if data == "" {
				continue
			}
			if data == "[DONE]" {
				r.Done = true
				continue
			}
			var m msgJSON
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				return nil, fmt.Errorf("stream event %q: %w", clipString(data, 200), err)
			}
			m.decodeText()
			switch m.MessageType {
			case "ping", "usage_statistics":
			case "stop_reason":
				r.Stop = m.StopReason
			case "error_message":
				r.Error = m.Detail
				if m.RunID != "" {
					r.RunID = m.RunID
				}
			default:
				r.addPart(m)
			}
		}
	}
	for _, m := range r.Msgs {
		if m.RunID != "" && r.RunID == "" {
			r.RunID = m.RunID
		}
	}
	return r, nil
}

// addPart adds a streamed part, joining a delta to the earlier deltas of
// its part.
func (r *sendResp) addPart(m msgJSON) {
	if r.Tokens && (m.MessageType == mtAssistant || m.MessageType == mtReasoning) {
		for i := range r.Msgs {
			p := &r.Msgs[i]
			if p.ID == m.ID && p.Otid == m.Otid && p.MessageType == m.MessageType {
				p.text += m.text
				return
			}
		}
	}
	r.Msgs = append(r.Msgs, m)
}

func parseListing(body []byte, desc bool) ([]msgJSON, error) {
	var parts []msgJSON
	if err := json.Unmarshal(body, &parts); err != nil {
		return nil, err
	}
	for i := range parts {
		parts[i].decodeText()
	}
	if desc {
		slices.Reverse(parts)
	}
	if parts == nil {
		parts = []msgJSON{}
	}
	return parts, nil
}

// ---- stored messages and their tool calls ------------------------------------

// msgGroup is the parts of one stored message.
type msgGroup struct {
	id    string
	first int // index of its first part in the history
	parts []msgJSON
}

func (g *msgGroup) kind() string {
	switch g.parts[0].MessageType {
	case mtUser, mtToolReturn, "system_message":
		return g.parts[0].MessageType
	}
	return mtAssistant
}

func (g *msgGroup) runID() string { return g.parts[0].RunID }

var callMarker = regexp.MustCompile(`\[call:([A-Za-z0-9_-]*)\]`)

// calls are the ids of the tool calls of an assistant message: those shown
// as calls, and the send_message calls shown as what the agent said (whose
// message names the call).
func (g *msgGroup) calls() []string {
	var out []string
	for _, p := range g.parts {
		switch p.MessageType {
		case mtToolCall, mtApproval:
			if p.ToolCall != nil {
				out = append(out, p.ToolCall.ToolCallID)
			}
		case mtAssistant:
			for _, m := range callMarker.FindAllStringSubmatch(p.text, -1) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// deferredCalls are the ids of the group's calls of the custom tool and
// of the MCP server's, which run after their call commits.
func (g *msgGroup) deferredCalls() []string {
	var out []string
	for _, p := range g.parts {
		if p.MessageType == mtToolCall && p.ToolCall != nil && (p.ToolCall.Name == simNoteTool || p.ToolCall.Name == simMCPTool) {
			out = append(out, p.ToolCall.ToolCallID)
		}
	}
	return out
}

func groupMessages(ms []msgJSON) []*msgGroup {
	var out []*msgGroup
	for i, m := range ms {
		if n := len(out); n > 0 && out[n-1].id == m.ID {
			out[n-1].parts = append(out[n-1].parts, m)
			continue
		}
		out = append(out, &msgGroup{id: m.ID, first: i, parts: []msgJSON{m}})
	}
	return out
}

// ---- the memory tools, as a model --------------------------------------------

// toolOutcome is what a memory tool call does to a block's value.
type toolOutcome int

const (
	toolApplies toolOutcome = iota // it succeeds, with a new value
	toolRefused                    // the value makes it fail (text not found, line out of range)
	toolBadArgs                    // its arguments make it fail whatever the value
)

// applyMemoryTool is what the agent's memory tool name does to value, with
// the arguments args (a JSON object as text), reading the arguments as the
// agent does. It returns the label the call names too.
func applyMemoryTool(name, args, value string) (label, next string, out toolOutcome) {
	a, ok := parseToolArgs(args)
	if !ok {
		return "", "", toolBadArgs
	}
	label = a.str("label", true)
	if a.bad {
		return label, "", toolBadArgs
	}
	switch name {
	case toolCoreMemoryAppend:
		next, out = coreMemoryAppend(a, value)
	case toolCoreMemoryReplace:
		next, out = replaceAll(a, value, "old_content", "new_content")
	case toolMemoryInsert:
		next, out = memoryInsert(a, value)
	case toolMemoryReplace:
		next, out = replaceOnce(a, value)
	default:
		return label, "", toolBadArgs
	}
	return label, next, out
}

// toolArgs are a tool call's arguments, read as the agent reads them: bad
// is set once one is missing though required, or of the wrong type.
type toolArgs struct {
	fields map[string]json.RawMessage
	bad    bool
}

func parseToolArgs(args string) (*toolArgs, bool) {
	a := &toolArgs{fields: map[string]json.RawMessage{}}
	if strings.TrimSpace(args) != "" && json.Unmarshal([]byte(args), &a.fields) != nil {
		return nil, false
	}
	return a, true
}

func (a *toolArgs) str(k string, required bool) string {
	v, ok := a.fields[k]
	if !ok || string(v) == "null" {
		a.bad = a.bad || required
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		a.bad = true
	}
	return s
}

func (a *toolArgs) integer(k string, def int) int {
	v, ok := a.fields[k]
	if !ok || string(v) == "null" {
		return def
	}
	var f float64
	if json.Unmarshal(v, &f) != nil || f != float64(int(f)) {
		a.bad = true
		return 0
	}
	return int(f)
}

func coreMemoryAppend(a *toolArgs, value string) (string, toolOutcome) {
	content := a.str("content", true)
	switch {
	case a.bad:
		return "", toolBadArgs
	case value == "":
		return content, toolApplies
	}
	return value + "\n" + content, toolApplies
}

// replaceAll is core_memory_replace: every occurrence of the old text.
func replaceAll(a *toolArgs, value, oldKey, newKey string) (string, toolOutcome) {
	old := a.str(oldKey, true)
	repl := a.str(newKey, false)
	switch {
	case a.bad:
		return "", toolBadArgs
	case old == "" || !strings.Contains(value, old):
		return "", toolRefused
	}
	return strings.ReplaceAll(value, old, repl), toolApplies
}

// replaceOnce is memory_replace: the old text must be there exactly once.
func replaceOnce(a *toolArgs, value string) (string, toolOutcome) {
	old := a.str("old_str", true)
	repl := a.str("new_str", false)
	switch {
	case a.bad:
		return "", toolBadArgs
	case old == "" || strings.Count(value, old) != 1:
		return "", toolRefused
	}
	return strings.Replace(value, old, repl, 1), toolApplies
}

func memoryInsert(a *toolArgs, value string) (string, toolOutcome) {
	text := a.str("new_str", true)
	at := a.integer("insert_line", -1)
	if a.bad {
		return "", toolBadArgs
	}
	var lines []string
	if value != "" {
		lines = strings.Split(value, "\n")
	}
	if at == -1 {
		at = len(lines)
	}
	if at < 0 || at > len(lines) {
		return "", toolRefused
	}
	lines = slices.Insert(lines, at, strings.Split(text, "\n")...)
	return strings.Join(lines, "\n"), toolApplies
}

// toolEdit is a memory tool call in an agent's history, with its result.
type toolEdit struct {
	agent, run string
	call       toolCallJSON
	label      string
	ok         bool   // the result's status is success
	result     string // the result's text
}

// noEffect reports whether the edit's error result says it touched no
// block at all: the agent has no such tool (or was not offered it), the label named none of its
// blocks, or the arguments were unusable.
func (e *toolEdit) noEffect() bool {
	if e.ok {
		return false
	}
	if e.foundNoBlock() || strings.Contains(e.result, "is read-only") ||
		strings.Contains(e.result, "there is no tool named") || strings.HasPrefix(e.result, "[ToolConstraintError]") {
		return true
	}
	_, _, out := applyMemoryTool(e.call.Name, e.call.Arguments, "")
	return out == toolBadArgs
}

// sawBlock reports whether the call looked at the block its label names:
// it did unless it did nothing (see noEffect) for a reason other than the
// block being read-only.
func (e *toolEdit) sawBlock() bool {
	return !e.noEffect() || strings.Contains(e.result, "is read-only")
}

// foundNoBlock reports whether the call found no block with its label.
func (e *toolEdit) foundNoBlock() bool {
	return !e.ok && strings.Contains(e.result, "there is no memory block labelled")
}

var holdsRe = regexp.MustCompile(`now holds (\d+) of its`)

// step applies the edit to a block's value as the model says it must
// have: ok is false when the recorded result cannot come from value.
func (e *toolEdit) step(value string) (next string, ok bool) {
	_, nv, out := applyMemoryTool(e.call.Name, e.call.Arguments, value)
	if !e.ok {
		if e.noEffect() {
			return value, true
		}
		return value, out == toolRefused
	}
	if out != toolApplies {
		return value, false
	}
	if m := holdsRe.FindStringSubmatch(e.result); m != nil && m[1] != fmt.Sprint(utf8.RuneCountInString(nv)) {
		return value, false
	}
	return nv, true
}

func (e *toolEdit) String() string {
	res := "error"
	if e.ok {
		res = "success"
	}
	return fmt.Sprintf("%s(%s) by agent %s run %s -> %s %q", e.call.Name, e.call.Arguments, e.agent, e.run, res, clipString(e.result, 100))
}

// toolEdits returns the memory tool calls of a history with their results
// (those that follow their assistant message: a call id may come back in a
// later turn), in history order.
func toolEdits(agentID string, hist []msgJSON) []*toolEdit {
	var out []*toolEdit
	groups := groupMessages(hist)
	for i, g := range groups {
		if g.kind() != mtAssistant {
			continue
		}
		results := map[string]*msgJSON{}
		for j := i + 1; j < len(groups) && groups[j].kind() == mtToolReturn; j++ {
			r := &groups[j].parts[0]
			results[r.ToolCallID] = r
		}
		for k := range g.parts {
			m := &g.parts[k]
			if m.MessageType != mtToolCall || m.ToolCall == nil || !isMemoryTool(m.ToolCall.Name) {
				continue
			}
			res := results[m.ToolCall.ToolCallID]
			if res == nil {
				continue // the history checker reports it
			}
			label, _, _ := applyMemoryTool(m.ToolCall.Name, m.ToolCall.Arguments, "")
			out = append(out, &toolEdit{agent: agentID, run: m.RunID, call: *m.ToolCall, label: label,
				ok: res.Status == "success", result: res.ToolReturn})
		}
	}
	return out
}
