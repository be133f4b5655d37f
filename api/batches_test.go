package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// Spec: POST /v1/messages/batches runs each agent's request in the
// background and answers the batch job, running; it is listed while
// running, read as completed once every run has ended, and its messages
// (Letta's stored shape) are those of its runs, by agent if asked. A bad
// batch (no requests, a missing agent, a bad request) starts nothing.
// Cancelling marks the batch cancelled and cancels its runs.
func TestMessageBatches(t *testing.T) {
	release := make(chan struct{})
	held := heldReply(release)
	p := &scripted{}
	p.add(held, held, held, held)
	var store kv.Store
	c, _ := newTurnServer(t, p, Options{}, func(cfg *agent.Config) { store = cfg.Store })
	a := c.createAgent(`{"name":"a"}`)
	b := c.createAgent(`{"name":"b"}`)
	msg := func(agentID, text string) string {
		return `{"agent_id":"` + agentID + `","messages":[{"role":"user","content":"` + text + `"}]}`
	}

	countRuns := func() int {
		var rs []letta.Run
		c.ok("GET", "/v1/runs?limit=1000", "", &rs)
		return len(rs)
	}
	before := countRuns()
	c.expect(http.StatusBadRequest, "POST", "/v1/messages/batches", `{"requests":[]}`)
	c.expect(http.StatusUnprocessableEntity, "POST", "/v1/messages/batches", `{}`)
	c.expect(http.StatusUnprocessableEntity, "POST", "/v1/messages/batches", `{"requests":[{"messages":[]}]}`)
	c.expect(http.StatusNotFound, "POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "hi")+`,`+msg("agent-00000000-0000-4000-8000-000000000000", "hi")+`]}`)
	c.expect(http.StatusBadRequest, "POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "hi")+`,{"agent_id":"`+b.ID+`","messages":[{"content":"x"}]}]}`)
	// callback_url is a URL (Letta's HttpUrl: 422 otherwise), public
	// unless the operator allows more.
	c.expect(http.StatusUnprocessableEntity, "POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "hi")+`],"callback_url":"not a url"}`)
	c.expect(http.StatusUnprocessableEntity, "POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "hi")+`],"callback_url":"ftp://example.com/x"}`)
	c.expect(http.StatusBadRequest, "POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "hi")+`],"callback_url":"http://127.0.0.1:9/done"}`)
	if n := countRuns(); n != before {
		t.Fatalf("refused batches started %d runs", n-before)
	}

	var job letta.BatchJob
	c.ok("POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "hello a")+`,`+msg(b.ID, "hello b")+`]}`, &job)
	if !strings.HasPrefix(job.ID, "job-") || job.Status != letta.RunRunning || job.JobType != "batch" {
		t.Fatalf("created %+v", job)
	}
	var list []letta.BatchJob
	c.ok("GET", "/v1/messages/batches", "", &list)
	if len(list) != 1 || list[0].ID != job.ID {
		t.Errorf("running batches %+v", list)
	}
	close(release)
	for deadline := time.Now().Add(10 * time.Second); job.Status != letta.RunCompleted; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("batch still %s", job.Status)
		}
		c.ok("GET", "/v1/messages/batches/"+job.ID, "", &job)
	}
	if job.CompletedAt == nil {
		t.Errorf("completed batch without completed_at: %+v", job)
	}
	c.ok("GET", "/v1/messages/batches", "", &list)
	if len(list) != 0 {
		t.Errorf("a completed batch is listed: %+v", list)
	}
	var ms letta.BatchMessages
	c.ok("GET", "/v1/messages/batches/"+job.ID+"/messages?order=asc", "", &ms)
	if len(ms.Messages) != 4 {
		t.Fatalf("batch messages: %+v", ms.Messages)
	}
	c.ok("GET", "/v1/messages/batches/"+job.ID+"/messages?agent_id="+b.ID, "", &ms)
	if len(ms.Messages) != 2 || ms.Messages[0].Role != "assistant" || !strings.Contains(string(ms.Messages[1].Content), "hello b") {
		t.Errorf("b's batch messages, newest first: %+v", ms.Messages)
	}

	// A retry with the request's Idempotency-Key answers the same batch,
	// starting no run.
	var first, again letta.BatchJob
	body := `{"requests":[` + msg(b.ID, "once") + `]}`
	c.ok("POST", "/v1/messages/batches", body, &first, "Idempotency-Key", "batch-1")
	n := countRuns()
	c.ok("POST", "/v1/messages/batches", body, &again, "Idempotency-Key", "batch-1")
	if again.ID != first.ID || countRuns() != n {
		t.Errorf("retried batch %s (first %s), runs %d then %d", again.ID, first.ID, n, countRuns())
	}

	var other letta.BatchJob
	c.ok("POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "again")+`]}`, &other)
	r := c.do("PATCH", "/v1/messages/batches/"+other.ID+"/cancel", "")
	if r.status != http.StatusOK || string(r.body) != "null" {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	c.ok("GET", "/v1/messages/batches/"+other.ID, "", &other)
	if other.Status != letta.RunCancelled {
		t.Errorf("cancelled batch is %s", other.Status)
	}
	c.expect(http.StatusNotFound, "GET", "/v1/messages/batches/job-00000000-0000-4000-8000-000000000000", "")
	c.expect(http.StatusNotFound, "GET", "/v1/messages/batches/nope", "")
	checkStore(t, store)
}

// Spec: a request of a batch whose run cannot start (its agent busy) is
// recorded in the batch as failed, named in its metadata, while the
// others run; the batch completes when the runs that started end (failed
// when none did), and only then is its callback URL called, once, with
// Letta's body; the answer's status code (or the call's error) is shown on
// the batch. A cancelled batch is not called back.
func TestBatchFailedRequestsAndCallback(t *testing.T) {
	release := make(chan struct{})
	held := heldReply(release)
	p := &scripted{}
	p.add(held, held)
	var store kv.Store
	c, svc := newTurnServer(t, p, Options{}, func(cfg *agent.Config) {
		store = cfg.Store
		cfg.Callbacks = agent.NewCallbacks(true)
	})
	calls := make(chan map[string]any, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Method != http.MethodPost {
			t.Errorf("callback %s: %v", r.Method, err)
		}
		calls <- body
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(receiver.Close)
	a := c.createAgent(`{"name":"a"}`)
	b := c.createAgent(`{"name":"b"}`)
	msg := func(agentID, text string) string {
		return `{"agent_id":"` + agentID + `","messages":[{"role":"user","content":"` + text + `"}]}`
	}
	var busy letta.Run
	c.ok("POST", "/v1/agents/"+a.ID+"/messages/async", `{"messages":[{"role":"user","content":"first"}]}`, &busy)

	var job letta.BatchJob
	c.ok("POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "for a")+`,`+msg(b.ID, "for b")+`],"callback_url":"`+receiver.URL+`/done"}`, &job)
	failed, _ := job.Metadata["failed_requests"].([]any)
	if job.Status != letta.RunRunning || len(failed) != 1 || failed[0].(map[string]any)["agent_id"] != a.ID {
		t.Fatalf("batch with a busy agent: %+v", job)
	}
	var ms letta.BatchMessages
	c.ok("GET", "/v1/messages/batches/"+job.ID+"/messages?order=asc", "", &ms)
	if len(ms.Messages) != 1 || ms.Messages[0].AgentID == nil || *ms.Messages[0].AgentID != b.ID {
		t.Errorf("messages of a batch with a failed request: %+v", ms.Messages)
	}
	select {
	case body := <-calls:
		t.Fatalf("called back before the batch ended: %v", body)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	var body map[string]any
	select {
	case body = <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
	if body["job_id"] != job.ID || body["status"] != letta.RunCompleted || body["completed_at"] == nil ||
		body["metadata"].(map[string]any)["job_type"] != "batch_messages" {
		t.Errorf("callback body %v", body)
	}
	for deadline := time.Now().Add(10 * time.Second); job.CallbackStatusCode == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("callback not recorded: %+v", job)
		}
		c.ok("GET", "/v1/messages/batches/"+job.ID, "", &job)
	}
	if job.Status != letta.RunCompleted || *job.CallbackStatusCode != http.StatusAccepted || job.CallbackSentAt == nil || job.CallbackError != nil {
		t.Errorf("called-back batch %+v", job)
	}

	// Every request failing: the batch is failed at once and called back
	// so; a callback that cannot connect is recorded as an error.
	release2 := make(chan struct{})
	p.add(func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
		<-release2
		return textReply("Done.")(ctx, req, d)
	})
	c.ok("POST", "/v1/agents/"+a.ID+"/messages/async", `{"messages":[{"role":"user","content":"again"}]}`, &busy)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c.ok("POST", "/v1/messages/batches", `{"requests":[`+msg(a.ID, "busy")+`],"callback_url":"`+dead.URL+`"}`, &job)
	close(release2)
	for deadline := time.Now().Add(10 * time.Second); job.CallbackSentAt == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("callback not recorded: %+v", job)
		}
		c.ok("GET", "/v1/messages/batches/"+job.ID, "", &job)
	}
	if job.Status != letta.RunFailed || job.CallbackError == nil || job.CallbackStatusCode != nil {
		t.Errorf("failed batch whose callback failed: %+v", job)
	}

	// A cancelled batch is not called back.
	p.add(func(ctx context.Context, _ llm.Request, _ func(llm.Delta)) (*llm.Response, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	c.ok("POST", "/v1/messages/batches", `{"requests":[`+msg(b.ID, "cancel me")+`],"callback_url":"`+receiver.URL+`/done"}`, &job)
	c.ok("PATCH", "/v1/messages/batches/"+job.ID+"/cancel", "", nil)
	for deadline := time.Now().Add(10 * time.Second); svc.Stats().Running > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the cancelled batch's run still runs")
		}
	}
	select {
	case body := <-calls:
		t.Errorf("a cancelled batch was called back: %v", body)
	case <-time.After(100 * time.Millisecond):
	}
	checkStore(t, store)
}

// heldReply answers "Done." once release is closed, so that a test can
// keep runs going while it looks at their batch.
func heldReply(release <-chan struct{}) func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
	return func(ctx context.Context, req llm.Request, d func(llm.Delta)) (*llm.Response, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return textReply("Done.")(ctx, req, d)
	}
}
