package loop

import (
	"encoding/json"
	"slices"
	"unicode/utf8"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// OpResults commits the results of a step's deferred calls (custom tools,
// run in the sandbox after the step committed).
//
// At most once: a deferred call runs only after the step that made it has
// committed, and only in the turn that made it. If the server stops while
// it runs, or this commit fails, the call stays without a result; the
// agent's next turn answers it with an error saying its outcome is unknown
// (Begin's repair) and never runs it again.
const OpResults = "turn_results"

// ResultsPayload is the payload of OpResults.
type ResultsPayload struct {
	RunID       string           `json:"run_id"`
	AssistantID string           `json:"assistant_id"`
	Results     []DeferredResult `json:"results"`
	ModelStop   string           `json:"model_stop"`
	LastStep    bool             `json:"last_step"`
	// Rules are those of the step that made the calls; nil for calls
	// the user approved, which no rule refuses.
	Rules *StepRules `json:"rules,omitempty"`
}

// DeferredResult is the result of one deferred call.
type DeferredResult struct {
	CallID   string `json:"call_id"`
	ResultID string `json:"result_id"`
	Text     string `json:"text"`
	Status   string `json:"status"` // success or error
	Stdout   string `json:"stdout,omitempty"`
	Stderr   string `json:"stderr,omitempty"`
}

// MaxStoredOutputBytes bounds what a tool printed, per stream, as stored
// with its result: the start of it is kept.
const MaxStoredOutputBytes = 8 << 10

// Results appends the results of deferred calls after their step's
// messages, then closes the run if the turn stops there.
func Results(call *actor.Call, a *schema.Agent, p ResultsPayload) ([]byte, error) {
	txn := call.Txn
	run, err := activeRun(txn, a.ID, p.RunID)
	if err != nil {
		return nil, err
	}
	agentID, seq, err := schema.LocateMessage(txn, p.AssistantID)
	if err != nil {
		return nil, err
	}
	if agentID != a.ID {
		return nil, letta.Conflictf("message %s belongs to another agent", p.AssistantID)
	}
	step, err := stepMessages(txn, a.ID, seq)
	if err != nil {
		return nil, err
	}
	asst := step[0]
	var added []*schema.Message
	for _, r := range p.Results {
		i := slices.IndexFunc(asst.ToolCalls, func(tc schema.ToolCall) bool { return tc.ID == r.CallID })
		answered := slices.ContainsFunc(step[1:], func(m *schema.Message) bool { return m.ToolCallID == r.CallID })
		if i < 0 || !asst.ToolCalls[i].Deferred || answered {
			return nil, letta.Conflictf("tool call %s of message %s is not waiting for its result", r.CallID, asst.ID)
		}
		m := toolResult(asst, asst.ToolCalls[i], r.ResultID, r.Text, r.Status, call.Now)
		m.Stdout, m.Stderr = r.Stdout, r.Stderr
		if asst.RunID != run.ID {
			// An approved call of an earlier turn: its result is this turn's.
			m.RunID, m.ConversationID, m.StepID = run.ID, run.ConversationID, ""
		}
		m.Seq = step[len(step)-1].Seq + 1
		if err := schema.AppendMessage(txn, m); err != nil {
			return nil, err
		}
		step, added = append(step, m), append(added, m)
	}
	custom, err := schema.AgentCustomTools(txn, a.ID)
	if err != nil {
		return nil, err
	}
	stop, _ := stopAfter(a, tool.Offered(a, custom), asst, step, p.ModelStop, p.LastStep, p.Rules)
	if err := closeStep(call, a, run, step, stop); err != nil {
		return nil, err
	}
	return reply(call, &stepResult{Messages: added, StopReason: stop}, true)
}

// stepMessages returns the assistant message at seq and the tool results
// after it.
func stepMessages(txn kv.Txn, agentID string, seq uint64) ([]*schema.Message, error) {
	asst, err := schema.GetMessage(txn, agentID, seq)
	if err != nil {
		return nil, err
	}
	out := []*schema.Message{asst}
	err = kv.ScanEach(txn, kv.Range{Start: schema.MessageKey(agentID, seq+1), End: kv.PrefixRange(schema.MessagesOf(agentID)).End}, false, func(e kv.KeyValue) (bool, error) {
		m, err := schema.DecodeMessage(e.Value)
		if err != nil || m.Role != schema.RoleTool {
			return false, err
		}
		out = append(out, m)
		return true, nil
	})
	return out, err
}

// runDeferred runs a step's deferred calls, one after another, and
// commits their results. A turn cancelled meanwhile stops the tool
// running; its call is answered as cancelled.
func (r *turnRun) runDeferred(asstID string, calls []DeferredCall, modelStop string, lastStep bool, rules *StepRules) (*stepResult, error) {
	p := ResultsPayload{RunID: r.turn.runID, AssistantID: asstID, ModelStop: modelStop, LastStep: lastStep, Rules: rules}
	for _, d := range calls {
		out := r.runOne(d)
		status := tool.Status(out.OK)
		p.Results = append(p.Results, DeferredResult{
			CallID: d.Call.ID, ResultID: d.ResultID, Status: status,
			Text:   tool.Truncate(out.Result, d.Tool.ReturnCharLimit),
			Stdout: clipBytes(out.Stdout, MaxStoredOutputBytes), Stderr: clipBytes(out.Stderr, MaxStoredOutputBytes),
		})
	}
	var res stepResult
	if err := r.m.cfg.Store.Invoke(r.commitCtx(), r.agentID, OpResults, p, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// runOne runs one deferred call: on its MCP server, as a built-in tool
// that runs outside a step, or in the runner. A turn cancelled meanwhile
// makes a failed call's outcome unknown.
func (r *turnRun) runOne(d DeferredCall) tool.Outcome {
	var out tool.Outcome
	if schema.MCPServerOf(&d.Tool) != "" {
		out = tool.CallMCP(r.ctx, r.m.cfg.MCP, r.m.cfg.Store.Read, &d.Tool, json.RawMessage(d.Call.Arguments))
	} else if b := tool.OutsideBuiltin(&d.Tool); b != nil {
		x := &tool.Outside{Runner: r.m.cfg.Tools, Web: r.m.cfg.Web, Search: r.m.cfg.Search, Agents: r.m.cfg.Agents}
		out = b.RunOutside(r.ctx, x, tool.Call{AgentID: r.agentID, CallID: d.Call.ID, Env: d.Env, Prelude: d.Prelude}, json.RawMessage(d.Call.Arguments))
	} else {
		out = r.runCustom(d)
	}
	if r.ctx.Err() != nil && !out.OK {
		return tool.Failed("the turn was cancelled while %s ran; its outcome is unknown", d.Call.Name)
	}
	return out
}

// runCustom runs a call of a custom tool in the runner.
func (r *turnRun) runCustom(d DeferredCall) tool.Outcome {
	if r.m.cfg.Tools == nil {
		return tool.Failed("custom tools cannot run on this server: it was started without a tool sandbox")
	}
	args := json.RawMessage(d.Call.Arguments)
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(args, &obj); err != nil {
		return tool.Failed("the arguments of %s are not a JSON object: %v", d.Call.Name, err)
	}
	source := ""
	if d.Tool.SourceCode != nil {
		source = *d.Tool.SourceCode
	}
	return r.m.cfg.Tools.Run(r.ctx, tool.Job{Source: source, Name: d.Tool.Name, Args: args, Env: d.Env})
}

// clipBytes cuts s to at most n bytes, at a character boundary.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
