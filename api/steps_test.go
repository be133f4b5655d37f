package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// Spec: POST /v1/agents/{id}/messages/async answers the run at once (its
// turn goes on in the background) and the run is pollable until it ends;
// its steps are listed with their usage, timing and messages, through
// /v1/runs/{id}/steps and /v1/steps.
func TestAsyncMessagesAndSteps(t *testing.T) {
	p := &scripted{}
	release := make(chan struct{})
	p.add(func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
		<-release // the run is answered before the model is
		return toolCallReply("call_1", "memory_insert", `{"label":"human","new_str":"Likes tea."}`)(ctx, req, d)
	}, textReply("Noted."))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"stepper","memory_blocks":[{"label":"human","value":"Ada"}]}`)

	var run letta.Run
	c.ok("POST", "/v1/agents/"+a.ID+"/messages/async", `{"messages":[{"role":"user","content":"I like tea"}]}`, &run)
	if run.Status != letta.RunRunning && run.Status != letta.RunCreated {
		t.Fatalf("async run answered as %s", run.Status)
	}
	if run.Background == nil || !*run.Background {
		t.Errorf("async run not marked background: %+v", run)
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for run.Status != letta.RunCompleted {
		if time.Now().After(deadline) {
			t.Fatalf("run still %s", run.Status)
		}
		time.Sleep(10 * time.Millisecond)
		c.ok("GET", "/v1/runs/"+run.ID, "", &run)
	}

	var steps []letta.Step
	c.ok("GET", "/v1/runs/"+run.ID+"/steps?order=asc", "", &steps)
	if len(steps) != 2 {
		t.Fatalf("%d steps, want 2: %+v", len(steps), steps)
	}
	if s := steps[0]; s.PromptTokens != 100 || s.CompletionTokens != 20 || s.TotalTokens != 120 || *s.RunID != run.ID || *s.AgentID != a.ID || *s.Model != "gpt-4o-mini" {
		t.Errorf("step 1: %+v", s)
	}
	if s := steps[1]; s.CompletionTokens != 10 || s.StopReason == nil || *s.StopReason != "end_turn" {
		t.Errorf("step 2: %+v", s)
	}
	var one letta.Step
	c.ok("GET", "/v1/steps/"+steps[0].ID, "", &one)
	if one.ID != steps[0].ID {
		t.Errorf("retrieve: %+v", one)
	}
	var metrics letta.StepMetrics
	c.ok("GET", "/v1/steps/"+steps[0].ID+"/metrics", "", &metrics)
	if metrics.StepStartNS == nil || metrics.LLMRequestNS == nil || metrics.StepNS == nil {
		t.Errorf("metrics: %+v", metrics)
	}
	var msgs []map[string]any
	c.ok("GET", "/v1/steps/"+steps[0].ID+"/messages", "", &msgs)
	if len(msgs) != 2 || msgs[0]["message_type"] != "tool_call_message" || msgs[1]["message_type"] != "tool_return_message" {
		t.Errorf("step 1's messages: %v", msgs)
	}
	c.ok("PATCH", "/v1/steps/"+steps[1].ID+"/feedback", `{"feedback":"positive"}`, &one)
	if one.Feedback == nil || *one.Feedback != "positive" {
		t.Errorf("feedback: %+v", one)
	}
	var all []letta.Step
	c.ok("GET", "/v1/steps?agent_id="+a.ID+"&has_feedback=true", "", &all)
	if len(all) != 1 || all[0].ID != steps[1].ID {
		t.Errorf("steps with feedback: %+v", all)
	}
	c.ok("GET", "/v1/steps?limit=1&order=asc", "", &all)
	if len(all) != 1 || all[0].ID != steps[0].ID {
		t.Errorf("first step: %+v", all)
	}
	// Runs filters: background, stop_reason, agent_ids, ascending.
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"again"}]}`, nil)
	for q, want := range map[string]int{
		"background=true": 1, "background=false": 1, "stop_reason=end_turn": 2, "stop_reason=max_steps": 0,
		"agent_ids=" + a.ID: 2, "agent_ids=agent-00000000-0000-4000-8000-000000000000": 0, "ascending=true&limit=1": 1,
	} {
		var runs []letta.Run
		c.ok("GET", "/v1/runs?"+q, "", &runs)
		if len(runs) != want {
			t.Errorf("runs?%s: %d runs, want %d", q, len(runs), want)
		}
	}
	var desc, asc []letta.Run
	c.ok("GET", "/v1/runs", "", &desc)
	c.ok("GET", "/v1/runs?ascending=true", "", &asc)
	if len(desc) != 2 || len(asc) != 2 || asc[0].ID != desc[1].ID {
		t.Errorf("ascending=true did not reverse the listing: %v then %v", desc, asc)
	}
	// Traces, as a self-hosted Letta answers by default.
	if r := c.do("GET", "/v1/steps/"+steps[0].ID+"/trace", ""); r.status != 200 || string(r.body) != "null" {
		t.Errorf("step trace: %d %s", r.status, r.body)
	}
	if r := c.do("GET", "/v1/runs/"+run.ID+"/trace", ""); r.status != 501 || r.header.Get("X-Should-Retry") != "false" {
		t.Errorf("run trace: %d %s", r.status, r.body)
	}
	c.expect(http.StatusNotFound, "GET", "/v1/steps/step-00000000-0000-4000-8000-000000000000", "")
	c.expect(http.StatusBadRequest, "PATCH", "/v1/steps/"+steps[1].ID+"/feedback", `{"feedback":"meh"}`)
	c.expect(http.StatusNotFound, "POST", "/v1/agents/agent-00000000-0000-4000-8000-000000000000/messages/async", `{"messages":[{"role":"user","content":"x"}]}`)
}

// Spec: initial_message_sequence starts a new agent's context after its
// system message; the model is sent them at the first turn (a system one
// as a system message). A role other than user, system or assistant is
// refused and nothing is created.
func TestInitialMessageSequence(t *testing.T) {
	p := &scripted{}
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"seeded","initial_message_sequence":[{"role":"user","content":"My name is Ada."},{"role":"assistant","content":[{"type":"text","text":"Hello Ada."}]},{"role":"system","content":"Ada is on call."}]}`)
	if len(a.MessageIDs) != 4 {
		t.Fatalf("context %v, want the system message and 3 initial ones", a.MessageIDs)
	}
	var got letta.AgentState
	c.ok("GET", "/v1/agents/"+a.ID, "", &got)
	if len(got.MessageIDs) != 4 || got.MessageIDs[3] != a.MessageIDs[3] {
		t.Errorf("read context %v, created %v", got.MessageIDs, a.MessageIDs)
	}
	var seen []llm.Message
	p.add(func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
		seen = req.Messages
		return textReply("ok")(ctx, req, d)
	})
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"Who am I?"}]}`, nil)
	if len(seen) != 5 || seen[1].Content != "My name is Ada." || seen[2].Content != "Hello Ada." || seen[3].Role != llm.RoleSystem || seen[3].Content != "Ada is on call." {
		t.Errorf("the model was sent %+v", seen)
	}
	before := c.snapshot()
	c.expect(http.StatusBadRequest, "POST", "/v1/agents", `{"name":"bad","initial_message_sequence":[{"role":"tool","content":"x"}]}`)
	if c.snapshot() != before {
		t.Error("a refused create changed what is stored")
	}
}

// Spec: GET /v1/messages lists messages across agents, newest first by
// default, pages by message id cursors, and narrows to a conversation.
func TestListAllMessages(t *testing.T) {
	p := &scripted{}
	c, _ := newTurnServerAt(t, p, &stepClock{t: testNow}, Options{})
	a := c.createAgent(`{"name":"one"}`)
	b := c.createAgent(`{"name":"two"}`)
	p.add(textReply("to one"), textReply("to two"))
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"hi one"}]}`, nil)
	c.ok("POST", "/v1/agents/"+b.ID+"/messages", `{"messages":[{"role":"user","content":"hi two"}]}`, nil)

	var all []map[string]any
	c.ok("GET", "/v1/messages?limit=100", "", &all)
	var texts []string
	for _, m := range all {
		if s, ok := m["content"].(string); ok && m["message_type"] != "system_message" {
			texts = append(texts, s)
		}
	}
	if got := strings.Join(texts, "|"); got != "to two|hi two|to one|hi one" {
		t.Errorf("newest first: %s", got)
	}
	if len(all) != 6 {
		t.Errorf("%d messages, want 2 system, 2 user, 2 assistant", len(all))
	}
	var page []map[string]any
	c.ok("GET", "/v1/messages?limit=2&after="+all[1]["id"].(string), "", &page)
	if len(page) != 2 || page[0]["id"] != all[2]["id"] || page[1]["id"] != all[3]["id"] {
		t.Errorf("the page after %s: %v", all[1]["id"], page)
	}
	var asc []map[string]any
	c.ok("GET", "/v1/messages?order=asc&limit=100", "", &asc)
	if len(asc) != 6 || asc[0]["id"] != all[5]["id"] {
		t.Errorf("oldest first: %v", asc)
	}
	var conv letta.Conversation
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, `{}`, &conv)
	p.add(textReply("in conv"))
	c.ok("POST", "/v1/conversations/"+conv.ID+"/messages", `{"streaming":false,"messages":[{"role":"user","content":"hello conv"}]}`, nil)
	c.ok("GET", "/v1/messages?conversation_id="+conv.ID, "", &page)
	for _, m := range page {
		if m["message_type"] == "user_message" && m["content"] != "hello conv" {
			t.Errorf("conversation listing has %v", m)
		}
	}
	c.expect(http.StatusNotFound, "GET", "/v1/messages?conversation_id=conv-00000000-0000-4000-8000-000000000000", "")
}

// stepClock advances a millisecond at every reading, so that writes are
// ordered in time.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}
func (c *stepClock) NewTicker(d time.Duration) clock.Ticker { return clock.Real{}.NewTicker(d) }
func (c *stepClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Spec: a background run started by /messages/async is cancelled by each
// of Letta's cancel routes: the agent's (with its run id), the
// conversation's and the run's own; the run then reads as cancelled.
func TestCancelAsyncRuns(t *testing.T) {
	p := &scripted{}
	block := func(ctx context.Context, _ llm.Request, _ func(llm.Delta)) (*llm.Response, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	p.add(block, block, block)
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"patient"}`)
	for _, cancel := range []func(run letta.Run){
		func(run letta.Run) {
			c.ok("POST", "/v1/agents/"+a.ID+"/messages/cancel", `{"run_ids":["`+run.ID+`"]}`, nil)
		},
		func(letta.Run) { c.ok("POST", "/v1/conversations/"+a.ID+"/cancel", "", nil) },
		func(run letta.Run) { c.ok("POST", "/v1/runs/"+run.ID+"/cancel", "", nil) },
	} {
		var run letta.Run
		c.ok("POST", "/v1/agents/"+a.ID+"/messages/async", `{"messages":[{"role":"user","content":"wait"}]}`, &run)
		cancel(run)
		deadline := time.Now().Add(10 * time.Second)
		for run.Status != letta.RunCancelled {
			if time.Now().After(deadline) {
				t.Fatalf("run %s still %s after its cancel", run.ID, run.Status)
			}
			time.Sleep(10 * time.Millisecond)
			c.ok("GET", "/v1/runs/"+run.ID, "", &run)
		}
	}
}
