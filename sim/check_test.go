package sim

import (
	"strings"
	"testing"
)

// Spec: an operation retried with its idempotency key did what its
// attempts did. When the last attempt failed (busy, say), the earlier ones
// decide: if every one failed too (one sent to a process already dead, as
// settle finds), it did nothing; if one's outcome is unknown, it may have
// taken effect, by that attempt's bound. A native sweep reported an
// operation of two failed attempts as unknown with an effect bound of 0,
// before its call: no history could linearize it.
func TestRetriedOperationOutcome(t *testing.T) {
	c := &checker{}
	retry := func(first *opRecord, last *opRecord) *opRecord {
		first.Retries = []*opRecord{last}
		return c.logical(first)
	}
	busy := func() *opRecord { return &opRecord{Call: 150, Ret: 160, Status: 429, Out: failedOutcome} }

	dead := &opRecord{Call: 128, Ret: 140, Status: 503, Out: failedOutcome} // settled: sent after its process died
	if op := retry(dead, busy()); op.Out != failedOutcome {
		t.Errorf("failed attempts only: outcome %v, want failed", op.Out)
	}

	cut := &opRecord{Call: 128, Ret: 140, Status: 503, Out: unknownOutcome, EffectBy: 139}
	if op := retry(cut, busy()); op.Out != unknownOutcome || op.EffectBy != 139 {
		t.Errorf("an unknown attempt, then a failed one: %v by %d, want unknown by 139", op.Out, op.EffectBy)
	}

	open := &opRecord{Call: 128, Ret: 140, Status: 503, Out: unknownOutcome, EffectBy: never}
	later := &opRecord{Call: 150, Ret: 160, Status: 503, Out: unknownOutcome, EffectBy: 155}
	if op := retry(open, later); op.Out != unknownOutcome || op.EffectBy != never {
		t.Errorf("two unknown attempts: %v by %d, want unknown at any time", op.Out, op.EffectBy)
	}

	gone := &opRecord{Call: 128, Ret: 140, Status: 503, Out: unknownOutcome, EffectBy: never}
	if op := retry(gone, &opRecord{Call: 150, Ret: 160, Status: 404, Out: failedOutcome}); op.Out != failedOutcome {
		t.Errorf("a retry answered 404: outcome %v, want failed", op.Out)
	}
}

// Spec: a message refused because its conversation was busy is right only
// if another send to that conversation was in flight when it was refused,
// or had been cut off before (its turn goes on without its client).
func TestBusyNeedsAnotherSend(t *testing.T) {
	const path = "/v1/conversations/conv-1/messages"
	busy := func() *opRecord {
		return &opRecord{ID: 9, Call: 100, Ret: 110, Status: 409, Out: failedOutcome, request: request{Method: "POST", Path: path},
			Detail: "CONFLICT: Cannot send a new message: Another request (run_id=run-1) is currently being processed for this conversation. Please wait for it to complete."}
	}
	send := func(call, ret int64, out outcome, p string) *opRecord {
		return &opRecord{ID: 1, Call: call, Ret: ret, Status: 200, Out: out, request: request{Method: "POST", Path: p}}
	}
	for _, c := range []struct {
		name  string
		other *opRecord
		ok    bool
	}{
		{"in flight across it", send(90, 120, okOutcome, path), true},
		{"answered before it began", send(80, 95, okOutcome, path), false},
		{"cut off before it began", send(80, 95, unknownOutcome, path), true},
		{"begun after it answered", send(115, 130, okOutcome, path), false},
		{"to another conversation", send(90, 120, okOutcome, "/v1/conversations/conv-2/messages"), false},
	} {
		ck := &checker{ops: []*opRecord{c.other, busy()}, per: map[string]int{}}
		ck.checkBusy()
		if got := len(ck.out) == 0; got != c.ok {
			t.Errorf("another send %s: accepted %v, want %v (%v)", c.name, got, c.ok, ck.out)
		}
	}
}

// Spec: checkTools holds the histories to the sandbox's ledger and to the
// MCP server's: a note (a key) run
// twice, a successful result for a note never run, and a result that is
// not what the run gave are violations; a result cut to the tool's limit,
// and an interrupted call's error, are not.
func TestToolsHeldToTheLedger(t *testing.T) {
	call := func(id, note string) msgJSON {
		return msgJSON{MessageType: mtToolCall, ToolCall: &toolCallJSON{Name: simNoteTool, ToolCallID: id, Arguments: `{"note":"` + note + `"}`}}
	}
	result := func(id, status, text string) msgJSON {
		return msgJSON{ID: "message-r-" + id, MessageType: mtToolReturn, ToolCallID: id, Status: status, ToolReturn: text}
	}
	for _, c := range []struct {
		name    string
		runs    map[string]int
		results map[string]string
		hist    []msgJSON
		want    string // the checker that must object, or ""
	}{
		{"its one run's result", map[string]int{"llm-1": 1}, map[string]string{"llm-1": "noted llm-1"},
			[]msgJSON{call("c1", "llm-1"), result("c1", "success", "noted llm-1")}, ""},
		{"cut to the limit", map[string]int{"llm-1": 1}, map[string]string{"llm-1": "noted llm-1 xxxxxxxx"},
			[]msgJSON{call("c1", "llm-1"), result("c1", "success", "noted llm-1 xx... [NOTE: function output was truncated since it exceeded the character limit (20 > 14)]")}, ""},
		{"interrupted, never run", nil, nil,
			[]msgJSON{call("c1", "llm-1"), result("c1", "error", "Error: "+repairedResult+"; its outcome is unknown.")}, ""},
		{"run twice", map[string]int{"llm-1": 2}, map[string]string{"llm-1": "noted llm-1"},
			[]msgJSON{call("c1", "llm-1"), result("c1", "success", "noted llm-1")}, "tool-at-most-once"},
		{"success never run", nil, nil,
			[]msgJSON{call("c1", "llm-1"), result("c1", "success", "noted llm-1")}, "tool-result"},
		{"another result", map[string]int{"llm-1": 1}, map[string]string{"llm-1": "Error: the tool exited with status 1"},
			[]msgJSON{call("c1", "llm-1"), result("c1", "success", "noted llm-1")}, "tool-result"},
		{"one id for two calls", map[string]int{"llm-1": 1}, map[string]string{"llm-1": "noted llm-1"},
			[]msgJSON{call("c1", "llm-1"), {MessageType: mtToolCall, ToolCall: &toolCallJSON{Name: "memory_insert", ToolCallID: "c1"}},
				result("c1", "success", "Memory block updated")}, ""},
	} {
		// The same history held to the sandbox's ledger, and (its calls
		// made of the MCP server's tool) to the MCP server's.
		sandbox := &system{tools: &simTools{ledger: ledger{runs: c.runs, results: c.results}}, mcp: newLedger()}
		server := &system{tools: &simTools{ledger: newLedger()}, mcp: ledger{runs: c.runs, results: c.results}}
		var mcpHist []msgJSON
		for _, m := range c.hist {
			if m.ToolCall != nil && m.ToolCall.Name == simNoteTool {
				tc := *m.ToolCall
				tc.Name, tc.Arguments = simMCPTool, strings.Replace(tc.Arguments, `"note"`, `"key"`, 1)
				m.ToolCall = &tc
			}
			mcpHist = append(mcpHist, m)
		}
		for _, run := range []struct {
			s    *system
			hist []msgJSON
		}{{sandbox, c.hist}, {server, mcpHist}} {
			ck := &checker{sys: run.s, per: map[string]int{}, checked: map[string]int{},
				msg: &msgState{audit: &audit{agents: map[string]*agentAudit{"agent-1": {status: 200, hist: run.hist}}}}}
			ck.checkTools()
			got := ""
			if len(ck.out) > 0 {
				got = ck.out[0].Checker
			}
			if got != c.want {
				t.Errorf("%s: violations %v, want one of %q", c.name, ck.out, c.want)
			}
		}
	}
}

// Spec: a compaction refused because its context changed needs a reset of
// its agent in flight; a call refused because tool calls wait for results
// needs a turn of its agent in flight, or one cut short before it.
func TestRefusalsNeedACause(t *testing.T) {
	refused := func(detail string) *opRecord {
		return &opRecord{ID: 9, Call: 100, Ret: 110, Status: 409, Out: failedOutcome, Kind: compactOp{}, request: request{Agent: "agent-1"}, Detail: detail}
	}
	changed := refused("the context changed while it was being summarised; try again")
	pending := refused("the agent is waiting for the results of its tool calls: send them (an approval reply) first")
	reset := func(call, ret int64) *opRecord {
		return &opRecord{ID: 1, Call: call, Ret: ret, Status: 200, Out: okOutcome, Kind: resetMessagesOp{}, request: request{Agent: "agent-1"}}
	}
	turn := func(call, ret int64, stop string) *opRecord {
		return &opRecord{ID: 2, Call: call, Ret: ret, Status: 200, Out: okOutcome, Kind: sendMessageOp{}, request: request{Agent: "agent-1"}, ErrKind: stop}
	}
	for _, c := range []struct {
		name         string
		refused, why *opRecord
		ok           bool
	}{
		{"reset in flight", changed, reset(90, 120), true},
		{"reset long before", changed, reset(10, 20), false},
		{"turn in flight", pending, turn(90, 120, ""), true},
		{"turn stopped by an error before", pending, turn(10, 20, "error"), true},
		{"clean turn before", pending, turn(10, 20, ""), false},
		{"turn after", pending, turn(120, 130, "error"), false},
	} {
		ck := &checker{ops: []*opRecord{c.why, c.refused}, per: map[string]int{}}
		ck.checkBusy()
		if got := len(ck.out) == 0; got != c.ok {
			t.Errorf("%s: accepted %v, want %v (%v)", c.name, got, c.ok, ck.out)
		}
	}
}
