package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// requestLog records the requests a scripted model receives.
type requestLog struct {
	mu   sync.Mutex
	reqs []llm.Request
}

// wrap records each request before answering it with reply.
func (l *requestLog) wrap(reply func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error)) func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
	return func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
		l.mu.Lock()
		l.reqs = append(l.reqs, req)
		l.mu.Unlock()
		return reply(ctx, req, d)
	}
}

// offer is the i-th request's tools and tool choice, as "a,b forcing c".
func (l *requestLog) offer(i int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i >= len(l.reqs) {
		return fmt.Sprintf("no request %d (%d made)", i, len(l.reqs))
	}
	var names []string
	for _, tl := range l.reqs[i].Tools {
		names = append(names, tl.Name)
	}
	return strings.Join(names, ",") + " forcing " + l.reqs[i].ToolChoice
}

func (l *requestLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.reqs)
}

// send posts a user message to the agent and returns the turn's stop
// reason and messages.
func (c *client) send(agentID, text string) (string, string) {
	c.t.Helper()
	var resp turnResponse
	c.ok("POST", "/v1/agents/"+agentID+"/messages", fmt.Sprintf(`{"messages":[{"role":"user","content":%q}]}`, text), &resp)
	return resp.StopReason.StopReason, string(resp.Messages)
}

// Spec: right after a constrain_child_tools tool the model is offered
// (and must call) only its children; a call of another tool is not run
// and is answered with Letta's [ToolConstraintError] result naming the
// tools allowed and hinting at the rule, and the turn goes on with the
// same offer; the system prompt states the rule.
func TestToolRuleChildRefusesOtherTools(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(toolCallReply("call_1", "conversation_search", `{"query":"tea"}`)),
		log.wrap(toolCallReply("call_2", "archival_memory_insert", `{"content":"likes tea"}`)),
		log.wrap(toolCallReply("call_3", "archival_memory_search", `{"query":"tea"}`)),
		log.wrap(textReply("done")))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"tool_rules":[{"tool_name":"conversation_search","type":"constrain_child_tools","children":["archival_memory_search"]}]}`)
	stop, msgs := c.send(a.ID, "find tea")
	if stop != letta.StopEndTurn || log.count() != 4 {
		t.Fatalf("stop %q after %d requests: %s", stop, log.count(), msgs)
	}
	for _, i := range []int{1, 2} {
		if got := log.offer(i); got != "archival_memory_search forcing archival_memory_search" {
			t.Errorf("request %d offered %s", i, got)
		}
	}
	if got := log.offer(3); !strings.Contains(got, "archival_memory_insert") || !strings.HasSuffix(got, " forcing ") {
		t.Errorf("after the child, request offered %s", got)
	}
	want := `[ToolConstraintError] Cannot call archival_memory_insert, valid tools include: ['archival_memory_search'].\n** Hint: Possible rules that were violated:\n\t- <tool_rule>\nAfter using conversation_search, you must use one of these tools: archival_memory_search\n</tool_rule>`
	if !strings.Contains(msgs, want) { // want is as the JSON escapes it
		t.Errorf("refused call's result missing: %s", msgs)
	}
	var ps []any
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory", "", &ps)
	if len(ps) != 0 {
		t.Errorf("the refused insert ran: %d passages", len(ps))
	}
	if sys := log.reqs[0].Messages[0].Content; !strings.Contains(sys, "<tool_usage_rules>\nThe following constraints define rules for tool usage") ||
		!strings.Contains(sys, "After using conversation_search, you must use one of these tools: archival_memory_search") {
		t.Errorf("system prompt does not state the rules:\n%s", sys)
	}
}

// Spec: a tool called max_count_per_step times leaves the offer, and a
// further call of it is refused, not run.
func TestToolRuleMaxCountRefusesExtraCall(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(toolCallReply("call_1", "archival_memory_insert", `{"content":"one"}`)),
		log.wrap(toolCallReply("call_2", "archival_memory_insert", `{"content":"two"}`)),
		log.wrap(textReply("done")))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"tool_rules":[{"tool_name":"archival_memory_insert","type":"max_count_per_step","max_count_limit":1}]}`)
	stop, msgs := c.send(a.ID, "remember")
	if stop != letta.StopEndTurn || !strings.Contains(msgs, "[ToolConstraintError] Cannot call archival_memory_insert") {
		t.Fatalf("stop %q: %s", stop, msgs)
	}
	if strings.Contains(log.offer(1), "archival_memory_insert") {
		t.Errorf("second request still offered the used-up tool: %s", log.offer(1))
	}
	var ps []any
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory", "", &ps)
	if len(ps) != 1 {
		t.Errorf("%d passages, want 1", len(ps))
	}
}

// Spec: a turn does not end while a required_before_exit tool is
// uncalled: an answer without a tool is followed by Letta's reminder (a
// user message the model sees next) and another step; once the tool was
// called, an answer ends the turn.
func TestToolRuleRequiredBeforeExit(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(textReply("all done")),
		log.wrap(toolCallReply("call_1", "archival_memory_insert", `{"content":"saved"}`)),
		log.wrap(textReply("now done")))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"tool_rules":[{"tool_name":"archival_memory_insert","type":"required_before_exit"}]}`)
	stop, msgs := c.send(a.ID, "hello")
	if stop != letta.StopEndTurn || log.count() != 3 {
		t.Fatalf("stop %q after %d requests: %s", stop, log.count(), msgs)
	}
	reason := "[This is an automated system message hidden from the user] ToolRuleViolated: You must call archival_memory_insert at least once to exit the loop."
	last := log.reqs[1].Messages[len(log.reqs[1].Messages)-1]
	if last.Role != llm.RoleUser || !strings.Contains(last.Content, `"type": "heartbeat", "reason": "`+reason+`"`) {
		t.Errorf("the model was not reminded: %+v", last)
	}
	if !strings.Contains(msgs, `"message_type":"user_message"`) || !strings.Contains(msgs, "ToolRuleViolated") {
		t.Errorf("the reminder is not among the turn's messages: %s", msgs)
	}
	// Called in this turn: the next turn must call it again.
	p.add(log.wrap(textReply("bye")), log.wrap(toolCallReply("call_2", "archival_memory_insert", `{"content":"again"}`)), log.wrap(textReply("bye")))
	if stop, _ := c.send(a.ID, "again"); stop != letta.StopEndTurn || log.count() != 6 {
		t.Errorf("second turn: stop %q after %d requests", stop, log.count())
	}
}

// Spec: a required_before_exit tool keeps a turn going past an exit_loop
// call; once called, the exit_loop tool ends it with stop reason
// tool_rule.
func TestToolRuleRequiredOverridesExit(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(toolCallReply("call_1", "conversation_search", `{"query":"x"}`)),
		log.wrap(toolCallReply("call_2", "archival_memory_insert", `{"content":"saved"}`)),
		log.wrap(toolCallReply("call_3", "conversation_search", `{"query":"y"}`)),
		log.wrap(textReply("never asked")))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"tool_rules":[{"tool_name":"conversation_search","type":"exit_loop"},{"tool_name":"archival_memory_insert","type":"required_before_exit"}]}`)
	if stop, msgs := c.send(a.ID, "hello"); stop != letta.StopToolRule || log.count() != 3 {
		t.Fatalf("stop %q after %d requests: %s", stop, log.count(), msgs)
	}
}

// Spec: continue_loop keeps the turn of a MemGPT agent going after a
// send_message call, which otherwise ends it.
func TestToolRuleContinueLoop(t *testing.T) {
	for _, rule := range []bool{false, true} {
		p, log := &scripted{}, &requestLog{}
		p.add(log.wrap(toolCallReply("call_1", "send_message", `{"message":"hi"}`)),
			log.wrap(toolCallReply("call_2", "send_message", `{"message":"and more"}`)),
			log.wrap(textReply("never asked")))
		c, _ := newTurnServer(t, p, Options{})
		rules := "[]"
		if rule {
			rules = `[{"tool_name":"send_message","type":"continue_loop"}]`
		}
		a := c.createAgent(`{"agent_type":"memgpt_agent","tool_rules":` + rules + `}`)
		stop, msgs := c.send(a.ID, "hello")
		want := 1
		if rule {
			want = 3
		}
		if stop != letta.StopEndTurn || log.count() != want {
			t.Errorf("continue_loop %v: stop %q after %d requests, want %d: %s", rule, stop, log.count(), want, msgs)
		}
	}
}

// Spec: right after a conditional rule's tool, the model is offered only
// the child its output maps to (the default child when none matches).
func TestToolRuleConditional(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(toolCallReply("call_1", "flip", `{"side":"tails"}`)),
		log.wrap(toolCallReply("call_2", "conversation_search", `{"query":"x"}`)),
		log.wrap(textReply("done")),
		log.wrap(toolCallReply("call_3", "flip", `{"side":"heads"}`)),
		log.wrap(toolCallReply("call_4", "archival_memory_insert", `{"content":"won"}`)),
		log.wrap(textReply("done")),
		log.wrap(toolCallReply("call_5", "flip", `{"side":"edge"}`)),
		log.wrap(toolCallReply("call_6", "archival_memory_search", `{"query":"won"}`)),
		log.wrap(textReply("done")))
	c, _ := newTurnServer(t, p, Options{}, withSandbox(t))
	tl := c.createTool(sourceBody("def flip(side: str) -> str:\n    \"\"\"Flip a coin.\n\n    Args:\n        side: The side it lands on.\n    \"\"\"\n    return side\n", ""))
	a := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q],"tool_rules":[{"tool_name":"flip","type":"conditional",
		"child_output_mapping":{"heads":"archival_memory_insert","tails":"conversation_search"},"default_child":"archival_memory_search"}]}`, tl.ID))
	for turn, want := range []string{"conversation_search", "archival_memory_insert", "archival_memory_search"} {
		if stop, msgs := c.send(a.ID, "flip"); stop != letta.StopEndTurn {
			t.Fatalf("turn %d: stop %q: %s", turn, stop, msgs)
		}
		if got := log.offer(3*turn + 1); got != want+" forcing "+want {
			t.Errorf("turn %d: after flip the model was offered %s, want only %s", turn, got, want)
		}
	}
	if !slices.Contains(strings.Split(strings.Fields(log.offer(2))[0], ","), "flip") {
		t.Errorf("after the child the offer stayed narrowed: %s", log.offer(2))
	}
}
