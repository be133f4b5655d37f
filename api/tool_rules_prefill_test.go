package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
)

// passageTexts are the texts of an agent's archival passages.
func (c *client) passageTexts(agentID string) []string {
	c.t.Helper()
	var ps []struct {
		Text string `json:"text"`
	}
	c.ok("GET", "/v1/agents/"+agentID+"/archival-memory", "", &ps)
	var out []string
	for _, p := range ps {
		out = append(out, p.Text)
	}
	return out
}

// callArguments are the arguments of the tool_call_messages among a
// turn's messages, by tool name.
func callArguments(t *testing.T, msgs string) map[string]map[string]any {
	t.Helper()
	var ms []struct {
		MessageType string `json:"message_type"`
		ToolCall    struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"tool_call"`
	}
	if err := json.Unmarshal([]byte(msgs), &ms); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, m := range ms {
		if m.MessageType == "tool_call_message" {
			var args map[string]any
			if err := json.Unmarshal([]byte(m.ToolCall.Arguments), &args); err != nil {
				t.Fatalf("arguments of %s: %v", m.ToolCall.Name, err)
			}
			out[m.ToolCall.Name] = args
		}
	}
	return out
}

// Spec: a run_first rule's args override the model's arguments of the
// same name in the turn's first call (the others are the model's): the
// tool runs with them, and the call is stored and shown to the model with
// them, as Letta stores it. A later call of the tool is the model's own.
func TestToolRulePrefilledRunFirstArgs(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(toolCallReply("call_1", "archival_memory_insert", `{"content":"the model's words","tags":["mine"]}`)),
		log.wrap(toolCallReply("call_2", "archival_memory_insert", `{"content":"second, unprefilled"}`)),
		log.wrap(textReply("done")))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"tool_rules":[{"tool_name":"archival_memory_insert","type":"run_first","args":{"content":"the rule's words"}}]}`)
	stop, msgs := c.send(a.ID, "remember")
	if stop != letta.StopEndTurn {
		t.Fatalf("stop %q: %s", stop, msgs)
	}
	got := c.passageTexts(a.ID)
	if strings.Join(got, "|") != "the rule's words|second, unprefilled" && strings.Join(got, "|") != "second, unprefilled|the rule's words" {
		t.Errorf("passages %q", got)
	}
	asked := log.reqs[1].Messages
	var sent string
	for _, m := range asked {
		for _, tc := range m.ToolCalls {
			if tc.ID == "call_1" {
				sent = tc.Arguments
			}
		}
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(sent), &args); err != nil || args["content"] != "the rule's words" || args["tags"] == nil {
		t.Errorf("the model was shown the call as %s", sent)
	}
}

// Spec: right after a constrain_child_tools rule's tool, a child named in
// its child_arg_nodes is called with the node's args over the model's.
func TestToolRulePrefilledChildArgs(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(toolCallReply("call_1", "conversation_search", `{"query":"tea"}`)),
		log.wrap(toolCallReply("call_2", "archival_memory_insert", `{"content":"the model's words"}`)),
		log.wrap(textReply("done")))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"tool_rules":[{"tool_name":"conversation_search","type":"constrain_child_tools","children":["archival_memory_insert"],
		"child_arg_nodes":[{"name":"archival_memory_insert","args":{"content":"from the rule","tags":["ruled"]}}]}]}`)
	stop, msgs := c.send(a.ID, "find tea")
	if stop != letta.StopEndTurn {
		t.Fatalf("stop %q: %s", stop, msgs)
	}
	if got := c.passageTexts(a.ID); len(got) != 1 || got[0] != "from the rule" {
		t.Errorf("passages %q", got)
	}
	if args := callArguments(t, msgs)["archival_memory_insert"]; args["content"] != "from the rule" {
		t.Errorf("stored call arguments %v", args)
	}
	if args := callArguments(t, msgs)["conversation_search"]; args["query"] != "tea" {
		t.Errorf("the parent's arguments changed: %v", args)
	}
	if log.count() != 3 {
		t.Errorf("%d requests, want 3", log.count())
	}
}

// Spec: prefilled args the tool's schema refuses (an unknown name, a
// value of the wrong type) stop the turn with invalid_tool_call; the call
// is not run, and its result is Letta's error naming the rule and each
// problem.
func TestToolRulePrefilledArgsRefused(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(toolCallReply("call_1", "archival_memory_insert", `{"content":"the model's words"}`)),
		log.wrap(textReply("never asked")))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"tool_rules":[{"tool_name":"archival_memory_insert","type":"run_first","args":{"bogus":1,"content":5}}]}`)
	stop, msgs := c.send(a.ID, "remember")
	if stop != letta.StopInvalidToolCall || log.count() != 1 {
		t.Fatalf("stop %q after %d requests: %s", stop, log.count(), msgs)
	}
	want := `Invalid prefilled tool arguments from tool rules (source=InitToolRule(archival_memory_insert)): Unknown argument 'bogus' for tool 'archival_memory_insert'.; Invalid value for 'content': 5 does not match expected schema type 'string'.`
	if !strings.Contains(msgs, want) || !strings.Contains(msgs, `"status":"error"`) {
		t.Errorf("result missing %q: %s", want, msgs)
	}
	if got := c.passageTexts(a.ID); len(got) != 0 {
		t.Errorf("the refused call ran: %q", got)
	}
	var run struct {
		Status string `json:"status"`
	}
	var runs []struct {
		ID string `json:"id"`
	}
	c.ok("GET", "/v1/runs?agent_id="+a.ID, "", &runs)
	if len(runs) != 1 {
		t.Fatalf("runs %v", runs)
	}
	c.ok("GET", "/v1/runs/"+runs[0].ID, "", &run)
	if run.Status != letta.RunFailed {
		t.Errorf("run status %q, want %q", run.Status, letta.RunFailed)
	}
}

// Spec: a child_arg_nodes entry must name one of the rule's children.
func TestToolRuleChildArgNodesMustNameAChild(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	body := c.expect(400, "POST", "/v1/agents", `{"tool_rules":[{"tool_name":"conversation_search","type":"constrain_child_tools","children":["archival_memory_insert"],"child_arg_nodes":[{"name":"send_message","args":{"message":"x"}}]}]}`)
	if !strings.Contains(body, "child_arg_nodes") || !strings.Contains(body, "['archival_memory_insert']") {
		t.Errorf("body %s", body)
	}
}

// Spec: an approved call of a built-in tool (run when the approval reply
// begins the turn) counts as called for the rules, as an approved custom
// tool's call does: right after it, its constrain_child_tools children are
// the only tools offered, and the model must call one.
func TestToolRuleApprovedBuiltinCounts(t *testing.T) {
	p, log := &scripted{}, &requestLog{}
	p.add(log.wrap(toolCallReply("call_1", "archival_memory_insert", `{"content":"approved words"}`)),
		log.wrap(toolCallReply("call_2", "conversation_search", `{"query":"x"}`)),
		log.wrap(textReply("done")))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"tool_rules":[{"tool_name":"archival_memory_insert","type":"requires_approval"},
		{"tool_name":"archival_memory_insert","type":"constrain_child_tools","children":["conversation_search"]}]}`)
	if stop, msgs := c.send(a.ID, "remember"); stop != letta.StopRequiresApproval {
		t.Fatalf("stop %q: %s", stop, msgs)
	}
	var resp turnResponse
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"type":"approval","approvals":[{"type":"approval","tool_call_id":"call_1","approve":true}]}]}`, &resp)
	if resp.StopReason.StopReason != letta.StopEndTurn {
		t.Fatalf("stop %q: %s", resp.StopReason.StopReason, resp.Messages)
	}
	if got := c.passageTexts(a.ID); len(got) != 1 || got[0] != "approved words" {
		t.Errorf("passages %q", got)
	}
	if got := log.offer(1); got != "conversation_search forcing conversation_search" {
		t.Errorf("after the approved call, the model was offered %s", got)
	}
}
