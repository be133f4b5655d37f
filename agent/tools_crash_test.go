package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/internal/mcptest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/mcpclient"
	"github.com/kelpie/kelpie/sandbox"
	"github.com/kelpie/kelpie/schema"
)

// callsTool asks for one call of a tool, then answers in text, keeping
// the last tool result it was sent.
type callsTool struct {
	mu       sync.Mutex
	tool     string
	calls    int
	lastTool string
}

func (p *callsTool) Name() string { return "openai" }

func (p *callsTool) Complete(_ context.Context, req llm.Request, _ func(llm.Delta)) (*llm.Response, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	for _, m := range req.Messages {
		if m.Role == llm.RoleTool {
			p.lastTool = m.Content
		}
	}
	if p.tool != "" && p.calls == 1 {
		return &llm.Response{ToolCalls: []llm.ToolCall{{ID: "call_slow", Name: p.tool, Arguments: `{}`}}, StopReason: llm.StopToolCalls}, nil
	}
	return &llm.Response{Content: "ok", StopReason: llm.StopEndTurn}, nil
}

// Spec (at most once): a server that stops while a custom tool runs
// leaves its call without a result; the agent's next turn answers it with
// an error saying its outcome is unknown, and never runs it again; the
// first server's late result is refused.
func TestCustomToolCutOffIsNotRunTwice(t *testing.T) {
	kelpietest.NeedTool(t, "bwrap")
	box, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store := kv.NewMemDB()
	ctx := context.Background()
	first := &callsTool{tool: "slow"}
	svc1, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", LLM: oneProvider{first}, Tools: box})
	if err != nil {
		t.Fatal(err)
	}
	src := "def slow():\n    \"\"\"Take a while.\"\"\"\n    import time\n    time.sleep(20)\n    return 'done'\n"
	tl, err := svc1.Tools.Upsert(ctx, letta.ToolCreate{SourceCode: &src})
	must(t, err)
	a, err := svc1.Agents.Create(ctx, letta.CreateAgentRequest{ToolIDs: []string{tl.ID}})
	must(t, err)
	_, err = svc1.Messages.Send(ctx, a.ID, "", letta.MessageRequest{Input: json.RawMessage(`"go slow"`)})
	must(t, err)
	// Wait until the step that calls the tool has committed: the tool is
	// running now.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := svc1.Messages.List(ctx, a.ID, agent.MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 100})
		must(t, err)
		if len(h) >= 2 && h[len(h)-1].Base().MessageType == letta.TypeToolCall {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tool call was not committed: %v", msgTypes(h))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The server "crashes": a new one takes over the same store.
	if n := takeOver(t, store, svc1, a.ID, agent.Config{Tools: box}); n != 1 {
		t.Errorf("%d results for the call, want 1", n)
	}
}

// takeOver has a second service (cfg, with its own model) take over store
// while svc1 runs the agent's call call_slow: its activation fences svc1's
// commits. The agent gets a message, whose model must be told the call was
// interrupted; then svc1 stops (its late result refused). It returns how
// many results the call has, and checks the store.
func takeOver(t *testing.T, store kv.Store, svc1 *agent.Service, agentID string, cfg agent.Config) int {
	t.Helper()
	ctx := context.Background()
	second := &callsTool{}
	cfg.Store, cfg.DefaultModel, cfg.LLM = store, "openai/gpt-4o-mini", oneProvider{second}
	svc2, err := agent.New(cfg)
	must(t, err)
	defer svc2.Close(ctx)
	turn, err := svc2.Messages.Send(ctx, agentID, "", letta.MessageRequest{Input: json.RawMessage(`"are you there?"`)})
	must(t, err)
	_, err = turn.Response(ctx)
	must(t, err)
	if !strings.Contains(second.lastTool, "interrupted before it returned; its outcome is unknown") {
		t.Errorf("the model was told %q", second.lastTool)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	must(t, svc1.Close(closeCtx))

	h, err := svc2.Messages.List(ctx, agentID, agent.MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 100})
	must(t, err)
	results := 0
	for _, m := range h {
		if r, ok := m.(*letta.ToolReturnMessage); ok && r.ToolCallID == "call_slow" {
			results++
			if r.Status != "error" {
				t.Errorf("result %+v", r)
			}
		}
	}
	if second.calls != 1 {
		t.Errorf("the second model was called %d times; history %v", second.calls, msgTypes(h))
	}
	checkStore(t, store)
	return results
}

// checkStore fails t if the store breaks a rule of the schema.
func checkStore(t *testing.T, store kv.Store) {
	t.Helper()
	txn, err := store.Begin(context.Background())
	must(t, err)
	defer txn.Discard()
	kvs, err := txn.Scan(kv.Range{Start: []byte{0}}, 0, false)
	must(t, err)
	entries := make([]schema.Entry, len(kvs))
	for i, p := range kvs {
		entries[i] = schema.Entry{Key: p.Key, Value: p.Value}
	}
	for _, p := range schema.Check(entries).Problems {
		t.Errorf("store: %s: %s", p.Object, p.Message)
	}
}

// Spec (at most once, MCP): a server that stops while an MCP tool runs
// leaves its call without a result; the next turn answers it as
// interrupted, and the MCP server never receives the call again.
func TestMCPToolCutOffIsNotCalledTwice(t *testing.T) {
	remote := mcptest.StartHTTP(t, nil)
	client := mcpclient.New(mcpclient.Config{AllowPrivate: true})
	store := kv.NewMemDB()
	ctx := context.Background()
	first := &callsTool{tool: "hang"}
	svc1, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", LLM: oneProvider{first}, MCP: client})
	must(t, err)
	typ, url, name := "streamable_http", remote.URL+"/mcp", "remote"
	srv, err := svc1.MCPServers.Create(ctx, letta.MCPServerRequest{ServerName: &name, Config: &letta.MCPServerConfig{Type: &typ, ServerURL: &url}})
	must(t, err)
	tools, err := svc1.MCPServers.Tools(ctx, srv.ID)
	must(t, err)
	var hang string
	for _, tl := range tools {
		if tl.Name == "hang" {
			hang = tl.ID
		}
	}
	a, err := svc1.Agents.Create(ctx, letta.CreateAgentRequest{ToolIDs: []string{hang}})
	must(t, err)
	_, err = svc1.Messages.Send(ctx, a.ID, "", letta.MessageRequest{Input: json.RawMessage(`"go"`)})
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for remote.Calls("hang") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the MCP server never received the call")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if n := takeOver(t, store, svc1, a.ID, agent.Config{MCP: client}); n != 1 || remote.Calls("hang") != 1 {
		t.Errorf("%d results for the call (want 1), the server got %d calls (want 1)", n, remote.Calls("hang"))
	}
}
