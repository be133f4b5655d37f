package agent_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// messagesAgent is a model for two agents: the sender's first step asks
// another agent (to) for a reply, with call id call_slow; the other
// agent, given a message from an agent, thinks until its turn is
// cancelled.
type messagesAgent struct {
	mu sync.Mutex
	to string
}

func (p *messagesAgent) Name() string { return "openai" }

func (p *messagesAgent) Complete(ctx context.Context, req llm.Request, _ func(llm.Delta)) (*llm.Response, error) {
	last := req.Messages[len(req.Messages)-1]
	switch {
	case strings.Contains(last.Content, "[Incoming message from agent"):
		<-ctx.Done()
		return nil, ctx.Err()
	case last.Role == llm.RoleUser:
		p.mu.Lock()
		args, _ := json.Marshal(map[string]string{"message": "ping", "other_agent_id": p.to})
		p.mu.Unlock()
		return &llm.Response{ToolCalls: []llm.ToolCall{{ID: "call_slow", Name: "send_message_to_agent_and_wait_for_reply", Arguments: string(args)}}, StopReason: llm.StopToolCalls}, nil
	}
	return &llm.Response{Content: "ok", StopReason: llm.StopEndTurn}, nil
}

// incoming counts the messages from other agents in an agent's history.
func incoming(t *testing.T, svc *agent.Service, agentID string) int {
	t.Helper()
	h, err := svc.Messages.List(context.Background(), agentID, agent.MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 1000})
	must(t, err)
	n := 0
	for _, m := range h {
		if s, ok := m.(*letta.SystemMessage); ok && strings.Contains(s.Content, "[Incoming message from agent") {
			n++
		}
	}
	return n
}

// Spec (at most once, multi-agent): a server that stops while an agent
// waits for another's reply leaves the call without a result; the next
// turn answers it as interrupted, and the other agent has the message
// once: it is never sent again.
func TestAgentMessageCutOffIsNotSentTwice(t *testing.T) {
	store := kv.NewMemDB()
	ctx := context.Background()
	model := &messagesAgent{}
	svc1, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", LLM: oneProvider{model}})
	must(t, err)
	tools := []string{"send_message_to_agent_and_wait_for_reply"}
	no := false
	a, err := svc1.Agents.Create(ctx, letta.CreateAgentRequest{AgentType: new("letta_v1_agent"), IncludeBaseTools: &no, Tools: tools})
	must(t, err)
	b, err := svc1.Agents.Create(ctx, letta.CreateAgentRequest{AgentType: new("letta_v1_agent"), IncludeBaseTools: &no})
	must(t, err)
	model.mu.Lock()
	model.to = b.ID
	model.mu.Unlock()
	_, err = svc1.Messages.Send(ctx, a.ID, "", letta.MessageRequest{Input: json.RawMessage(`"ask B"`)})
	must(t, err)
	// Wait until B has the message: A's call is waiting for B's reply.
	deadline := time.Now().Add(10 * time.Second)
	for incoming(t, svc1, b.ID) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("B never got the message")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if n := takeOver(t, store, svc1, a.ID, agent.Config{}); n != 1 {
		t.Errorf("%d results for the call, want 1", n)
	}
	svc3, err := agent.New(agent.Config{Store: store})
	must(t, err)
	defer svc3.Close(ctx)
	if n := incoming(t, svc3, b.ID); n != 1 {
		t.Errorf("B got the message %d times, want once", n)
	}
}
