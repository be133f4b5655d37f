package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// Operations of the agent actor for turns, conversations and archival
// memory. A turn is several invocations: turn_begin commits the inputs,
// each turn_step commits one model response with its tool calls, their
// results and their memory edits, and turn_end closes a run that stopped
// without a final step (a model error, a cancellation).
const (
	opTurnBegin          = "turn_begin"
	opTurnStep           = "turn_step"
	opTurnEnd            = "turn_end"
	opCreateConversation = "create_conversation"
	opUpdateConversation = "update_conversation"
	opInsertPassage      = "insert_passage"
	opDeletePassage      = "delete_passage"
)

// invokeTurnOp runs the operations of this file; ok is false for any
// other operation.
func (b agentBehavior) invokeTurnOp(call *actor.Call, rec *agentRecord) (data []byte, ok bool, err error) {
	decode := func(v any) error { return json.Unmarshal(call.Payload, v) }
	switch call.Op {
	case opTurnBegin:
		var p beginPayload
		if err = decode(&p); err == nil {
			data, err = turnBegin(call, rec, p)
		}
	case opTurnStep:
		var p stepPayload
		if err = decode(&p); err == nil {
			data, err = turnStep(call, rec, p)
		}
	case opTurnEnd:
		var p endPayload
		if err = decode(&p); err == nil {
			data, err = turnEnd(call, rec, p)
		}
	case opCreateConversation, opUpdateConversation:
		var p conversationPayload
		if err = decode(&p); err == nil {
			if call.Op == opCreateConversation {
				data, err = createConversation(call, rec, p)
			} else {
				data, err = updateConversation(call, rec, p)
			}
		}
	case opInsertPassage:
		var p passagePayload
		if err = decode(&p); err == nil {
			var pr *passageRecord
			if pr, err = insertPassage(call, rec.ID, p); err == nil {
				data, err = marshal(pr.render())
			}
		}
	case opDeletePassage:
		var p passagePayload
		if err = decode(&p); err == nil {
			err = deletePassage(call, rec.ID, p.ID)
		}
	default:
		return nil, false, nil
	}
	return data, true, err
}

// ---- turn_begin ------------------------------------------------------------------

type beginPayload struct {
	RunID          string          `json:"run_id"`
	ConversationID string          `json:"conversation_id,omitempty"`
	Keys           []string        `json:"keys,omitempty"`
	Inputs         []messageRecord `json:"inputs,omitempty"`
	Approvals      []approvalInput `json:"approvals,omitempty"`
	Background     bool            `json:"background,omitempty"`
}

// approvalInput answers one tool call waiting for the client.
type approvalInput struct {
	ToolCallID string  `json:"tool_call_id"`
	ResultID   string  `json:"result_id"`
	ToolReturn *string `json:"tool_return,omitempty"` // a client tool's result
	Status     string  `json:"status,omitempty"`
	Approve    *bool   `json:"approve,omitempty"` // an approval decision
	Reason     string  `json:"reason,omitempty"`
}

type beginResult struct {
	// Duplicate is the earlier run's response when one of the keys was
	// already answered; nothing else was done then.
	Duplicate *duplicateRun `json:"duplicate,omitempty"`
	Run       runRecord     `json:"run"`
	// Appended are the results of the approval reply (the inputs are not
	// part of the response).
	Appended []*messageRecord `json:"appended"`
}

type duplicateRun struct {
	Run      runRecord        `json:"run"`
	Messages []*messageRecord `json:"messages"`
}

// interruptedError is the error recorded on a run that never finished.
const interruptedError = "the turn was interrupted before it finished (the server stopped or a write failed); its history was closed where it stopped"

func turnBegin(call *actor.Call, rec *agentRecord, p beginPayload) ([]byte, error) {
	txn := call.Txn
	if p.ConversationID != "" {
		c, err := readConversation(txn, p.ConversationID)
		if err != nil {
			return nil, err
		}
		if c.AgentID != rec.ID {
			return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("Conversation %s not found", p.ConversationID)}
		}
	}
	next, err := lastSeq(txn, rec.ID)
	if err != nil {
		return nil, err
	}
	next++
	if err := closeInterruptedRun(call, rec); err != nil {
		return nil, err
	}
	asst, missing, err := unansweredCalls(txn, rec.ID)
	if err != nil {
		return nil, err
	}
	// A tool call the server runs has its result committed with it; one
	// without a result was cut off (a crash between the call and its
	// result). Close it with an error result, so the history never holds
	// a call without an answer.
	var pending []storedToolCall
	for _, tc := range missing {
		if tc.Client {
			pending = append(pending, tc)
			continue
		}
		m := toolResult(asst, tc, derivedID("message", "repair", asst.ID, tc.ID), "Error: the tool call was interrupted before it returned; its outcome is unknown.", "error", call.Now)
		m.Seq, next = next, next+1
		if err := appendMessage(txn, m); err != nil {
			return nil, err
		}
		if err := extendRun(txn, asst.RunID, m.Seq); err != nil {
			return nil, err
		}
	}

	for _, k := range p.Keys {
		v, err := txn.Get(turnKey(rec.ID, k))
		if errors.Is(err, kv.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		run, err := readRun(txn, string(v))
		if err != nil {
			return nil, err
		}
		ms, err := runMessageRecords(txn, run)
		if err != nil {
			return nil, err
		}
		return marshal(beginResult{Duplicate: &duplicateRun{Run: *run, Messages: ms}})
	}

	if len(p.Approvals) == 0 && len(pending) > 0 {
		return nil, conflictf("Cannot send a new message: the agent is waiting for the result of tool call %s (%s). Send an approval reply with its result first.", pending[0].ID, pending[0].Name)
	}
	if len(p.Approvals) > 0 && len(pending) == 0 {
		return nil, invalidf("no tool call is waiting for approval or a result")
	}

	run := &runRecord{
		ID: p.RunID, AgentID: rec.ID, ConversationID: p.ConversationID, Status: RunRunning,
		Background: p.Background, CreatedAt: call.Now, FirstSeq: next,
	}
	var appended []*messageRecord
	if len(pending) > 0 {
		answers := map[string]approvalInput{}
		var all *approvalInput // the older form: one answer for every call
		for _, a := range p.Approvals {
			if a.ToolCallID == "" {
				all = &a
				continue
			}
			if !containsCall(pending, a.ToolCallID) {
				return nil, invalidf("tool call %s is not waiting for approval or a result", clip(a.ToolCallID))
			}
			answers[a.ToolCallID] = a
		}
		for _, tc := range pending {
			a, ok := answers[tc.ID]
			if !ok && all != nil {
				a, ok = *all, true
				a.ResultID = derivedID("message", "approval", all.ResultID, tc.ID)
			}
			text, status := approvalResult(tc, a, ok)
			id := a.ResultID
			if id == "" {
				id = derivedID("message", "unanswered", run.ID, tc.ID)
			}
			m := toolResult(asst, tc, id, text, status, call.Now)
			m.RunID, m.ConversationID, m.StepID = run.ID, p.ConversationID, ""
			m.Seq, next = next, next+1
			if err := appendMessage(txn, m); err != nil {
				return nil, err
			}
			appended = append(appended, m)
		}
	}
	for i := range p.Inputs {
		m := &p.Inputs[i]
		m.AgentID, m.Seq, m.RunID, m.ConversationID, m.CreatedAt, m.Input = rec.ID, next, run.ID, p.ConversationID, call.Now, true
		next++
		if err := appendMessage(txn, m); err != nil {
			return nil, err
		}
	}
	run.LastSeq = next - 1
	for _, k := range p.Keys {
		if err := txn.Set(turnKey(rec.ID, k), []byte(run.ID)); err != nil {
			return nil, err
		}
	}
	if err := writeRun(txn, run); err != nil {
		return nil, err
	}
	for _, k := range [][]byte{indexKey(runIndexPrefix, run.CreatedAt, run.ID), agentRunKey(rec.ID, run.ID)} {
		if err := txn.Set(k, nil); err != nil {
			return nil, err
		}
	}
	if err := txn.Set(activeRunKey(rec.ID), []byte(run.ID)); err != nil {
		return nil, err
	}
	if p.ConversationID != "" {
		c, err := readConversation(txn, p.ConversationID)
		if err != nil {
			return nil, err
		}
		c.LastRunID, c.UpdatedAt = run.ID, call.Now
		if err := writeConversation(txn, c); err != nil {
			return nil, err
		}
	}
	return marshal(beginResult{Run: *run, Appended: appended})
}

func containsCall(calls []storedToolCall, id string) bool {
	for _, c := range calls {
		if c.ID == id {
			return true
		}
	}
	return false
}

// approvalResult is the tool result an approval reply gives a waiting call.
func approvalResult(tc storedToolCall, a approvalInput, answered bool) (text, status string) {
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
func toolResult(asst *messageRecord, tc storedToolCall, id, text, status string, now time.Time) *messageRecord {
	return &messageRecord{
		ID: id, AgentID: asst.AgentID, Role: roleTool, Text: text,
		ToolCallID: tc.ID, ToolName: tc.Name, ToolStatus: status,
		RunID: asst.RunID, StepID: asst.StepID, ConversationID: asst.ConversationID, CreatedAt: now,
	}
}

// maxTailScan bounds how far back unansweredCalls looks.
const maxTailScan = 1000

// unansweredCalls finds the last assistant message with tool calls and
// those of its calls no tool message answers yet. Results follow their call
// directly (a step commits both), so only the end of the history is read.
func unansweredCalls(txn kv.Txn, agentID string) (*messageRecord, []storedToolCall, error) {
	answered := map[string]bool{}
	var asst *messageRecord
	n := 0
	err := scanEach(txn, kv.PrefixRange(msgPrefix(agentID)), true, func(key []byte) (bool, error) {
		if n++; n > maxTailScan {
			return false, nil
		}
		data, err := txn.Get(key)
		if err != nil {
			return false, err
		}
		m, err := decodeMessage(data)
		if err != nil {
			return false, err
		}
		switch {
		case m.Role == roleTool:
			answered[m.ToolCallID] = true
			return true, nil
		case m.Role == roleAssistant && len(m.ToolCalls) > 0:
			asst = m
		}
		return false, nil
	})
	if err != nil || asst == nil {
		return nil, nil, err
	}
	var missing []storedToolCall
	for _, tc := range asst.ToolCalls {
		if !answered[tc.ID] {
			missing = append(missing, tc)
		}
	}
	return asst, missing, nil
}

// extendRun makes a run's message range include seq.
func extendRun(txn kv.Txn, runID string, seq uint64) error {
	if runID == "" {
		return nil
	}
	run, err := readRun(txn, runID)
	if KindOf(err) == KindNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	run.LastSeq = max(run.LastSeq, seq)
	return writeRun(txn, run)
}

// closeInterruptedRun finishes a run that was in progress when its turn
// stopped without closing it.
func closeInterruptedRun(call *actor.Call, rec *agentRecord) error {
	v, err := call.Txn.Get(activeRunKey(rec.ID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	run, err := readRun(call.Txn, string(v))
	if KindOf(err) == KindNotFound {
		return call.Txn.Delete(activeRunKey(rec.ID))
	}
	if err != nil {
		return err
	}
	return finishRun(call, rec, run, StopError, interruptedError)
}

// finishRun records that a run stopped for reason.
func finishRun(call *actor.Call, rec *agentRecord, run *runRecord, reason, errText string) error {
	now := call.Now
	run.Status, run.StopReason, run.CompletedAt, run.Error = runStatusFor(reason), reason, &now, errText
	if err := writeRun(call.Txn, run); err != nil {
		return err
	}
	if v, err := call.Txn.Get(activeRunKey(rec.ID)); err == nil && string(v) == run.ID {
		if err := call.Txn.Delete(activeRunKey(rec.ID)); err != nil {
			return err
		}
	} else if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	rec.LastStopReason = &reason
	call.SetState(rec)
	return nil
}

// activeRun returns the run a step or end is for, which must be in
// progress.
func activeRun(txn kv.Txn, agentID, runID string) (*runRecord, error) {
	v, err := txn.Get(activeRunKey(agentID))
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	if string(v) != runID {
		return nil, conflictf("run %s is no longer in progress", runID)
	}
	run, err := readRun(txn, runID)
	if err != nil {
		return nil, err
	}
	if run.AgentID != agentID {
		return nil, conflictf("run %s belongs to another agent", runID)
	}
	return run, nil
}

// ---- turn_step ------------------------------------------------------------------

type stepPayload struct {
	RunID string `json:"run_id"`
	// Message is the model's response as an assistant message; its id and
	// step id are chosen by the caller.
	Message   messageRecord `json:"message"`
	ResultIDs []string      `json:"result_ids"`
	Usage     usageRecord   `json:"usage"`
	// ModelStop is why the model stopped (llm.StopReason).
	ModelStop string `json:"model_stop"`
	// LastStep says the turn may not take another step.
	LastStep bool `json:"last_step"`
}

type stepResult struct {
	// Messages are the committed messages: the assistant message, then
	// the results of the tools the server ran.
	Messages []*messageRecord `json:"messages"`
	// StopReason is why the turn stops after this step; empty to go on.
	StopReason string    `json:"stop_reason,omitempty"`
	Run        runRecord `json:"run"`
}

func turnStep(call *actor.Call, rec *agentRecord, p stepPayload) ([]byte, error) {
	txn := call.Txn
	run, err := activeRun(txn, rec.ID, p.RunID)
	if err != nil {
		return nil, err
	}
	next, err := lastSeq(txn, rec.ID)
	if err != nil {
		return nil, err
	}
	next++
	asst := p.Message
	asst.AgentID, asst.Seq, asst.Role, asst.RunID = rec.ID, next, roleAssistant, run.ID
	asst.ConversationID, asst.CreatedAt, asst.Input = run.ConversationID, call.Now, false
	next++
	if len(asst.ToolCalls) > len(p.ResultIDs) {
		return nil, fmt.Errorf("step of run %s: %d tool calls but %d result ids", run.ID, len(asst.ToolCalls), len(p.ResultIDs))
	}
	if err := appendMessage(txn, &asst); err != nil {
		return nil, err
	}
	out := []*messageRecord{&asst}
	env := toolCallEnv{call: call, rec: rec}
	var clientCalls, sentMessage bool
	for i, tc := range asst.ToolCalls {
		if tc.Client {
			clientCalls = true
			continue
		}
		env.newID = func(prefix string) (string, error) { return derivedID(prefix, asst.ID, tc.ID), nil }
		text, ok, err := runBuiltin(env, tc)
		if err != nil {
			return nil, fmt.Errorf("tool %s: %w", tc.Name, err)
		}
		status := "success"
		if !ok {
			status = "error"
		}
		sentMessage = sentMessage || ok && tc.Name == toolSendMessage
		m := toolResult(&asst, tc, p.ResultIDs[i], text, status, call.Now)
		m.Seq, next = next, next+1
		if err := appendMessage(txn, m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}

	var stop string
	switch {
	case clientCalls:
		stop = StopRequiresApproval
	case p.ModelStop == "max_tokens" && len(asst.ToolCalls) == 0:
		stop = StopMaxTokensExceeded
	case len(asst.ToolCalls) == 0, sentMessage && isMemGPT(rec.AgentType):
		stop = StopEndTurn
	case p.LastStep:
		stop = StopMaxSteps
	}
	run.LastSeq = next - 1
	run.Usage.PromptTokens += p.Usage.PromptTokens
	run.Usage.CompletionTokens += p.Usage.CompletionTokens
	run.Usage.Steps++
	run.Usage.ContextTokens = p.Usage.ContextTokens
	if stop != "" {
		if err := finishRun(call, rec, run, stop, ""); err != nil {
			return nil, err
		}
	} else if err := writeRun(txn, run); err != nil {
		return nil, err
	}
	return marshal(stepResult{Messages: out, StopReason: stop, Run: *run})
}

// ---- turn_end --------------------------------------------------------------------

type endPayload struct {
	RunID      string `json:"run_id"`
	StopReason string `json:"stop_reason"`
	Error      string `json:"error,omitempty"`
}

func turnEnd(call *actor.Call, rec *agentRecord, p endPayload) ([]byte, error) {
	run, err := readRun(call.Txn, p.RunID)
	if err != nil {
		return nil, err
	}
	if run.AgentID != rec.ID {
		return nil, conflictf("run %s belongs to another agent", p.RunID)
	}
	if run.Status == RunRunning || run.Status == RunCreated {
		if err := finishRun(call, rec, run, p.StopReason, p.Error); err != nil {
			return nil, err
		}
	}
	return marshal(run)
}

// ---- deletion --------------------------------------------------------------------

// deleteAgentData deletes everything of an agent's but its record, blocks
// and attachments: messages, runs, conversations, passages.
func deleteAgentData(txn kv.Txn, agentID string) error {
	del := func(prefix []byte, also func(kv.KeyValue) error) error {
		kvs, err := txn.Scan(kv.PrefixRange(prefix), 0, false)
		if err != nil {
			return err
		}
		for _, p := range kvs {
			if also != nil {
				if err := also(p); err != nil {
					return err
				}
			}
			if err := txn.Delete(p.Key); err != nil {
				return err
			}
		}
		return nil
	}
	err := del(msgPrefix(agentID), func(p kv.KeyValue) error {
		m, err := decodeMessage(p.Value)
		if err != nil {
			return err
		}
		if m.ConversationID != "" {
			if err := txn.Delete(convMsgKey(m.ConversationID, m.Seq)); err != nil {
				return err
			}
		}
		return txn.Delete(msgIDKey(m.ID))
	})
	if err != nil {
		return err
	}
	err = del(agentConvPrefix(agentID), func(p kv.KeyValue) error { return txn.Delete(convKey(idFromIndexKey(p.Key))) })
	if err != nil {
		return err
	}
	err = del(agentRunPrefix(agentID), func(p kv.KeyValue) error {
		id := idFromIndexKey(p.Key)
		run, err := readRun(txn, id)
		if KindOf(err) == KindNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if err := txn.Delete(indexKey(runIndexPrefix, run.CreatedAt, id)); err != nil {
			return err
		}
		return txn.Delete(runKey(id))
	})
	if err != nil {
		return err
	}
	err = del(passagePrefix(agentID), func(p kv.KeyValue) error {
		return txn.Delete(passageIDKey(idFromIndexKey(p.Key)))
	})
	if err != nil {
		return err
	}
	if err := del(turnKeyPrefix(agentID), nil); err != nil {
		return err
	}
	return txn.Delete(activeRunKey(agentID))
}
