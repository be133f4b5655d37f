package loop

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// The operations a turn runs on its agent's actor, each one invocation and
// so one transaction: Begin commits the inputs; each Step commits one model
// response with its tool calls, their results and their memory edits; End
// closes a run that stopped without a final step (a model error, a
// cancellation).
const (
	OpBegin = "turn_begin"
	// OpCloseInterrupted closes a run left in progress (CloseInterrupted).
	OpCloseInterrupted = "turn_close_interrupted"
	OpStep             = "turn_step"
	OpEnd              = "turn_end"
)

// BeginPayload is the payload of OpBegin.
type BeginPayload struct {
	RunID          string           `json:"run_id"`
	ConversationID string           `json:"conversation_id,omitempty"`
	Keys           []string         `json:"keys,omitempty"`
	Inputs         []schema.Message `json:"inputs,omitempty"`
	Approvals      []Approval       `json:"approvals,omitempty"`
	Background     bool             `json:"background,omitempty"`
	// Embeddings are those of the texts of the approved calls
	// (tool.EmbeddingText), computed before this commit; NoVector says
	// why there are none.
	Embeddings map[string]*memory.Embedded `json:"embeddings,omitempty"`
	NoVector   string                      `json:"no_vector,omitempty"`
}

// beginResult is what OpBegin answers.
type beginResult struct {
	// Duplicate is the earlier run's response when one of the keys was
	// already answered; nothing else was done then.
	Duplicate *duplicateRun `json:"duplicate,omitempty"`
	Run       schema.Run    `json:"run"`
	// Appended are the results of the approval reply (the inputs are not
	// part of the response).
	Appended []*schema.Message `json:"appended"`
	// Approved are the approved calls of custom tools, now deferred: the
	// turn runs them first, as calls of assistant message AssistantID.
	Approved    []DeferredCall `json:"approved,omitempty"`
	AssistantID string         `json:"assistant_id,omitempty"`
	// Called are the tools of the approved calls, built-in and custom,
	// in call order: they count as called by the turn for its tool rules.
	Called []string `json:"called,omitempty"`
	// stored are the messages Begin appended, for the history cache.
	stored []*schema.Message
}

type duplicateRun struct {
	Run      schema.Run        `json:"run"`
	Messages []*schema.Message `json:"messages"`
}

// Begin starts a run: it closes the agent's interrupted run and answers
// its interrupted tool calls, answers a repeated request with its first
// run, and otherwise commits the inputs (or the approval reply) and the
// new run as the agent's turn in progress.
//
// For a turn of this manager that holds no approval reply, it also reads
// the context the turn's first request is made of, as its commit leaves
// it, and hands it to the turn in process (not in its result, which would
// encode the whole history): the turn asks the model from it while the
// commit syncs (see Start). Before it writes anything, it resolves the
// model of such a turn and runs its request's Read, and it hands the turn
// a copy of the agent (see pendingBegin): the turn reads none before.
func (m *Manager) Begin(call *actor.Call, a *schema.Agent, p BeginPayload) ([]byte, error) {
	m.mu.Lock()
	pb := m.begins[p.RunID]
	m.mu.Unlock()
	if pb != nil {
		if err := m.resolveBegin(call, a, pb); err != nil {
			return nil, err
		}
	}
	res, sys, err := begin(call, a, p)
	if err != nil {
		return nil, err
	}
	m.history.keep(a.ID, res.stored)
	if pb != nil {
		// Not the actor's agent, which its next invocations change in
		// place: a copy, as this Begin leaves it.
		pb.agent = a.Clone()
	}
	if pb != nil && res.Duplicate == nil && len(p.Approvals) == 0 {
		o := window.Owner{Agent: a}
		if p.ConversationID != "" {
			if o.Conv, err = schema.GetAgentConversation(call.Txn, a.ID, p.ConversationID); err != nil {
				return nil, err
			}
		}
		in, err := m.readOwnerContext(call.Txn, o, sys)
		if err != nil {
			return nil, err
		}
		// Not the actor's agent: the turn has its own (see
		// turnRun.request).
		in.agent = nil
		pb.first = in // a retried attempt's replaces the last
	}
	return reply(call, res, len(res.Approved) == 0)
}

// reply is an operation's answer v: given in process when the caller
// takes it so (actor.Call.LocalReply) and shared says v shares nothing
// the actor keeps, otherwise encoded. The loop only reads what it is
// answered, and the payload an answer may share values with is the
// invocation's alone.
func reply(call *actor.Call, v any, shared bool) ([]byte, error) {
	if call.LocalReply && shared {
		call.Reply(v)
		return nil, nil
	}
	return schema.Encode(v)
}

// resolveBegin runs the request of the turn pb in Begin's transaction
// and resolves the agent's model, before Begin writes anything.
func (m *Manager) resolveBegin(call *actor.Call, a *schema.Agent, pb *pendingBegin) error {
	if pb.req.Read != nil {
		if err := pb.req.Read(call.Txn); err != nil {
			return err
		}
	}
	var err error
	pb.provider, pb.model, err = m.modelFor(a, pb.req)
	return err
}

// begin is Begin but for the context it reads; it also returns the system
// message of the turn's context, as its refresh left it (nil for a
// duplicate).
func begin(call *actor.Call, a *schema.Agent, p BeginPayload) (*beginResult, *schema.Message, error) {
	txn := call.Txn
	if p.ConversationID != "" {
		if _, err := schema.GetAgentConversation(txn, a.ID, p.ConversationID); err != nil {
			return nil, nil, err
		}
	}
	if err := closeInterruptedRun(call, a); err != nil {
		return nil, nil, err
	}
	b := &beginning{call: call, agent: a, p: p}
	if err := b.repair(); err != nil {
		return nil, nil, err
	}
	if dup, err := duplicateOf(txn, a.ID, p.Keys); dup != nil || err != nil {
		if err != nil {
			return nil, nil, err
		}
		return &beginResult{Duplicate: dup}, nil, nil
	}
	if len(p.Approvals) == 0 && len(b.pending) > 0 {
		return nil, nil, letta.Conflictf("Cannot send a new message: the agent is waiting for the result of tool call %s (%s). Send an approval reply with its result first.", b.pending[0].ID, b.pending[0].Name)
	}
	if len(p.Approvals) > 0 && len(b.pending) == 0 {
		return nil, nil, letta.Invalidf("no tool call is waiting for approval or a result")
	}
	b.run = &schema.Run{
		ID: p.RunID, AgentID: a.ID, ConversationID: p.ConversationID, Status: letta.RunRunning,
		Background: p.Background, CreatedAt: call.Now, FirstSeq: b.next,
	}
	if err := b.answerApprovals(); err != nil {
		return nil, nil, err
	}
	sys, err := b.refreshSystem()
	if err != nil {
		return nil, nil, err
	}
	for _, m := range p.Inputs {
		// A copy: the payload is the same for every attempt (actor.WithLocal).
		m.AgentID, m.RunID, m.ConversationID, m.CreatedAt, m.Input = a.ID, b.run.ID, p.ConversationID, call.Now, true
		if err := b.append(&m); err != nil {
			return nil, nil, err
		}
	}
	if err := b.recordRun(); err != nil {
		return nil, nil, err
	}
	res := beginResult{Run: *b.run, Appended: b.appended, Approved: b.approved, Called: b.called, stored: b.stored}
	if len(b.approved) > 0 {
		res.AssistantID = b.asst.ID
	}
	return &res, sys, nil
}

// beginning is a Begin in progress.
type beginning struct {
	call     *actor.Call
	agent    *schema.Agent
	p        BeginPayload
	next     uint64            // the next message's sequence number
	asst     *schema.Message   // the last assistant message with tool calls
	pending  []schema.ToolCall // its calls waiting for the client
	run      *schema.Run
	appended []*schema.Message
	approved []DeferredCall
	called   []string          // the tools of the approved calls
	stored   []*schema.Message // every message appended
}

// append stores m as the agent's next message.
func (b *beginning) append(m *schema.Message) error {
	m.Seq = b.next
	b.next++
	b.stored = append(b.stored, m)
	return schema.AppendMessage(b.call.Txn, m)
}

// repair answers the tool calls the server runs that were left without a
// result, and finds the calls waiting for the client. A server tool's
// result is committed with its call, so one without is a step cut off (a
// crash between the call and its result): it gets an error result, so the
// history never holds a call without an answer.
func (b *beginning) repair() error {
	txn := b.call.Txn
	t, err := readTail(txn, b.agent.ID)
	if err != nil {
		return err
	}
	b.next = t.last + 1
	asst, missing := t.asst, t.missing
	b.asst = asst
	for _, tc := range missing {
		if tc.Waiting() {
			b.pending = append(b.pending, tc)
			continue
		}
		m := toolResult(asst, tc, letta.DerivedID("message", "repair", asst.ID, tc.ID), "Error: the tool call was interrupted before it returned; its outcome is unknown.", "error", b.call.Now)
		if err := b.append(m); err != nil {
			return err
		}
		if err := extendRun(txn, asst.RunID, m.Seq); err != nil {
			return err
		}
	}
	return nil
}

// refreshSystem brings the system message of the turn's context up to
// date before the turn's inputs, and returns it: the default
// conversation's is recompiled if the agent's instructions or memory
// changed since (an edit from outside the agent's actor: a shared block);
// a conversation keeps the one it was compiled with (Letta's rule). A
// context without one gets one.
func (b *beginning) refreshSystem() (*schema.Message, error) {
	txn := b.call.Txn
	o := window.Owner{Agent: b.agent}
	when := window.IfChanged
	if id := b.p.ConversationID; id != "" {
		conv, err := schema.GetAgentConversation(txn, b.agent.ID, id)
		if err != nil {
			return nil, err
		}
		o.Conv, when = conv, window.IfMissing
	}
	sys, written, err := window.Refresh(txn, o, b.call.Now, when, false)
	if err != nil || !written {
		return sys, err
	}
	if o.Conv != nil {
		if err := schema.PutConversation(txn, o.Conv); err != nil {
			return nil, err
		}
	} else {
		b.call.SetState(b.agent)
	}
	// Rewritten in place, or appended as the agent's next message: the
	// tail repair read is not read again.
	b.next = max(b.next, sys.Seq+1)
	return sys, nil
}

// answerApprovals stores the results an approval reply gives the calls
// waiting for the client; a call it leaves unanswered gets an error result.
func (b *beginning) answerApprovals() error {
	if len(b.pending) == 0 {
		return nil
	}
	answers := map[string]Approval{}
	var all *Approval // the older form: one answer for every call
	for _, a := range b.p.Approvals {
		if a.ToolCallID == "" {
			all = &a
			continue
		}
		if !slices.ContainsFunc(b.pending, func(tc schema.ToolCall) bool { return tc.ID == a.ToolCallID }) {
			return letta.Invalidf("tool call %s is not waiting for approval or a result", letta.Clip(a.ToolCallID))
		}
		answers[a.ToolCallID] = a
	}
	for _, tc := range b.pending {
		a, ok := answers[tc.ID]
		if !ok && all != nil {
			a, ok = *all, true
			a.ResultID = letta.DerivedID("message", "approval", all.ResultID, tc.ID)
		}
		id := a.ResultID
		if id == "" {
			id = letta.DerivedID("message", "unanswered", b.run.ID, tc.ID)
		}
		if ok && tc.Approval && a.ToolReturn == nil && a.Approve != nil && *a.Approve {
			if err := b.runApproved(tc, id); err != nil {
				return err
			}
			continue
		}
		text, status := approvalResult(tc, a, ok)
		m := toolResult(b.asst, tc, id, text, status, b.call.Now)
		m.RunID, m.ConversationID, m.StepID = b.run.ID, b.p.ConversationID, ""
		if ok {
			m.Content = a.ToolReturnParts // its images, when it shows some
		}
		if err := b.append(m); err != nil {
			return err
		}
		b.appended = append(b.appended, m)
	}
	return nil
}

// runApproved runs an approved call of a server tool: a built-in one now,
// in this transaction (its result is appended), a custom one after this
// commit (it becomes Deferred and the turn runs it first).
func (b *beginning) runApproved(tc schema.ToolCall, resultID string) error {
	txn := b.call.Txn
	b.called = append(b.called, tc.Name)
	custom, err := schema.AgentCustomTools(txn, b.agent.ID)
	if err != nil {
		return err
	}
	tools := tool.Offered(b.agent, custom)
	if t := tool.Find(tools, tc.Name); t != nil && t.Deferred() {
		i := slices.IndexFunc(b.asst.ToolCalls, func(c schema.ToolCall) bool { return c.ID == tc.ID })
		b.asst.ToolCalls[i].Deferred = true
		b.approved = append(b.approved, DeferredCall{Call: b.asst.ToolCalls[i], ResultID: resultID, Tool: t.Stored(), Env: b.agent.ToolEnv, Prelude: tool.CodePrelude(t, tools)})
		return schema.AppendMessage(txn, b.asst) // rewritten in place: the call is now running
	}
	env := &tool.Env{Txn: txn, Agent: b.agent, Tools: tools, Now: b.call.Now, Embedded: b.p.Embeddings, NoVector: b.p.NoVector,
		NewID: func(prefix string) string { return letta.DerivedID(prefix, b.asst.ID, tc.ID) }}
	text, ok, err := tool.Run(env, tc)
	if err != nil {
		return fmt.Errorf("tool %s: %w", tc.Name, err)
	}
	status := tool.Status(ok)
	m := toolResult(b.asst, tc, resultID, text, status, b.call.Now)
	m.RunID, m.ConversationID, m.StepID = b.run.ID, b.p.ConversationID, ""
	if err := b.append(m); err != nil {
		return err
	}
	b.appended = append(b.appended, m)
	return nil
}

// recordRun writes the new run with its indexes and answered keys, as the
// agent's turn in progress and its conversation's latest run.
func (b *beginning) recordRun() error {
	txn, run := b.call.Txn, b.run
	run.LastSeq = b.next - 1
	for _, k := range b.p.Keys {
		if err := txn.Set(schema.TurnKey(b.agent.ID, k), []byte(run.ID)); err != nil {
			return err
		}
	}
	if err := schema.PutRun(txn, run); err != nil {
		return err
	}
	for _, k := range [][]byte{schema.IndexKey(schema.RunIndex.Prefix, run.CreatedAt, run.ID), schema.AgentRunKey(b.agent.ID, run.ID)} {
		if err := txn.Set(k, nil); err != nil {
			return err
		}
	}
	if err := txn.Set(schema.ActiveRunKey(b.agent.ID), []byte(run.ID)); err != nil {
		return err
	}
	if run.ConversationID == "" {
		return nil
	}
	c, err := schema.GetConversation(txn, run.ConversationID)
	if err != nil {
		return err
	}
	c.LastRunID, c.UpdatedAt = run.ID, b.call.Now
	return schema.PutConversation(txn, c)
}

// duplicateOf returns the run that already answered one of keys, with its
// messages, or nil.
func duplicateOf(txn kv.Txn, agentID string, keys []string) (*duplicateRun, error) {
	for _, k := range keys {
		v, err := txn.Get(schema.TurnKey(agentID, k))
		if errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		run, err := schema.GetRun(txn, string(v))
		if err != nil {
			return nil, err
		}
		ms, err := message.OfRun(txn, run)
		if err != nil {
			return nil, err
		}
		return &duplicateRun{Run: *run, Messages: ms}, nil
	}
	return nil, nil
}

// approvalResult is the tool result an approval reply gives a waiting call.
func approvalResult(tc schema.ToolCall, a Approval, answered bool) (text, status string) {
	switch {
	case !answered:
		return "Error: no result was sent for this tool call.", "error"
	case a.ToolReturn != nil:
		status := a.Status
		if status != "error" {
			status = "success"
		}
		return *a.ToolReturn, status
	case a.Approve != nil && !*a.Approve:
		text := "Error: the user denied this tool call."
		if a.Reason != "" {
			text += " Reason: " + a.Reason
		}
		return text, "error"
	}
	return fmt.Sprintf("Error: %s runs on the client, and the client approved it without sending its result.", tc.Name), "error"
}

// toolResult builds the tool message answering tc of the assistant message
// asst.
func toolResult(asst *schema.Message, tc schema.ToolCall, id, text, status string, now time.Time) *schema.Message {
	return &schema.Message{
		ID: id, AgentID: asst.AgentID, Role: schema.RoleTool, Text: text,
		ToolCallID: tc.ID, ToolName: tc.Name, ToolStatus: status,
		RunID: asst.RunID, StepID: asst.StepID, ConversationID: asst.ConversationID, CreatedAt: now,
	}
}

// maxTailScan bounds how far back readTail looks, in messages.
const maxTailScan = 1000

// tailCalls is the end of an agent's history as readTail finds it.
type tailCalls struct {
	last    uint64            // the last message's seq (0: none)
	asst    *schema.Message   // the last assistant message with tool calls
	missing []schema.ToolCall // its calls no tool message answers yet
}

// toolCallsKey is in the encoding of every message with tool calls (in a
// string it would be escaped; elsewhere, as in a content's JSON, it only
// costs a decode).
var toolCallsKey = []byte(`"tool_calls":`)

// firstTailScan is how many messages readTail reads at first: a history
// mostly ends with an answer, or a call and its result.
const firstTailScan = 2

// readTail finds the last assistant message with tool calls and those of
// its calls no tool message answers yet, and the last message's number.
// Results follow their call directly (a step commits both), so only the
// end of the history is read.
func readTail(txn kv.Txn, agentID string) (tailCalls, error) {
	var t tailCalls
	answered := map[string]bool{}
	n := 0
	err := kv.ScanEachFrom(txn, kv.PrefixRange(schema.MessagesOf(agentID)), true, firstTailScan, func(p kv.KeyValue) (bool, error) {
		if n++; n == 1 {
			seq, err := schema.SeqOf(p.Key)
			if err != nil {
				return false, err
			}
			t.last = seq
		}
		if n > maxTailScan {
			return false, nil
		}
		if h, ok := schema.ReadMessageHead(p.Value); ok && h.Role != schema.RoleTool &&
			(h.Role != schema.RoleAssistant || !bytes.Contains(p.Value, toolCallsKey)) {
			return false, nil // neither a call nor a result: not decoded
		}
		m, err := schema.DecodeMessage(p.Value)
		if err != nil {
			return false, err
		}
		switch {
		case m.Role == schema.RoleTool:
			answered[m.ToolCallID] = true
			return true, nil
		case m.Role == schema.RoleAssistant && len(m.ToolCalls) > 0:
			t.asst = m
		}
		return false, nil
	})
	if err != nil || t.asst == nil {
		return t, err
	}
	for _, tc := range t.asst.ToolCalls {
		if !answered[tc.ID] {
			t.missing = append(t.missing, tc)
		}
	}
	return t, nil
}

// Settled reports whether every tool call in the agent's history has its
// result. Only then may a message be appended that is not one of those
// results (a context's system message, a summary): a step's calls and their
// results stay adjacent.
func Settled(txn kv.Txn, agentID string) (bool, error) {
	t, err := readTail(txn, agentID)
	return len(t.missing) == 0, err
}

// extendRun makes a run's message range include seq.
func extendRun(txn kv.Txn, runID string, seq uint64) error {
	if runID == "" {
		return nil
	}
	run, err := schema.GetRun(txn, runID)
	if letta.KindOf(err) == letta.KindNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	run.LastSeq = max(run.LastSeq, seq)
	return schema.PutRun(txn, run)
}

// CloseInterrupted closes the agent's run left in progress by a turn that
// no longer runs — its node died and another took the agent over — as the
// next turn would (Manager.CloseInterrupted holds the turn lock).
func CloseInterrupted(call *actor.Call, a *schema.Agent, _ struct{}) ([]byte, error) {
	return nil, closeInterruptedRun(call, a)
}

// closeInterruptedRun finishes a run that was in progress when its turn
// stopped without closing it.
func closeInterruptedRun(call *actor.Call, a *schema.Agent) error {
	v, err := call.Txn.Get(schema.ActiveRunKey(a.ID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	run, err := schema.GetRun(call.Txn, string(v))
	if letta.KindOf(err) == letta.KindNotFound {
		return call.Txn.Delete(schema.ActiveRunKey(a.ID))
	}
	if err != nil {
		return err
	}
	return finishRun(call, a, run, letta.StopError, interruptedError)
}
