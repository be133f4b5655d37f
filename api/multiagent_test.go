package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

const multiAgentTools = `"send_message_to_agent_and_wait_for_reply","send_message_to_agent_async","send_message_to_agents_matching_tags"`

// crewAgent creates an agent with the multi-agent tools, tags, and a block
// that names it to the model double ("I am <name>").
func (c *client) crewAgent(name string, tags ...string) *letta.AgentState {
	c.t.Helper()
	tagJSON, _ := json.Marshal(append([]string{}, tags...))
	return c.createAgent(fmt.Sprintf(`{"name":%q,"agent_type":"letta_v1_agent","include_base_tools":false,"tools":[%s],"tags":%s,"memory_blocks":[{"label":"persona","value":"I am %s."}]}`,
		name, multiAgentTools, tagJSON, name))
}

// agentMessages are the messages from other agents in an agent's history.
func (c *client) agentMessages(agentID string) []string {
	c.t.Helper()
	var ms []struct {
		MessageType string `json:"message_type"`
		Content     string `json:"content"`
	}
	c.ok("GET", "/v1/agents/"+agentID+"/messages?limit=1000&order=asc", "", &ms)
	var out []string
	for _, m := range ms {
		if m.MessageType == "system_message" && strings.HasPrefix(m.Content, incomingMarker) {
			out = append(out, m.Content)
		}
	}
	return out
}

// Spec: the multi-agent tools run other agents' turns through a real
// turn: a wait for a reply gets the other agent's answer in Letta's shape;
// a message to agents matching tags gets one answer per agent (never the
// sender's own); an async message is delivered with Letta's wrapping and
// answered at once. Each recipient gets the message once.
func TestMultiAgentThroughATurn(t *testing.T) {
	c, double := newDoubleServer(t, Options{})
	double.SetDefault(obedientModel(nil))
	a := c.crewAgent("A", "crew")
	b := c.crewAgent("B", "crew", "night")
	d := c.crewAgent("D", "crew", "day")
	c.crewAgent("E", "other")

	r := c.order(a.ID, "send_message_to_agent_and_wait_for_reply", map[string]string{"message": "ping", "other_agent_id": b.ID})
	text, status := r.toolReturn(t)
	if want := fmt.Sprintf("{'agent_id': '%s', 'response': ['pong']}", b.ID); status != "success" || text != want {
		t.Errorf("wait for reply returned %s %q, want %q", status, text, want)
	}
	got := c.agentMessages(b.ID)
	if want := fmt.Sprintf("[Incoming message from agent with ID '%s' - your response will be delivered to the sender] ping", a.ID); len(got) != 1 || got[0] != want {
		t.Errorf("B got %q, want [%q]", got, want)
	}

	r = c.order(a.ID, "send_message_to_agents_matching_tags", map[string]any{"message": "Roll call", "match_all": []string{"crew"}, "match_some": []string{"night", "day"}})
	text, status = r.toolReturn(t)
	if want := fmt.Sprintf("[{'agent_id': '%s', 'response': ['pong']}, {'agent_id': '%s', 'response': ['pong']}]", b.ID, d.ID); status != "success" || text != want {
		t.Errorf("tagged message returned %s %q, want %q", status, text, want)
	}
	if got := c.agentMessages(d.ID); len(got) != 1 || !strings.HasSuffix(got[0], "] Roll call\nroll call") {
		t.Errorf("D got %q", got)
	}

	r = c.order(a.ID, "send_message_to_agent_async", map[string]string{"message": "fyi: tide at six", "other_agent_id": d.ID})
	if text, status := r.toolReturn(t); status != "success" || text != "Successfully sent message" {
		t.Errorf("async returned %s %q", status, text)
	}
	want := fmt.Sprintf("[Incoming message from agent with ID '%s' - this is a one-way notification; if you need to respond, use an agent-to-agent messaging tool if available] fyi: tide at six", a.ID)
	if got := c.agentMessages(d.ID); len(got) != 2 || got[1] != want {
		t.Errorf("D got %q, want its second to be %q", got, want)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.runsOf(d.ID) != 2 || c.runsActive(d.ID) {
		if time.Now().After(deadline) {
			t.Fatal("D's turn for the async message did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r = c.order(a.ID, "send_message_to_agent_and_wait_for_reply", map[string]string{"message": "hello me", "other_agent_id": a.ID})
	if text, status := r.toolReturn(t); status != "error" || !strings.Contains(text, "cannot send a message to itself") {
		t.Errorf("message to itself: %s %q", status, text)
	}
	r = c.order(a.ID, "send_message_to_agent_async", map[string]string{"message": "hi", "other_agent_id": "agent-00000000-0000-4000-8000-000000000000"})
	if text, status := r.toolReturn(t); status != "error" || !strings.Contains(text, "not found") {
		t.Errorf("message to nobody: %s %q", status, text)
	}
	checkAccepted(t, double)
}

// runsOf counts an agent's runs; runsActive says whether one is running.
func (c *client) runsOf(agentID string) int {
	c.t.Helper()
	var runs []letta.Run
	c.ok("GET", "/v1/runs?agent_id="+agentID, "", &runs)
	return len(runs)
}

func (c *client) runsActive(agentID string) bool {
	c.t.Helper()
	var runs []letta.Run
	c.ok("GET", "/v1/runs?agent_id="+agentID+"&active=true", "", &runs)
	return len(runs) > 0
}

// Spec: agents cannot recurse without end: a message travels at most
// tool.MaxAgentChainDepth agents deep (the agent that would pass it
// further is told so, and no one beyond gets it), and an agent cannot
// wait for the reply of an agent that is itself waiting for it.
func TestMultiAgentRecursionRefused(t *testing.T) {
	c, double := newDoubleServer(t, Options{})
	names := []string{"A", "B", "C", "D", "E"}
	ids := map[string]string{}
	for _, n := range names {
		ids[n] = c.crewAgent(n).ID
	}
	var back atomic.Bool // whether B answers its sender by messaging it back
	double.SetDefault(func(r llmtest.Request) llmtest.Reply {
		return obedientModel(func(sender, _ string) llmtest.Reply {
			me := whoAmI(r)
			to := ""
			switch {
			case back.Load() && me == "B":
				to = sender
			case !back.Load() && me != "E":
				to = ids[names[strings.Index("ABCDE", me)+1]]
			default:
				return llmtest.Reply{Text: "pong"}
			}
			args, _ := json.Marshal(map[string]string{"message": "pass it on", "other_agent_id": to})
			return llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "send_message_to_agent_and_wait_for_reply", Arguments: string(args)}}}
		})(r)
	})
	r := c.order(ids["A"], "send_message_to_agent_and_wait_for_reply", map[string]string{"message": "pass it on", "other_agent_id": ids["B"]})
	text, _ := r.toolReturn(t)
	if want := fmt.Sprintf("would travel %d agents deep, over the limit of %d", tool.MaxAgentChainDepth+1, tool.MaxAgentChainDepth); !strings.Contains(text, want) {
		t.Errorf("A's result %q lacks %q", text, want)
	}
	for n, want := range map[string]int{"B": 1, "C": 1, "D": 1, "E": 0} {
		if got := len(c.agentMessages(ids[n])); got != want {
			t.Errorf("%s got %d messages from agents, want %d", n, got, want)
		}
	}

	back.Store(true)
	r = c.order(ids["A"], "send_message_to_agent_and_wait_for_reply", map[string]string{"message": "ping", "other_agent_id": ids["B"]})
	text, _ = r.toolReturn(t)
	if want := fmt.Sprintf("agent %s is waiting for your reply", ids["A"]); !strings.Contains(text, want) {
		t.Errorf("A's result %q lacks %q", text, want)
	}
	if got := c.agentMessages(ids["A"]); len(got) != 0 {
		t.Errorf("A got messages from agents: %q", got)
	}
	checkAccepted(t, double)
}

// whoAmI reads the agent's name from its persona block in the request.
func whoAmI(r llmtest.Request) string {
	all := r.System
	for _, m := range r.Messages {
		all += m.Content
	}
	if i := strings.Index(all, "I am "); i >= 0 && i+5 < len(all) {
		return all[i+5 : i+6]
	}
	return ""
}
