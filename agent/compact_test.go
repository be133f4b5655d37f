package agent_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

// isSummaryRequest tells the summariser's requests from a turn's: they
// offer no tools and ask for a summary.
func isSummaryRequest(req llm.Request) bool {
	return len(req.Tools) == 0 && len(req.Messages) == 2 && strings.Contains(req.Messages[0].Content, "summary")
}

// summaries answers the summariser's requests with a numbered summary of
// what it was given, and a turn's with a reply; fail makes the summariser
// fail instead.
func summaries(fail *bool) step {
	return func(_ context.Context, req llm.Request, _ func(llm.Delta)) (*llm.Response, error) {
		if !isSummaryRequest(req) {
			return &llm.Response{Content: "reply", StopReason: llm.StopEndTurn}, nil
		}
		if fail != nil && *fail {
			return nil, &llm.Error{Provider: "openai", Status: 500, Message: "summariser down"}
		}
		return &llm.Response{Content: "SUMMARY of " + req.Messages[1].Content[:40], StopReason: llm.StopEndTurn}, nil
	}
}

func (e *env) script(n int, s step) {
	for range n {
		e.llm.then(s)
	}
}

// checkStore checks everything stored against the storage schema.
func (e *env) checkStore() {
	e.t.Helper()
	snap, err := e.eng.NewSnapshot()
	if err != nil {
		e.t.Fatal(err)
	}
	defer snap.Close()
	kvs, err := snap.Scan(kv.Range{Start: []byte{0}}, 0, false)
	if err != nil {
		e.t.Fatal(err)
	}
	entries := make([]schema.Entry, len(kvs))
	for i, p := range kvs {
		v, err := kv.Unseal(p.Key, p.Value)
		if err != nil {
			e.t.Fatal(err)
		}
		entries[i] = schema.Entry{Key: p.Key, Value: v}
	}
	for _, p := range schema.Check(entries).Problems {
		e.t.Errorf("schema: %s: %s", p.Object, p.Message)
	}
}

func (e *env) messageIDs(agentID string) []string {
	e.t.Helper()
	st, err := e.svc.Agents.Get(e.ctx, agentID, false)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.MessageIDs
}

// Spec: when a context's history no longer fits its window, the turn
// summarises its older part (one model call) instead of dropping it: the
// summary becomes in-context message 1, the summarised messages leave the
// context but stay stored and listed, and the model is sent the summary
// and the recent history, with every tool call next to its result.
func TestCompactionWhenHistoryOverflows(t *testing.T) {
	e := newEnv(t)
	window := 3000
	req := createReq("Small", "x")
	req.ContextWindowLimit = &window
	a := e.agent(req)
	e.script(100, summaries(nil))
	long := strings.Repeat("word ", 400) // about 500 tokens
	answered := map[string]string{}      // summary message id -> its summary, as turns answered them
	for i := range 6 {
		for _, m := range e.send(a.ID, userMsg("question "+string(rune('A'+i))+" "+long)).Messages {
			if s, ok := m.(*letta.SummaryMessage); ok {
				answered[s.ID] = s.Summary
			}
		}
	}
	var turnReqs, summaryReqs []llm.Request
	for i := range e.llm.calls() {
		if r := e.llm.request(i); isSummaryRequest(r) {
			summaryReqs = append(summaryReqs, r)
		} else {
			turnReqs = append(turnReqs, r)
		}
	}
	if len(summaryReqs) == 0 || len(turnReqs) != 6 {
		t.Fatalf("%d summary requests, %d turn requests", len(summaryReqs), len(turnReqs))
	}
	ids := e.messageIDs(a.ID)
	ms, err := e.svc.Messages.Get(e.ctx, ids[1])
	if err != nil || len(ms) != 1 {
		t.Fatal(ms, err)
	}
	sum, ok := ms[0].(*letta.SummaryMessage)
	if !ok || !strings.Contains(sum.Summary, "SUMMARY of") || !strings.Contains(sum.Summary, "conversation_search") {
		t.Fatalf("in-context message 1: %#v", ms[0])
	}
	// The turn that compacted answered its summary, as stored.
	if got, ok := answered[sum.ID]; !ok || got != sum.Summary {
		t.Errorf("the turns answered the summaries %v; the one in context is %s", answered, sum.ID)
	}
	last := turnReqs[len(turnReqs)-1]
	if last.Messages[1].Role != llm.RoleUser || last.Messages[1].Content != sum.Summary {
		t.Errorf("the last request does not carry the summary next: %+v", last.Messages[1])
	}
	if got := last.Messages[len(last.Messages)-1].Content; !strings.HasPrefix(got, "question F") {
		t.Errorf("the current turn is missing: %q", got[:20])
	}
	// Nothing was lost: every message is stored and listed, the summarised
	// ones out of the context.
	hist := e.history(a.ID)
	users := 0
	for _, m := range hist {
		if m.Base().MessageType == letta.TypeUser {
			users++
		}
	}
	if users != 6 {
		t.Errorf("%d user messages stored, want 6", users)
	}
	if len(ids) >= len(hist)+1 || slices.Contains(ids, hist[0].Base().ID) {
		t.Errorf("the oldest message is still in context: %d ids, %d stored", len(ids), len(hist))
	}
	e.checkStore()
}

// Spec: POST /summarize's semantics on the service: with nothing to
// summarise it answers the context as it is; otherwise one model call, and
// the counts before and after.
func TestSummarize(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	res, err := e.svc.Agents.Summarize(e.ctx, a.ID, "", agent.CompactionSettings{}, true)
	if err != nil || res.NumMessagesBefore != 1 || res.NumMessagesAfter != 1 || res.Summary != nil {
		t.Fatalf("nothing to summarise: %+v %v", res, err)
	}
	if _, err := e.svc.Agents.Summarize(e.ctx, a.ID, "", agent.CompactionSettings{}, false); agent.KindOf(err) != letta.KindInvalid {
		t.Errorf("compact with nothing to summarise: %v", err)
	}
	e.script(10, summaries(nil))
	for range 3 {
		e.send(a.ID, userMsg("hello"))
	}
	all := "all"
	res, err = e.svc.Agents.Summarize(e.ctx, a.ID, "", agent.CompactionSettings{Mode: &all}, true)
	if err != nil || res.NumMessagesBefore != 7 || res.NumMessagesAfter != 2 || !strings.HasPrefix(deref(res.Summary), "SUMMARY of") {
		t.Fatalf("summarize: %+v %v", res, err)
	}
	bad := "everything"
	if _, err := e.svc.Agents.Summarize(e.ctx, a.ID, "", agent.CompactionSettings{Mode: &bad}, true); agent.KindOf(err) != letta.KindInvalid {
		t.Errorf("bad mode: %v", err)
	}
	e.checkStore()
}

// Spec: a compaction changes the context all at once or not at all. A
// failed summariser call, or a commit lost in a crash (not applied),
// leaves the context exactly as it was; a commit applied whose
// acknowledgement was lost leaves the whole compaction, which a read finds
// and reports as done. Never is a message lost.
func TestCompactionFailureLeavesContext(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	fail := false
	e.script(30, summaries(&fail))
	for range 3 {
		e.send(a.ID, userMsg("hello"))
	}
	before := e.messageIDs(a.ID)
	all := "all"
	settings := agent.CompactionSettings{Mode: &all}

	fail = true
	if _, err := e.svc.Agents.Summarize(e.ctx, a.ID, "", settings, true); err == nil {
		t.Fatal("summarised with the summariser down")
	}
	if got := e.messageIDs(a.ID); !slices.Equal(got, before) {
		t.Errorf("a failed summary changed the context: %v, was %v", got, before)
	}
	fail = false
	e.eng.arm(1) // the commit is not applied (a crash during the transaction)
	if _, err := e.svc.Agents.Summarize(e.ctx, a.ID, "", settings, true); !errors.Is(err, errFault) {
		t.Fatalf("summarise with its commit dropped: %v", err)
	}
	if got := e.messageIDs(a.ID); !slices.Equal(got, before) {
		t.Errorf("a dropped commit changed the context: %v, was %v", got, before)
	}
	e.checkStore()
	e.eng.arm(2) // applied, but the acknowledgement is lost
	res, err := e.svc.Agents.Summarize(e.ctx, a.ID, "", settings, true)
	if err != nil || res.NumMessagesBefore != 7 || res.NumMessagesAfter != 2 {
		t.Fatalf("a compaction applied with its acknowledgement lost: %+v %v", res, err)
	}
	after := e.messageIDs(a.ID)
	if len(after) != 2 || after[0] != before[0] || slices.Contains(before, after[1]) {
		t.Errorf("after an applied compaction: %v (was %v)", after, before)
	}
	if len(e.history(a.ID)) != 7 { // 6 messages and the summary
		t.Errorf("history %v", types(e.history(a.ID)))
	}
	e.checkStore()
}
