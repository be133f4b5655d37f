package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// serveStore serves an agent service over store against double until the
// returned stop is called (or the test ends).
func serveStore(t *testing.T, store kv.Store, double *llmtest.Server) (c *client, stop func()) {
	t.Helper()
	svc, err := agent.New(agent.Config{Store: store, DefaultModel: "openai/gpt-4o-mini", LLM: double.Registry(), LLMRetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(svc, Options{Logger: quietLogger()}))
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	t.Cleanup(stop)
	return &client{t: t, base: srv.URL, header: http.Header{}}, stop
}

// systemInputs returns the contents of the system-role messages of a model
// request after its first (the system prompt).
func systemInputs(r llmtest.Request) []string {
	var out []string
	for i, m := range r.Messages {
		if i > 0 && m.Role == "system" {
			out = append(out, m.Content)
		}
	}
	return out
}

// Spec: a system-role MessageCreate is stored as it was sent (Letta's
// create_input_messages does not wrap it) and is in the agent's context:
// the model gets it as a system message in its place in the history (not
// as the system prompt), in this turn and after a restart, and it leaves
// the context by compaction like any message (its text goes to the
// summarizer).
func TestSystemInputReachesTheModel(t *testing.T) {
	store := kv.NewMemDB()
	double := llmtest.NewServer(t)
	c, stop := serveStore(t, store, double)
	a := c.createAgent(`{"name":"sys-input","memory_blocks":[{"label":"human","value":"Ada"}]}`)
	const note = "NOTE: the user is on call tonight."

	double.Script(llmtest.Reply{Text: "Understood."})
	var resp map[string]any
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"system","content":"`+note+`"},{"role":"user","content":"hi"}]}`, &resp)
	first := double.LastRequest()
	if got := systemInputs(first); !slices.Equal(got, []string{note}) {
		t.Fatalf("system inputs in the model's request: %q, want [%q]; messages: %+v", got, note, first.Messages)
	}
	if strings.Contains(first.Messages[0].Content, note) {
		t.Errorf("the system input was put in the system prompt")
	}
	if i := slices.IndexFunc(first.Messages, func(m llmtest.Message) bool { return m.Content == note }); i+1 >= len(first.Messages) || first.Messages[i+1].Content != "hi" {
		t.Errorf("the system input is not just before the user's message: %+v", first.Messages)
	}
	var hist []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages?order=asc&limit=100", "", &hist)
	var sysID string
	for _, m := range hist {
		if m["message_type"] == "system_message" && m["content"] == note {
			sysID, _ = m["id"].(string)
		}
	}
	if sysID == "" {
		t.Fatalf("no system_message %q in the history: %v", note, hist)
	}
	if ids := c.getAgent(a.ID).MessageIDs; !slices.Contains(ids[1:], sysID) {
		t.Errorf("in-context ids %v lack the system input %s", ids, sysID)
	}
	checkStore(t, store)

	stop()
	c, _ = serveStore(t, store, double)
	double.Script(llmtest.Reply{Text: "Still here."})
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"are you there?"}`, &resp)
	if got := systemInputs(double.LastRequest()); !slices.Equal(got, []string{note}) {
		t.Errorf("after a restart, system inputs in the model's request: %q", got)
	}

	double.Script(llmtest.Reply{Text: "The user said hi; a system note says they are on call."})
	c.ok("POST", "/v1/conversations/default/compact", `{"agent_id":"`+a.ID+`","compaction_settings":{"mode":"all"}}`, nil)
	if summarizer := double.LastRequest(); !strings.Contains(mustJSON(summarizer.Messages), note) {
		t.Errorf("the summarizer was not shown the system input: %+v", summarizer.Messages)
	}
	if ids := c.getAgent(a.ID).MessageIDs; slices.Contains(ids, sysID) {
		t.Errorf("after compacting everything, the system input %s is still in context: %v", sysID, ids)
	}
	double.Script(llmtest.Reply{Text: "Yes."})
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"and now?"}`, &resp)
	if got := systemInputs(double.LastRequest()); len(got) != 0 {
		t.Errorf("after compaction, system inputs still sent: %q", got)
	}
	checkAccepted(t, double)
	checkStore(t, store)
}
