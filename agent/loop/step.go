package loop

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memfs"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// StepPayload is the payload of OpStep.
type StepPayload struct {
	RunID string `json:"run_id"`
	// Message is the model's response as an assistant message; its id and
	// step id are chosen by the caller.
	Message   schema.Message `json:"message"`
	ResultIDs []string       `json:"result_ids"`
	Usage     schema.Usage   `json:"usage"`
	// ModelStop is why the model stopped (llm.StopReason).
	ModelStop string `json:"model_stop"`
	// LastStep says the turn may not take another step.
	LastStep bool `json:"last_step"`
	// Rules are what the agent's tool rules knew when the step's
	// request was built (nil: no call is refused).
	Rules *StepRules `json:"rules,omitempty"`
	// Timing is when the step and its model call began and how long the
	// call took (the step's record keeps them).
	Timing StepTiming `json:"timing"`
	// Embeddings are the embeddings of the texts the tool calls embed
	// (tool.EmbeddingText), computed before this commit; NoVector says
	// why there are none.
	Embeddings map[string]*memory.Embedded `json:"embeddings,omitempty"`
	NoVector   string                      `json:"no_vector,omitempty"`
}

// StepTiming is the timing of a step, read from the loop's clock, and
// the model its call asked.
type StepTiming struct {
	Model    string    `json:"model,omitempty"`
	Start    time.Time `json:"start"`
	LLMStart time.Time `json:"llm_start"`
	LLMNanos int64     `json:"llm_nanos"`
}

// stepResult is what OpStep answers.
type stepResult struct {
	// Messages are the committed messages: the assistant message, then
	// the results of the tools the server ran.
	Messages []*schema.Message `json:"messages"`
	// StopReason is why the turn stops after this step; empty to go on.
	StopReason string `json:"stop_reason,omitempty"`
	// Deferred are the step's calls of custom tools, committed without
	// results: the loop runs them and commits their results with
	// OpResults, which decides whether the turn stops.
	Deferred []DeferredCall `json:"deferred,omitempty"`
	// Called are the step's calls of the agent's tools that count for
	// its tool rules: those they allowed, whose prefilled arguments fit.
	Called []string `json:"called,omitempty"`
}

// DeferredCall is a committed call of a custom tool, with the tool as it
// was when called and the id its result takes.
type DeferredCall struct {
	Call     schema.ToolCall `json:"call"`
	ResultID string          `json:"result_id"`
	Tool     schema.Tool     `json:"tool"`
	// Env is the agent's tool environment when the call was made.
	Env map[string]string `json:"env,omitempty"`
	// Prelude is tool.CodePrelude when the call was made.
	Prelude string `json:"prelude,omitempty"`
}

// Step commits one model response of a run in progress: the assistant
// message, then the result of each tool call the server runs (run now, in
// this transaction), and the run's usage; if the turn stops here, it
// closes the run.
func Step(call *actor.Call, a *schema.Agent, p StepPayload) ([]byte, error) {
	txn := call.Txn
	run, err := activeRun(txn, a.ID, p.RunID)
	if err != nil {
		return nil, err
	}
	last, err := lastSeqFrom(txn, a.ID, run.LastSeq)
	if err != nil {
		return nil, err
	}
	asst := p.Message
	// The calls are changed below; the payload is the same for every
	// attempt (actor.WithLocal).
	asst.ToolCalls = slices.Clone(asst.ToolCalls)
	asst.AgentID, asst.Seq, asst.Role, asst.RunID = a.ID, last+1, schema.RoleAssistant, run.ID
	asst.ConversationID, asst.CreatedAt, asst.Input = run.ConversationID, call.Now, false
	if len(asst.ToolCalls) > len(p.ResultIDs) {
		return nil, fmt.Errorf("step of run %s: %d tool calls but %d result ids", run.ID, len(asst.ToolCalls), len(p.ResultIDs))
	}
	tools, err := stepTools(txn, a, &asst)
	if err != nil {
		return nil, err
	}
	var deferred []DeferredCall
	var called []string
	rules := p.Rules.solver(a)
	for i := range asst.ToolCalls {
		tc := &asst.ToolCalls[i]
		t := tool.Find(tools, tc.Name)
		// The call is stored, approved and run with the rules' prefilled
		// arguments, as Letta stores it.
		merged, badArgs := p.Rules.prefill(a, tools, tc)
		if merged != "" {
			tc.Arguments = merged
		}
		if !tc.Client && p.Rules.allows(tc.Name) && badArgs == "" {
			called = append(called, tc.Name)
		}
		if badArgs != "" {
			continue // answered with the error by runTools
		}
		if !tc.Client && t != nil && rules.NeedsApproval(tc.Name) {
			tc.Approval = true
			continue
		}
		if !tc.Client && t != nil && t.Deferred() && p.Rules.allows(tc.Name) {
			tc.Deferred = true
			deferred = append(deferred, DeferredCall{Call: *tc, ResultID: p.ResultIDs[i], Tool: t.Stored(), Env: a.ToolEnv, Prelude: tool.CodePrelude(t, tools)})
		}
	}
	if err := schema.AppendMessage(txn, &asst); err != nil {
		return nil, err
	}
	out, err := runTools(call, a, tools, &asst, p)
	if err != nil {
		return nil, err
	}
	if len(asst.ToolCalls) > 0 {
		if err := refreshAfterTools(call, a, run.ConversationID); err != nil {
			return nil, err
		}
	}
	stop := ""
	if len(deferred) == 0 {
		var uncalled []string
		stop, uncalled = stopAfter(a, tools, &asst, out, p.ModelStop, p.LastStep, p.Rules)
		if len(uncalled) > 0 && len(asst.ToolCalls) == 0 {
			m := uncalledReminder(&asst, uncalled, a.Timezone, call.Now)
			m.Seq = out[len(out)-1].Seq + 1
			if err := schema.AppendMessage(txn, m); err != nil {
				return nil, err
			}
			out = append(out, m)
		}
	}
	run.Usage.PromptTokens += p.Usage.PromptTokens
	run.Usage.CompletionTokens += p.Usage.CompletionTokens
	run.Usage.Steps++
	run.Usage.ContextTokens = p.Usage.ContextTokens
	if err := closeStep(call, a, run, out, stop); err != nil {
		return nil, err
	}
	if err := schema.PutStep(txn, stepRecord(call, a, run, &asst, p)); err != nil {
		return nil, err
	}
	// A deferred call holds the agent's tool environment and tool records.
	return reply(call, &stepResult{Messages: out, StopReason: stop, Deferred: deferred, Called: called}, len(deferred) == 0)
}

// lastSeqFrom is schema.LastSeq of an agent whose message known is
// stored: an agent's messages are never removed but with it, so the last is
// known unless messages follow it. Those are scanned for (forward, in a
// range that ends the history: less work for the engine than a reverse
// scan of it all), and a commit that adds one still conflicts. A run's
// last message is such a one, and mostly the agent's last: the turn's own
// commits extend its run.
func lastSeqFrom(txn kv.Txn, agentID string, known uint64) (uint64, error) {
	r := kv.PrefixRange(schema.MessagesOf(agentID))
	r.Start = schema.MessageKey(agentID, known+1)
	after, err := txn.Scan(r, 1, false)
	if err != nil || len(after) == 0 {
		return known, err
	}
	return schema.LastSeq(txn, agentID)
}

// stepTools returns the tools a step of agent a answering with asst uses:
// those offered to the agent when asst calls one, or when a's tool rules
// may require one before the turn ends; none otherwise (most final
// answers), which spares reading the agent's custom tools.
func stepTools(txn kv.Txn, a *schema.Agent, asst *schema.Message) ([]*tool.Tool, error) {
	if len(asst.ToolCalls) == 0 && len(a.ToolRules) == 0 {
		return nil, nil
	}
	custom, err := schema.AgentCustomTools(txn, a.ID)
	if err != nil {
		return nil, err
	}
	return tool.Offered(a, custom), nil
}

// closeStep records the step's last message in its run, and closes the
// run if the turn stops here.
func closeStep(call *actor.Call, a *schema.Agent, run *schema.Run, out []*schema.Message, stop string) error {
	if len(out) > 0 {
		run.LastSeq = max(run.LastSeq, out[len(out)-1].Seq)
	}
	if stop != "" {
		return finishRun(call, a, run, stop, "")
	}
	return schema.PutRun(call.Txn, run)
}

// refreshAfterTools recompiles, if a tool changed the agent's memory, the
// system message of the default conversation (as Letta does after a memory
// tool) and of the turn's conversation (so that the agent's next step sees
// its own edit), and commits the blocks to the agent's memory repository
// if it keeps one, in the step's transaction.
func refreshAfterTools(call *actor.Call, a *schema.Agent, convID string) error {
	owners := []window.Owner{{Agent: a}}
	if convID != "" {
		conv, err := schema.GetAgentConversation(call.Txn, a.ID, convID)
		if err != nil {
			return err
		}
		owners = append(owners, window.Owner{Agent: a, Conv: conv})
	}
	for _, o := range owners {
		if o.Context().SystemID == "" {
			continue // stored by the context's next turn
		}
		if _, _, err := window.Refresh(call.Txn, o, call.Now, window.IfChanged, false); err != nil {
			return err
		}
	}
	// The agent is the author of its memory edits' commit.
	_, err := memfs.SyncAgent(call.Txn, a, nil, call.Now, "Update memory with the agent's tools")
	return err
}

// runTools runs the calls of asst that the server runs and stores their
// results after it; it returns asst and the results.
func runTools(call *actor.Call, a *schema.Agent, tools []*tool.Tool, asst *schema.Message, p StepPayload) ([]*schema.Message, error) {
	out := []*schema.Message{asst}
	next := asst.Seq + 1
	resultIDs := p.ResultIDs
	env := &tool.Env{Txn: call.Txn, Agent: a, Tools: tools, Now: call.Now, Embedded: p.Embeddings, NoVector: p.NoVector}
	for i, tc := range asst.ToolCalls {
		if tc.Client || tc.Deferred || tc.Approval {
			continue // the client runs it, the sandbox runs it after the commit, or it waits for approval
		}
		text, refused := p.Rules.refusal(a, tools, &tc)
		ok := false
		if !refused && !tc.Client {
			env.NewID = func(prefix string) string { return letta.DerivedID(prefix, asst.ID, tc.ID) }
			var err error
			if text, ok, err = tool.Run(env, tc); err != nil {
				return nil, fmt.Errorf("tool %s: %w", tc.Name, err)
			}
		}
		status := tool.Status(ok)
		m := toolResult(asst, tc, resultIDs[i], text, status, call.Now)
		m.Seq, next = next, next+1
		if err := schema.AppendMessage(call.Txn, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// EndPayload is the payload of OpEnd.
type EndPayload struct {
	RunID      string `json:"run_id"`
	StopReason string `json:"stop_reason"`
	Error      string `json:"error,omitempty"`
}

// End closes a run that stopped without a final step, if it is still open.
func End(call *actor.Call, a *schema.Agent, p EndPayload) ([]byte, error) {
	run, err := schema.GetRun(call.Txn, p.RunID)
	if err != nil {
		return nil, err
	}
	if run.AgentID != a.ID {
		return nil, letta.Conflictf("run %s belongs to another agent", p.RunID)
	}
	if !run.Finished() {
		if err := finishRun(call, a, run, p.StopReason, p.Error); err != nil {
			return nil, err
		}
	}
	return reply(call, run, true)
}

// runStatusFor is the status of a run that stopped for reason.
func runStatusFor(reason string) string {
	switch reason {
	case letta.StopEndTurn, letta.StopMaxSteps, letta.StopRequiresApproval, letta.StopMaxTokensExceeded, letta.StopToolRule:
		return letta.RunCompleted
	case letta.StopCancelled:
		return letta.RunCancelled
	}
	return letta.RunFailed
}

// finishRun records that a run stopped for reason: it is no longer the
// agent's turn in progress, and the agent remembers why it stopped.
func finishRun(call *actor.Call, a *schema.Agent, run *schema.Run, reason, errText string) error {
	now := call.Now
	run.Status, run.StopReason, run.CompletedAt, run.Error = runStatusFor(reason), reason, &now, errText
	if err := schema.PutRun(call.Txn, run); err != nil {
		return err
	}
	v, err := call.Txn.Get(schema.ActiveRunKey(a.ID))
	switch {
	case err == nil && string(v) == run.ID:
		if err := call.Txn.Delete(schema.ActiveRunKey(a.ID)); err != nil {
			return err
		}
	case err != nil && !errors.Is(err, kv.ErrNotFound):
		return err
	}
	a.LastStopReason, a.LastRunCompletion = &reason, &now
	a.LastRunDurationMS = new(now.Sub(run.CreatedAt).Milliseconds())
	call.SetState(a)
	return nil
}

// activeRun returns the run a step is for, which must be in progress.
func activeRun(txn kv.Txn, agentID, runID string) (*schema.Run, error) {
	v, err := txn.Get(schema.ActiveRunKey(agentID))
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	if string(v) != runID {
		return nil, letta.Conflictf("run %s is no longer in progress", runID)
	}
	run, err := schema.GetRun(txn, runID)
	if err != nil {
		return nil, err
	}
	if run.AgentID != agentID {
		return nil, letta.Conflictf("run %s belongs to another agent", runID)
	}
	return run, nil
}

// stepRecord is the stored record of a step: its model, usage and timing.
func stepRecord(call *actor.Call, a *schema.Agent, run *schema.Run, asst *schema.Message, p StepPayload) *schema.Step {
	c := a.LLMConfig
	if p.Timing.Model != "" && p.Timing.Model != c.Model {
		c = letta.LLMConfig{Model: p.Timing.Model} // an override_model's
	}
	return &schema.Step{
		ID: asst.StepID, RunID: run.ID, AgentID: a.ID, Seq: asst.Seq,
		Model: c.Model, Handle: deref(c.Handle), EndpointType: c.ModelEndpointType, Endpoint: deref(c.ModelEndpoint), ContextWindow: c.ContextWindow,
		PromptTokens: p.Usage.PromptTokens, CompletionTokens: p.Usage.CompletionTokens, StopReason: p.ModelStop,
		StartedAt: p.Timing.Start, LLMStart: p.Timing.LLMStart, LLMNanos: p.Timing.LLMNanos, CommittedAt: call.Now,
	}
}
