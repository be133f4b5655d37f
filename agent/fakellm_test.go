package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// step is one scripted model response: it may inspect the request, wait,
// stream deltas and fail.
type step func(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error)

// fakeLLM is a scripted llm.Provider named "openai". Past the end of its
// script it answers "ok".
type fakeLLM struct {
	mu       sync.Mutex
	script   []step
	requests []llm.Request
	inFlight int
	maxIn    int
}

func (f *fakeLLM) Name() string { return "openai" }

func (f *fakeLLM) Complete(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
	f.mu.Lock()
	i := len(f.requests)
	f.requests = append(f.requests, req)
	var s step
	if i < len(f.script) {
		s = f.script[i]
	}
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if s == nil {
		return reply("ok")(ctx, req, onDelta)
	}
	return s(ctx, req, onDelta)
}

func (f *fakeLLM) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeLLM) request(i int) llm.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[i]
}

func (f *fakeLLM) then(steps ...step) *fakeLLM {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, steps...)
	return f
}

// reply answers with text, streamed in two pieces when asked.
func reply(text string) step {
	return func(_ context.Context, _ llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
		if onDelta != nil && text != "" {
			half := len(text) / 2
			onDelta(llm.Delta{Content: text[:half]})
			onDelta(llm.Delta{Content: text[half:]})
		}
		return &llm.Response{Content: text, StopReason: llm.StopEndTurn, Usage: llm.Usage{PromptTokens: 100, CompletionTokens: 10}}, nil
	}
}

// call asks for one tool call.
func call(id, name string, args any) step {
	return calls(llm.ToolCall{ID: id, Name: name, Arguments: jsonText(args)})
}

func calls(tcs ...llm.ToolCall) step {
	return func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
		return &llm.Response{ToolCalls: tcs, StopReason: llm.StopToolCalls, Usage: llm.Usage{PromptTokens: 100, CompletionTokens: 20}}, nil
	}
}

func fail(status int, msg string) step {
	return func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
		return nil, &llm.Error{Provider: "openai", Status: status, Message: msg}
	}
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// fakeResolver serves every "openai/..." handle with its provider.
type fakeResolver struct{ p llm.Provider }

func (r fakeResolver) Resolve(handle string) (llm.Provider, string, error) {
	provider, model, _ := strings.Cut(handle, "/")
	if provider != "openai" {
		return nil, "", fmt.Errorf("provider %q not configured", provider)
	}
	return r.p, model, nil
}

// faultyEngine fails the next Apply when armed: dropping the batch or
// applying it and losing the acknowledgement.
type faultyEngine struct {
	kv.Engine
	mu      sync.Mutex
	armed   int // 0: no fault; 1: drop; 2: lose the ack
	tripped int
}

var errFault = errors.New("injected fault")

func (e *faultyEngine) arm(mode int) {
	e.mu.Lock()
	e.armed = mode
	e.mu.Unlock()
}

func (e *faultyEngine) Apply(batch []kv.Mutation) error {
	e.mu.Lock()
	mode := e.armed
	e.armed = 0
	if mode != 0 {
		e.tripped++
	}
	e.mu.Unlock()
	switch mode {
	case 1:
		return errFault
	case 2:
		if err := e.Engine.Apply(batch); err != nil {
			return err
		}
		return errFault
	}
	return e.Engine.Apply(batch)
}

type env struct {
	t   testing.TB
	svc *agent.Service
	llm *fakeLLM
	eng *faultyEngine
	ctx context.Context
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOver(t, func(e *faultyEngine) kv.Engine { return e })
}

// newEnvOver is newEnv over the engine wrap makes of its faultyEngine.
func newEnvOver(t testing.TB, wrap func(*faultyEngine) kv.Engine) *env {
	t.Helper()
	eng := &faultyEngine{Engine: kv.NewMemEngine()}
	f := &fakeLLM{}
	svc, err := agent.New(agent.Config{
		Store: kv.NewDB(wrap(eng)), DefaultModel: "openai/gpt-4o-mini", LLM: fakeResolver{f},
		Runtime: actor.Config{InvokeTimeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &env{t: t, svc: svc, llm: f, eng: eng, ctx: context.Background()}
}

func (e *env) agent(req letta.CreateAgentRequest) *letta.AgentState {
	e.t.Helper()
	st, err := e.svc.Agents.Create(e.ctx, req)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func (e *env) defaultAgent() *letta.AgentState {
	return e.agent(createReq("Tester", "The user is Ada."))
}

func userMsg(text string) letta.MessageRequest {
	return letta.MessageRequest{Messages: []letta.MessageCreate{{Role: "user", Content: json.RawMessage(jsonText(text))}}}
}

func userMsgOtid(text, otid string) letta.MessageRequest {
	r := userMsg(text)
	r.Messages[0].Otid = &otid
	return r
}

// send runs a turn to its end.
func (e *env) send(agentID string, req letta.MessageRequest) *letta.Response {
	e.t.Helper()
	t, err := e.svc.Messages.Send(e.ctx, agentID, "", req)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.wait(t)
}

func (e *env) wait(t *loop.Turn) *letta.Response {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	resp, err := t.Response(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func types(ms []letta.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Base().MessageType
	}
	return out
}

// history lists an agent's messages after its default conversation's
// system message, which an agent's history starts with (see
// TestSystemMessageInContext).
func (e *env) history(agentID string) []letta.Message {
	e.t.Helper()
	ms, err := e.svc.Messages.List(e.ctx, agentID, agent.MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Base().MessageType != letta.TypeSystem {
		e.t.Fatalf("history does not start with the system message: %v", ms)
	}
	return ms[1:]
}

// checkConsistent checks that every tool call in the history is answered
// by exactly one tool result, after it.
func checkConsistent(t *testing.T, ms []letta.Message) {
	t.Helper()
	open := map[string]bool{}
	answered := map[string]int{}
	for _, m := range ms {
		switch m := m.(type) {
		case *letta.ToolCallMessage:
			open[m.ToolCall.ToolCallID] = true
		case *letta.ApprovalRequestMessage:
			open[m.ToolCall.ToolCallID] = true
		case *letta.ToolReturnMessage:
			if !open[m.ToolCallID] {
				t.Errorf("tool result for %s without its call before it", m.ToolCallID)
			}
			answered[m.ToolCallID]++
		}
	}
	for id := range open {
		if answered[id] != 1 {
			t.Errorf("tool call %s has %d results", id, answered[id])
		}
	}
}

func (e *env) block(agentID, label string) string {
	e.t.Helper()
	b, err := e.svc.Agents.Block(e.ctx, agentID, label)
	if err != nil {
		e.t.Fatal(err)
	}
	return b.Value
}

func (e *env) run(runID string) *letta.Run {
	e.t.Helper()
	r, err := e.svc.Runs.Get(e.ctx, runID)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func runIDOf(ms []letta.Message) string {
	for _, m := range ms {
		if r := m.Base().RunID; r != nil {
			return *r
		}
	}
	return ""
}
