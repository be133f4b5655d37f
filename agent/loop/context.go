package loop

import (
	"fmt"
	"slices"

	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

// The context-window rule. A step sends the model the context's stored
// system message (instructions, memory blocks, memory metadata: see package
// window), its summary if it has one, the tool schemas, and as much recent
// history of the context as fits:
//
//   - tokens are estimated at 4 bytes each, plus 4 per message and per tool
//     call;
//   - the budget is the model's context window, less the output reserve
//     (max_tokens, at most a quarter of the window), the system prompt and
//     the tool schemas; if that is negative the turn stops with
//     context_window_overflow_in_system_prompt;
//   - history is cut into units never split: a user (or system) message, or
//     an assistant message together with every tool result answering it;
//   - the current turn's units are always sent; earlier units are added
//     newest first while they fit, and the first one that does not fit ends
//     the history (nothing older is sent, so the history has no gaps);
//   - at most window.MaxMessages recent messages are considered;
//   - when the history does not all fit, the step first compacts the
//     context (compact.go): its older part is replaced by a summary, and
//     the request is built again; only if that fails, or is not enough, are
//     older units left out (they stay in recall memory, where
//     conversation_search finds them);
//   - if the provider still rejects the prompt as too long, the step is
//     retried with half the history budget, twice at most.
const (
	defaultMaxOutput      = 4096 // tokens reserved for the answer when max_tokens is unset
	perMessageTokens      = 4
	perToolSchemaOverhead = 8
)

// MessageTokens estimates what a stored message takes in a request.
func MessageTokens(m *schema.Message) int {
	n := 0
	for _, lm := range (historyUnit{msgs: []*schema.Message{m}}).appendLLM(nil) {
		n += llmMessageTokens(lm)
	}
	return n
}

// ToolTokens estimates what a tool's schema takes in a request.
func ToolTokens(t llm.Tool) int {
	return perToolSchemaOverhead + prompt.EstimateTokens(t.Name) + prompt.EstimateTokens(t.Description) + prompt.EstimateTokens(t.Parameters)
}

func llmMessageTokens(m llm.Message) int {
	n := perMessageTokens + prompt.EstimateTokens(m.Content)
	for _, tc := range m.ToolCalls {
		n += perMessageTokens + prompt.EstimateTokens(tc.Name) + prompt.EstimateTokens(tc.Arguments)
	}
	return n
}

type builtRequest struct {
	req       llm.Request
	agentType string
	tokens    int // estimated prompt size
	dropped   int // units of the context's history that did not fit
	// rules are what the agent's tool rules knew when the request was
	// built, with the tools they offered.
	rules StepRules
}

// contextInputs is what one step's request is made of, read in one
// snapshot: the context's stored system message and summary, and its
// messages cut into units, newest first.
type contextInputs struct {
	agent   *schema.Agent
	system  string
	summary *schema.Message
	units   []historyUnit
	custom  []*schema.Tool // attached custom tools
}

func (r *turnRun) buildRequest(budgetFactor float64) (*builtRequest, error) {
	var out *builtRequest
	err := r.m.cfg.Store.Read(r.ctx, func(txn kv.Txn) error {
		in, err := r.m.readContext(txn, r.agentID, r.convID)
		if err != nil {
			return err
		}
		out, err = r.fit(in, budgetFactor)
		return err
	})
	return out, err
}

func (m *Manager) readContext(txn kv.Txn, agentID, convID string) (*contextInputs, error) {
	o, err := window.Load(txn, agentID, convID)
	if err != nil {
		return nil, err
	}
	return m.readOwnerContext(txn, o, nil)
}

// readOwnerContext is readContext of a context already loaded (Begin's,
// whose agent may have changed in its transaction), with its system
// message if the caller has it (Begin's refresh read it).
func (m *Manager) readOwnerContext(txn kv.Txn, o window.Owner, sys *schema.Message) (*contextInputs, error) {
	agentID := o.AgentID()
	in := &contextInputs{agent: o.Agent}
	var err error
	if sys == nil {
		if sys, err = window.System(txn, o); err != nil {
			return nil, err
		}
	}
	if sys == nil {
		return nil, fmt.Errorf("the context of agent %s, conversation %q, has no system message (its turn's start stores one)", agentID, o.ConvID())
	}
	in.system = sys.Text
	if in.summary, err = window.Summary(txn, o); err != nil {
		return nil, err
	}
	if in.custom, err = schema.AgentCustomTools(txn, agentID); err != nil {
		return nil, err
	}
	msgs, err := m.history.messages(txn, o)
	in.units = unitsOf(msgs)
	return in, err
}

// fit chooses the history that fits and builds the request.
func (r *turnRun) fit(in *contextInputs, budgetFactor float64) (*builtRequest, error) {
	a := in.agent
	allowed, force := r.solver(a).Allowed(tool.Offered(a, in.custom))
	tools := tool.Schemas(allowed, r.client)
	rules := StepRules{Called: slices.Clone(r.called)}
	for _, t := range allowed {
		rules.Offered = append(rules.Offered, t.Name)
	}
	toolTokens := 0
	for _, t := range tools {
		toolTokens += ToolTokens(t)
	}
	limit := a.LLMConfig.ContextWindow
	if limit <= 0 {
		limit = DefaultContextWindow
	}
	maxOut := defaultMaxOutput
	if a.LLMConfig.MaxTokens != nil && *a.LLMConfig.MaxTokens > 0 {
		maxOut = *a.LLMConfig.MaxTokens
	}
	reserve := min(maxOut, limit/4)

	req := llm.Request{Model: r.model, Tools: tools, MaxTokens: reserve, ToolChoice: force}
	req.Messages = append(req.Messages, llm.Message{Role: llm.RoleSystem, Content: in.system})
	if in.summary != nil {
		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleUser, Content: in.summary.Text})
	}
	fixed := 0
	for _, m := range req.Messages {
		fixed += llmMessageTokens(m)
	}
	available := limit - reserve - fixed - toolTokens
	if available < 0 {
		return nil, &stepError{letta.StopContextOverflow, fmt.Sprintf(
			"the system prompt and tools take about %d tokens, more than the %d-token context window leaves after reserving %d for the answer",
			fixed+toolTokens, limit, reserve)}
	}
	var used, chosen int
	req.Messages, used, chosen = r.chooseHistory(req.Messages, in.units, int(float64(available)*budgetFactor))
	return &builtRequest{req: req, agentType: a.AgentType, tokens: fixed + toolTokens + used, dropped: len(in.units) - chosen, rules: rules}, nil
}

// DefaultContextWindow is the context window of an agent whose llm_config
// has none, in tokens.
const DefaultContextWindow = 32_768

// chooseHistory picks units (newest first) while they fit in budget; the
// current turn's always do. It appends their messages to dst, oldest unit
// first, and returns them with the tokens they take and how many units
// they are.
func (r *turnRun) chooseHistory(dst []llm.Message, units []historyUnit, budget int) (msgs []llm.Message, used, chosen int) {
	// Newest unit first; most units are one message, and most contexts
	// fit: sized once rather than grown.
	picked := make([]llm.Message, 0, len(units)+len(units)/4)
	ends := make([]int, 0, len(units)) // of each unit's messages in picked
	for _, u := range units {
		start := len(picked)
		picked = u.appendLLM(picked)
		n := 0
		for _, m := range picked[start:] {
			n += llmMessageTokens(m)
		}
		if !u.current(r.turn.runID) && used+n > budget {
			picked = picked[:start]
			break
		}
		used += n
		ends = append(ends, len(picked))
	}
	dst = slices.Grow(dst, len(picked))
	for i := len(ends) - 1; i >= 0; i-- {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		dst = append(dst, picked[start:ends[i]]...)
	}
	return dst, used, len(ends)
}

// historyUnit is a piece of history never split: a user or system message,
// or an assistant message with the tool results answering it.
type historyUnit struct{ msgs []*schema.Message }

func (u historyUnit) current(runID string) bool {
	return slices.ContainsFunc(u.msgs, func(m *schema.Message) bool { return m.RunID == runID })
}

// appendLLM appends the unit's messages as the model is shown them.
func (u historyUnit) appendLLM(dst []llm.Message) []llm.Message {
	lead := u.msgs[0]
	switch lead.Role {
	case schema.RoleUser:
		return append(dst, llm.Message{Role: llm.RoleUser, Content: lead.Text, Images: storedImages(lead.Content)})
	case schema.RoleSystem:
		return append(dst, llm.Message{Role: llm.RoleSystem, Content: lead.Text})
	}
	if lead.Text == "" && len(lead.ToolCalls) == 0 {
		return dst // an empty answer: nothing to show the model
	}
	am := llm.Message{Role: llm.RoleAssistant, Content: lead.Text}
	if len(lead.ToolCalls) > 0 {
		am.ToolCalls = make([]llm.ToolCall, len(lead.ToolCalls))
		for i, tc := range lead.ToolCalls {
			am.ToolCalls[i] = llm.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments}
		}
	}
	dst = append(dst, am)
	results := u.msgs[1:]
	for _, m := range results {
		dst = append(dst, llm.Message{Role: llm.RoleTool, Content: m.Text, ToolCallID: m.ToolCallID, Images: storedImages(m.Content)})
	}
	for _, tc := range lead.ToolCalls {
		if !slices.ContainsFunc(results, func(m *schema.Message) bool { return m.ToolCallID == tc.ID }) {
			// Never stored this way (a call is answered in the commit that
			// records it, or by the repair at the next turn), but a model
			// API rejects an unanswered call, so answer it here too.
			dst = append(dst, llm.Message{Role: llm.RoleTool, Content: "Error: no result was recorded for this tool call.", ToolCallID: tc.ID})
		}
	}
	return dst
}

// unitsOf cuts a context's messages, given oldest first, into units,
// newest unit first.
func unitsOf(msgs []*schema.Message) []historyUnit {
	var units []historyUnit
	var results []*schema.Message // tool results waiting for their call, newest first
	for _, m := range slices.Backward(msgs) {
		switch m.Role {
		case schema.RoleTool:
			results = append(results, m)
		case schema.RoleAssistant:
			slices.Reverse(results)
			units = append(units, historyUnit{msgs: append([]*schema.Message{m}, results...)})
			results = nil
		default:
			results = nil // results whose call is gone: never sent alone
			units = append(units, historyUnit{msgs: []*schema.Message{m}})
		}
	}
	return units
}
