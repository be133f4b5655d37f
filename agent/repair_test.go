package agent

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm"
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
	s, err := NewService(Config{Store: store, DefaultModel: "openai/gpt-4o-mini", LLM: oneProvider{p}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := context.Background()
	label, value := "human", "Ada"
	a, err := s.CreateAgent(ctx, CreateAgentRequest{MemoryBlocks: []CreateBlock{{Label: &label, Value: &value}}})
	if err != nil {
		t.Fatal(err)
	}

	// What a crash mid-turn left: a run in progress, its user message and
	// an assistant message whose tool call has no result.
	now := time.Now().UTC()
	run := &runRecord{ID: derivedID("run", "crashed"), AgentID: a.ID, Status: RunRunning, CreatedAt: now, FirstSeq: 1, LastSeq: 2}
	user := &messageRecord{ID: derivedID("message", "u"), AgentID: a.ID, Seq: 1, Role: roleUser, Text: "hi",
		Content: json.RawMessage(`"hi"`), Otid: "otid-crashed", RunID: run.ID, CreatedAt: now, Input: true}
	asst := &messageRecord{ID: derivedID("message", "a"), AgentID: a.ID, Seq: 2, Role: roleAssistant, RunID: run.ID,
		StepID: "step-x", CreatedAt: now, ToolCalls: []storedToolCall{{ID: "call_9", Name: toolMemoryInsert, Arguments: `{"label":"human","new_str":"x"}`}}}
	txn, err := store.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*messageRecord{user, asst} {
		if err := appendMessage(txn, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeRun(txn, run); err != nil {
		t.Fatal(err)
	}
	must(t, txn.Set(activeRunKey(a.ID), []byte(run.ID)))
	must(t, txn.Set(agentRunKey(a.ID, run.ID), nil))
	must(t, txn.Set(indexKey(runIndexPrefix, run.CreatedAt, run.ID), nil))
	must(t, txn.Set(turnKey(a.ID, "otid\x00otid-crashed"), []byte(run.ID)))
	must(t, txn.Commit(ctx))

	// Resending the interrupted message runs nothing.
	otid := "otid-crashed"
	dup, err := s.SendMessage(ctx, a.ID, "", MessageRequest{Messages: []MessageCreate{{Role: "user", Content: json.RawMessage(`"hi"`), Otid: &otid}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := dup.Response(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.calls != 0 || resp.StopReason.StopReason != StopError || dup.RunID() != run.ID {
		t.Fatalf("resend: %d calls, stop %v, run %s", p.calls, resp.StopReason, dup.RunID())
	}
	if got := msgTypes(resp.Messages); !slices.Equal(got, []string{TypeToolCall, TypeToolReturn}) {
		t.Errorf("resend answered %v", got)
	}

	tr, err := s.SendMessage(ctx, a.ID, "", MessageRequest{Input: json.RawMessage(`"are you there?"`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Response(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := s.ListMessages(ctx, a.ID, MessageFilter{}, Page{Order: Asc, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{TypeUser, TypeToolCall, TypeToolReturn, TypeUser, TypeAssistant}
	if got := msgTypes(h); !slices.Equal(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	ret := h[2].(*ToolReturnMessage)
	if ret.Status != "error" || ret.ToolCallID != "call_9" || *ret.RunID != run.ID {
		t.Errorf("repair result %+v", ret)
	}
	old, err := s.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if old.Status != RunFailed || deref(old.StopReason) != StopError || old.CompletedAt == nil {
		t.Errorf("interrupted run %+v", old)
	}
	// The repaired call's memory edit never happened, matching its result.
	if b, _ := s.GetAgentBlock(ctx, a.ID, "human"); b.Value != "Ada" {
		t.Errorf("human %q", b.Value)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func msgTypes(ms []LettaMessage) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Base().MessageType
	}
	return out
}

func TestCompileSystemPrompt(t *testing.T) {
	desc := "What I know of the user."
	rec := &agentRecord{ID: "agent-1", System: "Be brief.", AgentType: "letta_v1_agent", Timezone: "UTC"}
	blocks := []attachedBlock{
		{block: &blockRecord{Block: Block{Label: "human", Value: "Ada", Limit: 100, Description: &desc}}},
		{block: &blockRecord{Block: Block{Label: "persona", Value: "Kelp", Limit: 50, ReadOnly: true}}},
	}
	at := time.Date(2025, 5, 1, 15, 4, 5, 0, time.UTC)
	got := compileSystemPrompt(rec, blocks, promptMeta{recompiled: at, previousMessages: 3})
	want := "Be brief.\n\n<memory_blocks>\nThe following memory blocks are currently engaged in your core memory unit:\n\n" +
		"<human>\n<description>\nWhat I know of the user.\n</description>\n<metadata>\n- chars_current=3\n- chars_limit=100\n</metadata>\n<value>\nAda\n</value>\n</human>\n" +
		"\n<persona>\n<description>\n\n</description>\n<metadata>\n- read_only=true\n- chars_current=4\n- chars_limit=50\n</metadata>\n<value>\nKelp\n</value>\n</persona>\n" +
		"\n</memory_blocks>\n\n<memory_metadata>\n- AGENT_ID: agent-1\n- CONVERSATION_ID: default\n" +
		"- System prompt last recompiled: 2025-05-01 03:04:05 PM UTC+0000\n" +
		"- 3 previous messages between you and the user are stored in recall memory (use tools to access them)\n</memory_metadata>"
	if got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
	// No blocks: no wrapper. Anthropic letta_v1 agents get line numbers.
	if got := compileSystemPrompt(rec, nil, promptMeta{recompiled: at}); !strings.HasPrefix(got, "Be brief.\n\n\n\n<memory_metadata>") {
		t.Errorf("no blocks: %q", got)
	}
	rec.LLMConfig.ModelEndpointType = "anthropic"
	blocks[0].block.Value = "a\nb"
	if got := compileSystemPrompt(rec, blocks[:1], promptMeta{recompiled: at}); !strings.Contains(got, "</warning>\n<value>\n1→ a\n2→ b\n</value>") {
		t.Errorf("line numbers: %q", got)
	}
}
