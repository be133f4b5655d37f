package agent_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

func TestTurnToolCallThenAnswer(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	e.llm.then(
		call("call_1", "memory_replace", map[string]any{"label": "human", "old_str": "Ada", "new_str": "Ada Lovelace"}),
		reply("Noted, Ada Lovelace."),
	)
	resp := e.send(a.ID, userMsg("My full name is Ada Lovelace."))

	if got, want := types(resp.Messages), []string{"tool_call_message", "tool_return_message", "assistant_message"}; !slices.Equal(got, want) {
		t.Fatalf("messages %v, want %v", got, want)
	}
	ret := resp.Messages[1].(*letta.ToolReturnMessage)
	if ret.Status != "success" || ret.ToolCallID != "call_1" || len(ret.ToolReturns) != 1 {
		t.Errorf("tool return %+v", ret)
	}
	if c := resp.Messages[2].(*letta.AssistantMessage).Content; c != "Noted, Ada Lovelace." {
		t.Errorf("assistant said %q", c)
	}
	if resp.StopReason.StopReason != "end_turn" || resp.Usage.StepCount != 2 || resp.Usage.PromptTokens != 200 ||
		resp.Usage.CompletionTokens != 30 || resp.Usage.TotalTokens != 230 {
		t.Errorf("stop %+v usage %+v", resp.StopReason, resp.Usage)
	}
	// The memory edit is committed and visible.
	if v := e.block(a.ID, "human"); v != "The user is Ada Lovelace." {
		t.Errorf("human block %q", v)
	}
	// The second model call saw the tool result and the edited memory.
	second := e.llm.request(1)
	if !strings.Contains(second.Messages[0].Content, "<value>\nThe user is Ada Lovelace.\n</value>") {
		t.Errorf("system prompt after the edit:\n%s", second.Messages[0].Content)
	}
	last := second.Messages[len(second.Messages)-1]
	if last.Role != llm.RoleTool || last.ToolCallID != "call_1" {
		t.Errorf("last message of step 2: %+v", last)
	}
	if second.Model != "gpt-4o-mini" {
		t.Errorf("model %q", second.Model)
	}
	var names []string
	for _, tl := range second.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Contains(names, "memory_replace") || slices.Contains(names, "send_message") {
		t.Errorf("tools offered: %v", names)
	}

	// History: the user message, then the response, all of one run.
	h := e.history(a.ID)
	if got, want := types(h), []string{"user_message", "tool_call_message", "tool_return_message", "assistant_message"}; !slices.Equal(got, want) {
		t.Fatalf("history %v", got)
	}
	checkConsistent(t, h)
	run := e.run(runIDOf(resp.Messages))
	if run.Status != "completed" || deref(run.StopReason) != "end_turn" || run.CompletedAt == nil || run.AgentID != a.ID {
		t.Errorf("run %+v", run)
	}
	st, _ := e.svc.Agents.Get(e.ctx, a.ID, false)
	if deref(st.LastStopReason) != "end_turn" {
		t.Errorf("last_stop_reason %v", st.LastStopReason)
	}
	// Descending listing reverses the order; a cursor pages.
	desc, err := e.svc.Messages.List(e.ctx, a.ID, agent.MessageFilter{}, letta.Page{Order: letta.Desc, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := types(desc); !slices.Equal(got, []string{"assistant_message", "tool_return_message"}) {
		t.Errorf("newest two: %v", got)
	}
	older, err := e.svc.Messages.List(e.ctx, a.ID, agent.MessageFilter{}, letta.Page{Order: letta.Desc, Limit: 10, After: desc[1].Base().ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := types(older); !slices.Equal(got, []string{"tool_call_message", "user_message", "system_message"}) {
		t.Errorf("after cursor: %v", got)
	}
}

func TestBuiltinMemoryTools(t *testing.T) {
	e := newEnv(t)
	label, typ := "notes", "memgpt_agent"
	req := createReq("Memo", "Ada")
	req.AgentType = &typ
	val := "line one\nline two"
	req.MemoryBlocks = append(req.MemoryBlocks, letta.CreateBlock{Label: &label, Value: &val})
	a := e.agent(req)
	e.llm.then(
		calls(
			llm.ToolCall{ID: "c1", Name: "core_memory_append", Arguments: jsonText(map[string]any{"label": "human", "content": "Likes tea."})},
			llm.ToolCall{ID: "c2", Name: "core_memory_replace", Arguments: jsonText(map[string]any{"label": "human", "old_content": "nothing", "new_content": "x"})},
			llm.ToolCall{ID: "c3", Name: "archival_memory_insert", Arguments: jsonText(map[string]any{"content": "Ada's cat is called Pixel.", "tags": []string{"pets"}})},
			llm.ToolCall{ID: "c4", Name: "no_such_tool", Arguments: `{}`},
		),
		calls(llm.ToolCall{ID: "c5", Name: "archival_memory_search", Arguments: jsonText(map[string]any{"query": "cat"})}),
		calls(llm.ToolCall{ID: "c6", Name: "send_message", Arguments: jsonText(map[string]any{"message": "Saved!"})}),
	)
	resp := e.send(a.ID, userMsg("remember things"))
	want := []string{"tool_call_message", "tool_call_message", "tool_call_message", "tool_call_message",
		"tool_return_message", "tool_return_message", "tool_return_message", "tool_return_message",
		"tool_call_message", "tool_return_message", "assistant_message", "tool_return_message"}
	if got := types(resp.Messages); !slices.Equal(got, want) {
		t.Fatalf("messages %v", got)
	}
	statuses := map[string]string{}
	results := map[string]string{}
	for _, m := range resp.Messages {
		if r, ok := m.(*letta.ToolReturnMessage); ok {
			statuses[r.ToolCallID], results[r.ToolCallID] = r.Status, r.ToolReturn
		}
	}
	if statuses["c1"] != "success" || statuses["c2"] != "error" || statuses["c3"] != "success" || statuses["c4"] != "error" {
		t.Errorf("statuses %v results %v", statuses, results)
	}
	if !strings.Contains(results["c5"], "Pixel") {
		t.Errorf("archival search found %q", results["c5"])
	}
	if m := resp.Messages[10].(*letta.AssistantMessage); m.Content != "Saved!" {
		t.Errorf("send_message shown as %q", m.Content)
	}
	if resp.StopReason.StopReason != "end_turn" || e.llm.calls() != 3 {
		t.Errorf("stop %v after %d calls", resp.StopReason, e.llm.calls())
	}
	if v := e.block(a.ID, "human"); v != "Ada\nLikes tea." {
		t.Errorf("human %q", v)
	}
	ps, err := e.svc.Archival.List(e.ctx, a.ID, agent.PassageFilter{Ascending: true}, "", "", 0)
	if err != nil || len(ps) != 1 || ps[0].Text != "Ada's cat is called Pixel." || !slices.Equal(ps[0].Tags, []string{"pets"}) {
		t.Errorf("passages %+v %v", ps, err)
	}
	// memgpt agents get send_message and the core memory tools.
	var names []string
	for _, tl := range e.llm.request(0).Tools {
		names = append(names, tl.Name)
	}
	if !slices.Contains(names, "send_message") || !slices.Contains(names, "core_memory_append") {
		t.Errorf("memgpt tools %v", names)
	}
	sys := e.llm.request(2).Messages[0].Content
	if !strings.Contains(sys, "- 1 total memories you created are stored in archival memory") ||
		!strings.Contains(sys, "- Available archival memory tags: pets") {
		t.Errorf("metadata:\n%s", sys)
	}

	// memory_insert and memory_replace on a letta_v1 agent.
	b := e.agent(createReq("V1", "alpha\ngamma"))
	e.llm.then(
		calls(
			llm.ToolCall{ID: "i1", Name: "memory_insert", Arguments: jsonText(map[string]any{"label": "human", "new_str": "beta", "insert_line": 1})},
			llm.ToolCall{ID: "i2", Name: "memory_replace", Arguments: jsonText(map[string]any{"label": "human", "old_str": "a", "new_str": "A"})},
			llm.ToolCall{ID: "i3", Name: "memory_replace", Arguments: jsonText(map[string]any{"label": "human", "old_str": "gamma", "new_str": "GAMMA"})},
			llm.ToolCall{ID: "i4", Name: "memory_insert", Arguments: jsonText(map[string]any{"label": "nope", "new_str": "x"})},
		),
		reply("done"),
	)
	resp = e.send(b.ID, userMsg("edit"))
	if v := e.block(b.ID, "human"); v != "alpha\nbeta\nGAMMA" {
		t.Errorf("human %q", v)
	}
	for _, m := range resp.Messages {
		if r, ok := m.(*letta.ToolReturnMessage); ok {
			wantOK := r.ToolCallID == "i1" || r.ToolCallID == "i3"
			if (r.Status == "success") != wantOK {
				t.Errorf("%s: %s %q", r.ToolCallID, r.Status, r.ToolReturn)
			}
		}
	}
}

func TestMaxSteps(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	for i := range 5 {
		e.llm.then(call("s"+string(rune('0'+i)), "conversation_search", map[string]any{"query": "anything"}))
	}
	steps := 3
	req := userMsg("loop")
	req.MaxSteps = &steps
	resp := e.send(a.ID, req)
	if resp.StopReason.StopReason != "max_steps" || resp.Usage.StepCount != 3 || e.llm.calls() != 3 {
		t.Fatalf("stop %v steps %d calls %d", resp.StopReason, resp.Usage.StepCount, e.llm.calls())
	}
	checkConsistent(t, e.history(a.ID))
	if r := e.run(runIDOf(resp.Messages)); r.Status != "completed" || deref(r.StopReason) != "max_steps" {
		t.Errorf("run %+v", r)
	}
}

func TestLLMErrorMidTurn(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	e.llm.then(
		call("c1", "memory_insert", map[string]any{"label": "human", "new_str": "Likes Go."}),
		fail(500, "upstream exploded"),
	)
	tr, err := e.svc.Messages.Send(e.ctx, a.ID, "", userMsg("hi"))
	if err != nil {
		t.Fatal(err)
	}
	resp := e.wait(tr)
	if resp.StopReason.StopReason != "llm_api_error" {
		t.Fatalf("stop %v", resp.StopReason)
	}
	res := tr.Result()
	if !strings.Contains(res.Error, "upstream exploded") || res.ErrorType != "llm_error" {
		t.Errorf("result %+v", res)
	}
	h := e.history(a.ID)
	if got := types(h); !slices.Equal(got, []string{"user_message", "tool_call_message", "tool_return_message"}) {
		t.Fatalf("history %v", got)
	}
	checkConsistent(t, h)
	// The memory edit of the committed step stays: memory matches history.
	if v := e.block(a.ID, "human"); v != "The user is Ada.\nLikes Go." {
		t.Errorf("human %q", v)
	}
	run := e.run(tr.RunID())
	if run.Status != "failed" || deref(run.StopReason) != "llm_api_error" || run.Metadata == nil {
		t.Errorf("run %+v", run)
	}
	// The agent goes on.
	if resp := e.send(a.ID, userMsg("again")); resp.StopReason.StopReason != "end_turn" {
		t.Errorf("next turn: %v", resp.StopReason)
	}
}

// A commit that fails (dropped, or applied with its acknowledgement lost)
// ends the turn with an error and leaves a consistent history and a memory
// that matches it; the next turn works.
func TestCommitFailureMidTurn(t *testing.T) {
	for _, mode := range []struct {
		name    string
		fault   int
		applied bool
	}{{"dropped", 1, false}, {"ack-lost", 2, true}} {
		t.Run(mode.name, func(t *testing.T) {
			e := newEnv(t)
			a := e.defaultAgent()
			edit := call("c1", "memory_insert", map[string]any{"label": "human", "new_str": "Has a dog."})
			e.llm.then(func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
				e.eng.arm(mode.fault) // the step's commit fails
				return edit(ctx, req, d)
			})
			resp := e.send(a.ID, userMsg("hi"))
			if resp.StopReason.StopReason != "error" {
				t.Fatalf("stop %v", resp.StopReason)
			}
			h := e.history(a.ID)
			checkConsistent(t, h)
			want := []string{"user_message"}
			wantBlock := "The user is Ada."
			if mode.applied {
				want = append(want, "tool_call_message", "tool_return_message")
				wantBlock += "\nHas a dog."
			}
			if got := types(h); !slices.Equal(got, want) {
				t.Fatalf("history %v, want %v", got, want)
			}
			if v := e.block(a.ID, "human"); v != wantBlock {
				t.Errorf("human %q, want %q", v, wantBlock)
			}
			if r := e.run(runIDOf(h)); r.Status != "failed" {
				t.Errorf("run %+v", r)
			}
			resp = e.send(a.ID, userMsg("again"))
			if resp.StopReason.StopReason != "end_turn" {
				t.Fatalf("next turn %v", resp.StopReason)
			}
			checkConsistent(t, e.history(a.ID))
		})
	}
}

func TestOtidResendDoesNotRunTwice(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	e.llm.then(reply("first answer"))
	first := e.send(a.ID, userMsgOtid("hello", "otid-1"))
	again := e.send(a.ID, userMsgOtid("hello", "otid-1"))
	if e.llm.calls() != 1 {
		t.Fatalf("model called %d times", e.llm.calls())
	}
	if len(again.Messages) != 1 || again.Messages[0].Base().ID != first.Messages[0].Base().ID ||
		again.StopReason != first.StopReason || again.Usage.TotalTokens != first.Usage.TotalTokens {
		t.Errorf("resend answered %+v, first %+v", again, first)
	}
	if got := types(e.history(a.ID)); len(got) != 2 {
		t.Errorf("history %v", got)
	}
	// The user message keeps its otid.
	if o := e.history(a.ID)[0].Base().Otid; o == nil || *o != "otid-1" {
		t.Errorf("user otid %v", o)
	}

	// The same holds for an Idempotency-Key.
	ctx := agent.WithIdempotencyKey(e.ctx, "POST /v1/agents/x/messages\x00key-1")
	tr1, err := e.svc.Messages.Send(ctx, a.ID, "", userMsg("with a key"))
	if err != nil {
		t.Fatal(err)
	}
	r1 := e.wait(tr1)
	tr2, err := e.svc.Messages.Send(ctx, a.ID, "", userMsg("with a key"))
	if err != nil {
		t.Fatal(err)
	}
	r2 := e.wait(tr2)
	if e.llm.calls() != 2 || tr1.RunID() != tr2.RunID() || r1.Messages[0].Base().ID != r2.Messages[0].Base().ID {
		t.Errorf("calls %d runs %s %s", e.llm.calls(), tr1.RunID(), tr2.RunID())
	}
}

func TestReadsNotBlockedByTurn(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	release := make(chan struct{})
	started := make(chan struct{})
	e.llm.then(func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return reply("finally")(ctx, req, d)
	})
	tr, err := e.svc.Messages.Send(e.ctx, a.ID, "", userMsg("slow"))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		if _, err := e.svc.Agents.Get(ctx, a.ID, true); err != nil {
			done <- err
			return
		}
		ms, err := e.svc.Messages.List(ctx, a.ID, agent.MessageFilter{}, letta.Page{Order: letta.Asc})
		if err != nil || len(ms) != 1 {
			done <- err
			return
		}
		// Mutations of the agent go through its actor, which is free while
		// the turn waits for the model.
		v := "edited meanwhile"
		if _, err := e.svc.Agents.UpdateBlock(ctx, a.ID, "persona", letta.BlockUpdate{Value: &v}); err != nil {
			done <- err
			return
		}
		_, err = e.svc.Agents.Block(ctx, a.ID, "human")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reads blocked behind a turn waiting for the model")
	}
	close(release)
	if resp := e.wait(tr); resp.StopReason.StopReason != "end_turn" {
		t.Errorf("stop %v", resp.StopReason)
	}
}

func TestConcurrentTurnsSerialised(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	slow := func(text string) step {
		return func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
			time.Sleep(20 * time.Millisecond)
			return reply(text)(ctx, req, d)
		}
	}
	e.llm.then(slow("a"), slow("b"), slow("c"), slow("d"))
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := e.svc.Messages.Send(e.ctx, a.ID, "", userMsg("msg"+string(rune('0'+i))))
			if err != nil {
				t.Error(err)
				return
			}
			e.wait(tr)
		}()
	}
	wg.Wait()
	if e.llm.maxIn != 1 {
		t.Errorf("%d model calls of one agent ran at once", e.llm.maxIn)
	}
	h := e.history(a.ID)
	if got := types(h); !slices.Equal(got, slices.Repeat([]string{"user_message", "assistant_message"}, 4)) {
		t.Fatalf("history %v", got)
	}
	for i := 0; i < len(h); i += 2 {
		if *h[i].Base().RunID != *h[i+1].Base().RunID {
			t.Errorf("turns interleaved at %d", i)
		}
	}
}

func TestNoProviderConfigured(t *testing.T) {
	svc, err := agent.New(agent.Config{Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	ctx := context.Background()
	a, err := svc.Agents.Create(ctx, createReq("NoLLM", "x"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Messages.Send(ctx, a.ID, "", userMsg("hi"))
	if agent.KindOf(err) != letta.KindUnavailable || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("send without a provider: %v", err)
	}
	if ms, err := svc.Messages.List(ctx, a.ID, agent.MessageFilter{}, letta.Page{Order: letta.Asc}); err != nil || len(ms) != 1 {
		t.Errorf("messages %v %v", ms, err)
	}
	if ms := svc.Models.List(ctx); len(ms) != 0 {
		t.Errorf("models %v", ms)
	}
	// A provider the resolver does not serve.
	e := newEnv(t)
	m := "anthropic/claude-sonnet-4"
	req := createReq("Claude", "x")
	req.Model = &m
	b := e.agent(req)
	if _, err := e.svc.Messages.Send(e.ctx, b.ID, "", userMsg("hi")); agent.KindOf(err) != letta.KindUnavailable ||
		!strings.Contains(err.Error(), "ANTHROPIC_API_KEY") {
		t.Errorf("unconfigured provider: %v", err)
	}
}

func TestClientToolApproval(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	e.llm.then(
		calls(llm.ToolCall{ID: "bash_1", Name: "Bash", Arguments: `{"command":"ls"}`},
			llm.ToolCall{ID: "srv_1", Name: "conversation_search", Arguments: `{"query":"x"}`}),
		reply("The directory has two files."),
	)
	req := userMsg("list files")
	req.ClientTools = []letta.ClientTool{{Name: "Bash", Parameters: json.RawMessage(`{"type":"object","properties":{"command":{"type":"string"}}}`)}}
	resp := e.send(a.ID, req)
	if got := types(resp.Messages); !slices.Equal(got, []string{"approval_request_message", "tool_call_message", "tool_return_message"}) {
		t.Fatalf("messages %v", got)
	}
	if resp.StopReason.StopReason != "requires_approval" {
		t.Fatalf("stop %v", resp.StopReason)
	}
	ar := resp.Messages[0].(*letta.ApprovalRequestMessage)
	if ar.ToolCall.Name != "Bash" || ar.ToolCall.ToolCallID != "bash_1" || len(ar.ToolCalls) != 1 {
		t.Errorf("approval request %+v", ar)
	}
	// A new message must answer the waiting call first.
	if _, err := e.svc.Messages.Send(e.ctx, a.ID, "", userMsg("hello?")); agent.KindOf(err) != letta.KindConflict {
		t.Fatalf("message while waiting: %v", err)
	}
	out := json.RawMessage(`"a.txt\nb.txt"`)
	approval := letta.MessageRequest{Messages: []letta.MessageCreate{{Type: "approval", Approvals: []letta.ApprovalReturn{
		{Type: "tool", ToolCallID: "bash_1", ToolReturn: out, Status: "success"},
	}}}, ClientTools: req.ClientTools}
	resp = e.send(a.ID, approval)
	if got := types(resp.Messages); !slices.Equal(got, []string{"tool_return_message", "assistant_message"}) {
		t.Fatalf("after approval: %v", got)
	}
	if r := resp.Messages[0].(*letta.ToolReturnMessage); r.ToolReturn != "a.txt\nb.txt" || r.ToolCallID != "bash_1" {
		t.Errorf("client result %+v", r)
	}
	// The model saw the client's result.
	third := e.llm.request(1)
	found := false
	for _, m := range third.Messages {
		found = found || m.Role == llm.RoleTool && m.ToolCallID == "bash_1" && m.Content == "a.txt\nb.txt"
	}
	if !found || resp.StopReason.StopReason != "end_turn" {
		t.Errorf("model request %+v, stop %v", third.Messages, resp.StopReason)
	}
	checkConsistent(t, e.history(a.ID))
	// An approval with nothing waiting is refused.
	if _, err := e.svc.Messages.Send(e.ctx, a.ID, "", approval); agent.KindOf(err) != letta.KindInvalid {
		t.Errorf("stray approval: %v", err)
	}
}

func TestTokenStreaming(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	e.llm.then(
		call("c1", "conversation_search", map[string]any{"query": "hi"}),
		reply("Hello there"),
	)
	on := true
	req := userMsg("hi")
	req.Streaming, req.StreamTokens = &on, true
	tr, err := e.svc.Messages.Send(e.ctx, a.ID, "", req)
	if err != nil {
		t.Fatal(err)
	}
	e.wait(tr)
	evs, done, _ := tr.Events(0)
	if !done {
		t.Fatal("not done")
	}
	var kinds []string
	var text string
	for i, ev := range evs {
		kinds = append(kinds, ev.Message.Base().MessageType)
		if *ev.Message.Base().SeqID != i+1 {
			t.Errorf("event %d has seq_id %d", i, *ev.Message.Base().SeqID)
		}
		if m, ok := ev.Message.(*letta.AssistantMessage); ok {
			if !ev.Delta {
				t.Errorf("assistant text sent whole after its deltas")
			}
			text += m.Content
		}
	}
	if !slices.Equal(kinds, []string{"tool_call_message", "tool_return_message", "assistant_message", "assistant_message"}) || text != "Hello there" {
		t.Errorf("events %v text %q", kinds, text)
	}
	// The deltas carry the id and otid the stored message has.
	h := e.history(a.ID)
	stored := h[len(h)-1]
	if evs[3].Message.Base().ID != stored.Base().ID || *evs[3].Message.Base().Otid != *stored.Base().Otid {
		t.Errorf("delta id/otid differ from the stored message")
	}
}

func TestCancelTurn(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	started := make(chan struct{})
	e.llm.then(func(ctx context.Context, _ llm.Request, _ func(llm.Delta)) (*llm.Response, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	tr, err := e.svc.Messages.Send(e.ctx, a.ID, "", userMsg("wait forever"))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	got, err := e.svc.Messages.Cancel(e.ctx, a.ID, "", nil)
	if err != nil || got[tr.RunID()] != "cancelled" {
		t.Fatalf("cancel: %v %v", got, err)
	}
	resp := e.wait(tr)
	if resp.StopReason.StopReason != "cancelled" {
		t.Errorf("stop %v", resp.StopReason)
	}
	if r := e.run(tr.RunID()); r.Status != "cancelled" {
		t.Errorf("run %+v", r)
	}
}

func TestConversations(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	c, err := e.svc.Conversations.Create(e.ctx, a.ID, letta.CreateConversationRequest{})
	if err != nil || !letta.ValidID("conv", c.ID) || c.AgentID != a.ID {
		t.Fatalf("create: %+v %v", c, err)
	}
	e.llm.then(reply("in conversation"), reply("in default"))
	tr, err := e.svc.Messages.Send(e.ctx, a.ID, c.ID, userMsg("hello conv"))
	if err != nil {
		t.Fatal(err)
	}
	e.wait(tr)
	e.send(a.ID, userMsg("hello default"))
	cms, err := e.svc.Messages.List(e.ctx, a.ID, agent.MessageFilter{ConversationID: c.ID}, letta.Page{Order: letta.Asc})
	if err != nil || !slices.Equal(types(cms), []string{"system_message", "user_message", "assistant_message"}) {
		t.Fatalf("conversation messages %v %v", types(cms), err)
	}
	// The default conversation's model call did not see the other one.
	for _, m := range e.llm.request(1).Messages[1:] {
		if strings.Contains(m.Content, "conv") {
			t.Errorf("default conversation saw %q", m.Content)
		}
	}
	if !strings.Contains(e.llm.request(0).Messages[0].Content, "- CONVERSATION_ID: "+c.ID) {
		t.Errorf("conversation id not in the prompt")
	}
	runs, err := e.svc.Runs.List(e.ctx, agent.RunFilter{ConversationID: c.ID}, letta.Page{Order: letta.Desc})
	if err != nil || len(runs) != 1 || runs[0].ID != tr.RunID() {
		t.Errorf("runs %v %v", runs, err)
	}
	// Its run has ended: there is nothing to resume, as in Letta.
	if _, err := e.svc.Messages.ResumeConversation(e.ctx, a.ID, c.ID); agent.KindOf(err) != letta.KindInvalid {
		t.Errorf("resuming a conversation without a run in progress: %v", err)
	}
	list, err := e.svc.Conversations.List(e.ctx, a.ID, letta.Page{Order: letta.Desc})
	if err != nil || len(list) != 1 {
		t.Errorf("list %v %v", list, err)
	}
	// Deleting the agent deletes its conversations, runs and messages.
	if err := e.svc.Agents.Delete(e.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Conversations.Get(e.ctx, c.ID); agent.KindOf(err) != letta.KindNotFound {
		t.Errorf("conversation after delete: %v", err)
	}
	if _, err := e.svc.Runs.Get(e.ctx, tr.RunID()); agent.KindOf(err) != letta.KindNotFound {
		t.Errorf("run after delete: %v", err)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
