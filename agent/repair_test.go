package agent_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

type okProvider struct{ calls int }

func (p *okProvider) Name() string { return "openai" }
func (p *okProvider) Complete(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
	p.calls++
	return &llm.Response{Content: "ok", StopReason: llm.StopEndTurn}, nil
}

type oneProvider struct{ p llm.Provider }

func (r oneProvider) Resolve(handle string) (llm.Provider, string, error) {
	_, model, _ := strings.Cut(handle, "/")
	return r.p, model, nil
}

// A crash between a tool call and its result (which a step never commits
// apart, but a server that stopped mid-turn under an older layout, or a
// tool run outside the actor, could leave) is repaired when the agent's
// next turn starts: the call gets an error result and the run is closed,
// in the same commit as the new turn's first message. A resend of the
// interrupted turn's message answers with what it did, without running it.
func TestDanglingToolCallRepairedAtNextTurn(t *testing.T) {
	p := &okProvider{}
	store := kv.NewMemDB()
	s, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", LLM: oneProvider{p}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	label, value := "human", "Ada"
	a, err := s.Agents.Create(ctx, letta.CreateAgentRequest{MemoryBlocks: []letta.CreateBlock{{Label: &label, Value: &value}}})
	if err != nil {
		t.Fatal(err)
	}

	// What a crash mid-turn left: a run in progress, its user message and
	// an assistant message whose tool call has no result.
	now := time.Now().UTC()
	run := &schema.Run{ID: letta.DerivedID("run", "crashed"), AgentID: a.ID, Status: letta.RunRunning, CreatedAt: now, FirstSeq: 1, LastSeq: 2}
	user := &schema.Message{ID: letta.DerivedID("message", "u"), AgentID: a.ID, Seq: 1, Role: schema.RoleUser, Text: "hi",
		Content: json.RawMessage(`"hi"`), Otid: "otid-crashed", RunID: run.ID, CreatedAt: now, Input: true}
	asst := &schema.Message{ID: letta.DerivedID("message", "a"), AgentID: a.ID, Seq: 2, Role: schema.RoleAssistant, RunID: run.ID,
		StepID: "step-x", CreatedAt: now, ToolCalls: []schema.ToolCall{{ID: "call_9", Name: "memory_insert", Arguments: `{"label":"human","new_str":"x"}`}}}
	txn, err := store.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*schema.Message{user, asst} {
		if err := schema.AppendMessage(txn, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := schema.PutRun(txn, run); err != nil {
		t.Fatal(err)
	}
	must(t, txn.Set(schema.ActiveRunKey(a.ID), []byte(run.ID)))
	must(t, txn.Set(schema.AgentRunKey(a.ID, run.ID), nil))
	must(t, txn.Set(schema.IndexKey(schema.RunIndex.Prefix, run.CreatedAt, run.ID), nil))
	must(t, txn.Set(schema.TurnKey(a.ID, "otid\x00otid-crashed"), []byte(run.ID)))
	must(t, txn.Commit(ctx))

	// Resending the interrupted message runs nothing.
	otid := "otid-crashed"
	dup, err := s.Messages.Send(ctx, a.ID, "", letta.MessageRequest{Messages: []letta.MessageCreate{{Role: "user", Content: json.RawMessage(`"hi"`), Otid: &otid}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := dup.Response(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.calls != 0 || resp.StopReason.StopReason != letta.StopError || dup.RunID() != run.ID {
		t.Fatalf("resend: %d calls, stop %v, run %s", p.calls, resp.StopReason, dup.RunID())
	}
	if got := msgTypes(resp.Messages); !slices.Equal(got, []string{letta.TypeToolCall, letta.TypeToolReturn}) {
		t.Errorf("resend answered %v", got)
	}

	tr, err := s.Messages.Send(ctx, a.ID, "", letta.MessageRequest{Input: json.RawMessage(`"are you there?"`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Response(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := s.Messages.List(ctx, a.ID, agent.MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{letta.TypeUser, letta.TypeToolCall, letta.TypeToolReturn, letta.TypeUser, letta.TypeAssistant}
	if got := msgTypes(h); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	ret := h[2].(*letta.ToolReturnMessage)
	if ret.Status != "error" || ret.ToolCallID != "call_9" || *ret.RunID != run.ID {
		t.Errorf("repair result %+v", ret)
	}
	old, err := s.Runs.Get(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if old.Status != letta.RunFailed || deref(old.StopReason) != letta.StopError || old.CompletedAt == nil {
		t.Errorf("interrupted run %+v", old)
	}
	// The repaired call's memory edit never happened, matching its result.
	if b, _ := s.Agents.Block(ctx, a.ID, "human"); b.Value != "Ada" {
		t.Errorf("human %q", b.Value)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func msgTypes(ms []letta.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Base().MessageType
	}
	return out
}

// Spec: a cluster node that took an agent over closes the run its old
// owner's turn left in progress, as failed, before any next turn; a run
// already closed, or none, is left alone.
func TestCloseInterruptedRunAtTakeover(t *testing.T) {
	store := kv.NewMemDB()
	s, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", LLM: oneProvider{&okProvider{}}})
	must(t, err)
	defer s.Close(context.Background())
	ctx := context.Background()
	a, err := s.Agents.Create(ctx, letta.CreateAgentRequest{})
	must(t, err)
	must(t, s.Agents.CloseInterruptedRun(ctx, a.ID)) // nothing in progress
	run := &schema.Run{ID: letta.DerivedID("run", "dead-owner"), AgentID: a.ID, Status: letta.RunRunning, CreatedAt: time.Now().UTC(), FirstSeq: 1, LastSeq: 1}
	txn, err := store.Begin(ctx)
	must(t, err)
	must(t, schema.PutRun(txn, run))
	must(t, txn.Set(schema.ActiveRunKey(a.ID), []byte(run.ID)))
	must(t, txn.Set(schema.AgentRunKey(a.ID, run.ID), nil))
	must(t, txn.Set(schema.IndexKey(schema.RunIndex.Prefix, run.CreatedAt, run.ID), nil))
	must(t, txn.Commit(ctx))

	must(t, s.Agents.CloseInterruptedRun(ctx, a.ID))
	got, err := s.Runs.Get(ctx, run.ID)
	must(t, err)
	if got.Status != letta.RunFailed || deref(got.StopReason) != letta.StopError || got.CompletedAt == nil {
		t.Errorf("the dead owner's run after the takeover: %+v", got)
	}
	must(t, s.Agents.CloseInterruptedRun(ctx, a.ID)) // closed once
}
