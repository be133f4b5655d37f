package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/internal/jsonapi"
	"github.com/kelpie/kelpie/internal/netguard"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of callbacks.
const (
	// CallbackTimeout bounds one call of a callback URL (Letta's 5 s).
	CallbackTimeout = 5 * time.Second
	// maxCallbackAnswerBytes bounds how much of a callback's answer is
	// read (only its status code is kept).
	maxCallbackAnswerBytes = 64 << 10
)

// Callbacks calls the callback URLs of batches when they end, as Letta
// does: one POST of a JSON body, its status code or error recorded, never
// retried. Outside AllowPrivate it reaches public addresses only (package
// netguard).
type Callbacks struct {
	guard  netguard.Guard
	client *http.Client
}

// NewCallbacks returns a Callbacks; allowPrivate lets callbacks reach
// loopback and private addresses.
func NewCallbacks(allowPrivate bool) *Callbacks {
	g := netguard.Guard{AllowPrivate: allowPrivate, Flag: "kelpie serve --callback-allow-private-urls"}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // a proxy would reach what the dialer refuses
	tr.DialContext = g.Dialer().DialContext
	return &Callbacks{guard: g, client: &http.Client{
		Transport: tr, Timeout: CallbackTimeout,
		// Letta's client does not follow redirects: the answer is the
		// status code recorded.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// check refuses a callback URL the server may not call.
func (cb *Callbacks) check(raw string) error {
	if _, err := cb.guard.Check("callback_url", raw); err != nil {
		return letta.Invalidf("%v", err)
	}
	return nil
}

// batchCallbackBody is what a callback receives (Letta's payload).
type batchCallbackBody struct {
	JobID       string         `json:"job_id"`
	Status      string         `json:"status"`
	CompletedAt *string        `json:"completed_at"`
	Metadata    map[string]any `json:"metadata"`
}

// pythonISO is Python's datetime.isoformat of a naive UTC time, as Letta
// writes completed_at in a callback.
const pythonISO = "2006-01-02T15:04:05.000000"

// post calls url with body and says what came of it.
func (cb *Callbacks) post(ctx context.Context, url string, body any, now time.Time) schema.BatchCallback {
	res := schema.BatchCallback{SentAt: now}
	code, err := cb.send(ctx, url, body)
	if err != nil {
		res.Error = err.Error()
	}
	res.StatusCode = code
	return res
}

func (cb *Callbacks) send(ctx context.Context, url string, body any) (int, error) {
	if err := cb.check(url); err != nil {
		return 0, err
	}
	resp, err := jsonapi.Send(ctx, cb.client, url, nil, body)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Drain a bounded answer so the connection can be reused.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxCallbackAnswerBytes)); err != nil {
		return resp.StatusCode, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, nil
}

// batchEnded waits for a batch's runs to end, then calls its callback URL
// if the batch completed or failed (not if it was cancelled) and records
// the outcome. It runs in the process that created the batch: a crash
// before the runs end loses the callback, as it does in Letta, whose
// dispatch is in process too.
func (c *core) batchEnded(id, url string, turns []*loop.Turn) {
	ctx := context.Background()
	for _, t := range turns {
		// A turn that failed has ended too; the batch reads its run.
		_, _ = t.Response(ctx)
	}
	b, err := (&Batches{c}).Get(ctx, id)
	if err != nil {
		c.log.Error("agent: batch callback: reading the batch", "batch", id, "error", err)
		return
	}
	if b.Status != letta.RunCompleted && b.Status != letta.RunFailed {
		return
	}
	body := batchCallbackBody{JobID: id, Status: b.Status, Metadata: b.Metadata}
	if b.CompletedAt != nil {
		at := b.CompletedAt.UTC().Format(pythonISO)
		body.CompletedAt = &at
	}
	res := c.callbacks.post(ctx, url, body, c.clock.Now())
	if res.Error != "" {
		c.log.Error("agent: batch callback failed", "batch", id, "url", url, "error", res.Error)
	}
	if err := c.invoke(ctx, schema.BatchActor(id), opBatchCallback, res, nil); err != nil {
		c.log.Error("agent: batch callback: recording its outcome", "batch", id, "error", err)
	}
}

// batchCallbackOp records a callback's outcome; the first one recorded
// stays.
func batchCallbackOp(call *actor.Call) ([]byte, error) {
	res, err := decodePayload[schema.BatchCallback](call)
	if err != nil {
		return nil, err
	}
	b, err := schema.GetBatch(call.Txn, call.ID.Key)
	if err != nil || b.Callback != nil {
		return nil, err
	}
	b.Callback, b.UpdatedAt = &res, call.Now
	return nil, schema.PutBatch(call.Txn, b, false)
}
