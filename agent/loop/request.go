package loop

import (
	"encoding/json"
	"fmt"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of message requests.
const (
	DefaultMaxSteps    = 50
	MaxStepsLimit      = 1000
	MaxInputs          = 100 // messages in one request
	MaxClientTools     = 256
	maxOtidChars       = 256
	maxClientToolChars = 256 // of a client tool's name
)

// parsed is a validated message request.
type parsed struct {
	inputs    []schema.Message
	approvals []Approval
	keys      []string // the otids and Idempotency-Key that identify it
	maxSteps  int
	client    []letta.ClientTool
}

// Check validates a message request as Start does, starting nothing: for
// a caller that starts several turns and must refuse them all or none.
func Check(req letta.MessageRequest) error {
	_, err := parse(req, "", func(prefix string) (string, error) { return prefix + "-unnamed", nil })
	return err
}

// parse validates a message request; newID names its messages.
func parse(req letta.MessageRequest, idempotencyKey string, newID func(string) (string, error)) (*parsed, error) {
	msgs, err := inputsOf(req)
	if err != nil {
		return nil, err
	}
	p := &parsed{maxSteps: DefaultMaxSteps}
	if req.MaxSteps != nil {
		if *req.MaxSteps < 1 || *req.MaxSteps > MaxStepsLimit {
			return nil, letta.Invalidf("max_steps %d is out of range: want 1 to %d", *req.MaxSteps, MaxStepsLimit)
		}
		p.maxSteps = *req.MaxSteps
	}
	for i, m := range msgs {
		if err := p.add(fmt.Sprintf("messages[%d]", i), m, newID); err != nil {
			return nil, err
		}
	}
	if idempotencyKey != "" {
		p.keys = append(p.keys, "key\x00"+idempotencyKey)
	}
	if err := checkClientTools(req.ClientTools); err != nil {
		return nil, err
	}
	p.client = req.ClientTools
	return p, nil
}

// inputsOf returns the request's messages: its messages, or its input as
// one user message.
func inputsOf(req letta.MessageRequest) ([]letta.MessageCreate, error) {
	msgs := req.Messages
	hasInput := len(req.Input) > 0 && string(req.Input) != "null"
	switch {
	case hasInput && msgs != nil:
		return nil, letta.Invalidf("Cannot specify both 'input' and 'messages'. Use one or the other.")
	case hasInput:
		msgs = []letta.MessageCreate{{Type: "message", Role: schema.RoleUser, Content: req.Input}}
	case msgs == nil:
		return nil, letta.Invalidf("Must specify either 'input' or 'messages'.")
	}
	if len(msgs) == 0 {
		return nil, letta.Invalidf("messages must not be empty")
	}
	if len(msgs) > MaxInputs {
		return nil, letta.Invalidf("messages has %d entries, over the limit of %d", len(msgs), MaxInputs)
	}
	return msgs, nil
}

// add takes one input: a message or an approval reply.
func (p *parsed) add(field string, m letta.MessageCreate, newID func(string) (string, error)) error {
	typ := m.Type
	if typ == "" && (m.Approvals != nil || m.Approve != nil || m.ApprovalRequestID != nil) {
		typ = "approval"
	}
	switch typ {
	case "", "message":
		in, err := parseInput(field, m, newID)
		if err != nil {
			return err
		}
		p.inputs = append(p.inputs, in)
		if in.Otid != "" {
			p.keys = append(p.keys, "otid\x00"+in.Otid)
		}
	case "approval":
		as, err := parseApproval(field, m, newID)
		if err != nil {
			return err
		}
		p.approvals = append(p.approvals, as...)
	default:
		return letta.Invalidf("%s.type %q: want message or approval", field, letta.Clip(typ))
	}
	return nil
}

func checkClientTools(tools []letta.ClientTool) error {
	if len(tools) > MaxClientTools {
		return letta.Invalidf("client_tools has %d entries, over the limit of %d", len(tools), MaxClientTools)
	}
	seen := map[string]bool{}
	for i, c := range tools {
		if c.Name == "" || len(c.Name) > maxClientToolChars {
			return letta.Invalidf("client_tools[%d].name must be 1 to %d characters", i, maxClientToolChars)
		}
		if seen[c.Name] {
			return letta.Invalidf("client_tools[%d]: duplicate tool name %q", i, letta.Clip(c.Name))
		}
		seen[c.Name] = true
		if len(c.Parameters) > 0 && string(c.Parameters) != "null" {
			var obj map[string]any
			if err := json.Unmarshal(c.Parameters, &obj); err != nil {
				return letta.Invalidf("client_tools[%d].parameters must be a JSON Schema object", i)
			}
		}
	}
	return nil
}

func parseInput(field string, m letta.MessageCreate, newID func(string) (string, error)) (schema.Message, error) {
	switch m.Role {
	case schema.RoleUser, schema.RoleSystem, schema.RoleAssistant:
	case "":
		return schema.Message{}, letta.Invalidf("%s.role: Field required", field)
	default:
		return schema.Message{}, letta.Invalidf("%s.role %q: want user, system or assistant", field, letta.Clip(m.Role))
	}
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return schema.Message{}, letta.Invalidf("%s.content: Field required", field)
	}
	text, _, err := parseContent(field+".content", m.Content, m.Role == schema.RoleUser)
	if err != nil {
		return schema.Message{}, err
	}
	id, err := newID("message")
	if err != nil {
		return schema.Message{}, err
	}
	rec := schema.Message{ID: id, Role: m.Role, Text: text, Name: m.Name, SenderID: m.SenderID}
	if m.Role == schema.RoleUser {
		rec.Content = append(json.RawMessage(nil), m.Content...)
	}
	if m.Otid != nil {
		if len(*m.Otid) > maxOtidChars {
			return schema.Message{}, letta.Invalidf("%s.otid is longer than %d characters", field, maxOtidChars)
		}
		rec.Otid = *m.Otid
	}
	return rec, nil
}

// Approval answers one tool call waiting for the client.
type Approval struct {
	ToolCallID string  `json:"tool_call_id"`
	ResultID   string  `json:"result_id"`
	ToolReturn *string `json:"tool_return,omitempty"` // a client tool's result
	// ToolReturnParts is the result as sent, when its parts show images.
	ToolReturnParts json.RawMessage `json:"tool_return_parts,omitempty"`
	Status          string          `json:"status,omitempty"`
	Approve         *bool           `json:"approve,omitempty"` // an approval decision
	Reason          string          `json:"reason,omitempty"`
}

func parseApproval(field string, m letta.MessageCreate, newID func(string) (string, error)) ([]Approval, error) {
	var out []Approval
	for i, a := range m.Approvals {
		f := fmt.Sprintf("%s.approvals[%d]", field, i)
		if a.ToolCallID == "" {
			return nil, letta.Invalidf("%s.tool_call_id: Field required", f)
		}
		id, err := newID("message")
		if err != nil {
			return nil, err
		}
		in, err := parseApprovalReturn(f, a, id)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	if len(m.Approvals) == 0 {
		if m.Approve == nil {
			return nil, letta.Invalidf("%s: an approval needs approvals or approve", field)
		}
		// The older form answers every waiting call at once.
		id, err := newID("message")
		if err != nil {
			return nil, err
		}
		out = append(out, Approval{ResultID: id, Approve: m.Approve, Reason: deref(m.Reason)})
	}
	return out, nil
}

func parseApprovalReturn(f string, a letta.ApprovalReturn, resultID string) (Approval, error) {
	in := Approval{ToolCallID: a.ToolCallID, ResultID: resultID}
	switch {
	case a.Type == "approval" || a.Type == "" && a.Approve != nil:
		if a.Approve == nil {
			return Approval{}, letta.Invalidf("%s.approve: Field required", f)
		}
		in.Approve, in.Reason = a.Approve, deref(a.Reason)
	case a.Type == "tool" || a.Type == "":
		if len(a.ToolReturn) == 0 || string(a.ToolReturn) == "null" {
			return Approval{}, letta.Invalidf("%s.tool_return: Field required", f)
		}
		text, images, err := parseContent(f+".tool_return", a.ToolReturn, true)
		if err != nil {
			return Approval{}, err
		}
		if len(images) > 0 {
			in.ToolReturnParts = append(json.RawMessage(nil), a.ToolReturn...)
		}
		if a.Status != "success" && a.Status != "error" {
			return Approval{}, letta.Invalidf("%s.status %q: want success or error", f, letta.Clip(a.Status))
		}
		in.ToolReturn, in.Status = &text, a.Status
	default:
		return Approval{}, letta.Invalidf("%s.type %q: want tool or approval", f, letta.Clip(a.Type))
	}
	return in, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
