package agent

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// pongModel answers every request "pong", counting them.
type pongModel struct{ calls atomic.Int32 }

func (p *pongModel) Name() string { return "openai" }

func (p *pongModel) Complete(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
	p.calls.Add(1)
	return &llm.Response{Content: "pong", StopReason: llm.StopEndTurn}, nil
}

type pongResolver struct{ p llm.Provider }

func (r pongResolver) Resolve(string) (llm.Provider, string, error) { return r.p, "gpt-4o-mini", nil }

// Spec: a message one agent sends another is keyed by the call that sent
// it: sent again with the same key, it starts no second turn and the
// reply is the first turn's; with another key it is a new message.
func TestAgentMessageKeyedByCall(t *testing.T) {
	model := &pongModel{}
	svc, err := New(Config{Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini", LLM: pongResolver{model}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	ctx := context.Background()
	no := false
	b, err := svc.Agents.Create(ctx, letta.CreateAgentRequest{AgentType: new("letta_v1_agent"), IncludeBaseTools: &no})
	if err != nil {
		t.Fatal(err)
	}
	m := agentMessenger{svc.core}
	from := "agent-00000000-0000-4000-8000-00000000000a"
	for i, key := range []string{"k1", "k1", "k2"} {
		replies, err := m.Message(ctx, from, b.ID, key, "[Incoming message from agent with ID 'x'] hi", true, false)
		if err != nil || !slices.Equal(replies, []string{"pong"}) {
			t.Fatalf("message %d: %q, %v", i, replies, err)
		}
	}
	if n := model.calls.Load(); n != 2 {
		t.Errorf("the model was called %d times for two distinct messages", n)
	}
	h, err := svc.Messages.List(ctx, b.ID, MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	received := 0
	for _, msg := range h {
		if s, ok := msg.(*letta.SystemMessage); ok && strings.HasPrefix(s.Content, "[Incoming message") {
			received++
			if s.SenderID == nil || *s.SenderID != from {
				t.Errorf("message %+v, want sender_id %s", s, from)
			}
		}
	}
	if received != 2 {
		t.Errorf("B has %d messages from agents, want 2", received)
	}
}
