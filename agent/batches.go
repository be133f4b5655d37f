package agent

import (
	"context"
	"slices"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Batches is Letta's message batches (/v1/messages/batches): one request
// to several agents, each run in the background, tracked as one job.
// Letta sends a batch through its provider's batch API (Anthropic's
// message batches) and polls for the results; Kelpie runs each agent's
// request as a background turn of its own (as /messages/async does), so a
// batch is done when its runs are. The batch is committed with the runs it
// started and, for each request whose run could not start (its agent
// busy), why; a batch is read as completed once all its runs have ended
// (failed if none started), and its callback URL is then called.
type Batches struct{ c *core }

// Limits of batches.
const (
	// MaxBatchRequests bounds the agents one batch runs.
	MaxBatchRequests = 100
	// DefaultBatchListLimit is Letta's default page of batches and of a
	// batch's messages.
	DefaultBatchListLimit = 100
)

// Operations of the batch actor.
const (
	opCreateBatch   = "create"
	opCancelBatch   = "cancel"
	opBatchCallback = "callback"
)

var batchActor = opsActor{"batch", map[string]func(call *actor.Call) ([]byte, error){
	opCreateBatch:   createBatchOp,
	opCancelBatch:   cancelBatchOp,
	opBatchCallback: batchCallbackOp,
}}

// BatchRequest is one agent's request of a batch.
type BatchRequest struct {
	AgentID string
	Message letta.MessageRequest
}

// Create starts each request's background run and commits the batch that
// tracks them. Every request, agent and the callback URL are checked
// first, so a bad batch starts nothing; a run that cannot start (its
// agent busy, as Letta answers a busy conversation) is recorded in the
// batch as failed, and the others go on.
func (s *Batches) Create(ctx context.Context, reqs []BatchRequest, callbackURL *string) (*letta.BatchJob, error) {
	switch {
	case len(reqs) == 0:
		return nil, letta.Invalidf("Empty list of batch_requests passed in!")
	case len(reqs) > MaxBatchRequests:
		return nil, letta.Invalidf("a batch holds at most %d requests, got %d", MaxBatchRequests, len(reqs))
	}
	agents := &Agents{s.c}
	for i, r := range reqs {
		if err := loop.Check(r.Message); err != nil {
			return nil, letta.Invalidf("requests[%d]: %v", i, err)
		}
		if _, err := agents.Get(ctx, r.AgentID, false); err != nil {
			return nil, err
		}
	}
	if callbackURL != nil {
		if err := s.c.callbacks.check(*callbackURL); err != nil {
			return nil, err
		}
	}
	id, err := s.c.newIDFor(ctx, "job")
	if err != nil {
		return nil, err
	}
	// A retry of a request whose batch committed gets that batch rather
	// than starting its runs again.
	if idempotencyKey(ctx) != "" {
		if b, err := s.Get(ctx, id); letta.KindOf(err) != letta.KindNotFound {
			return b, err
		}
	}
	rec := schema.Batch{ID: id, Status: schema.BatchRunning, CallbackURL: callbackURL}
	// Each run is the agent's own turn, with no idempotency key of its own:
	// the batch's key answers a retry once the batch has committed.
	inner := WithIdempotencyKey(ctx, "")
	msgs := &Messages{s.c}
	var turns []*Turn
	for _, r := range reqs {
		req := r.Message
		req.Streaming, req.Background = new(false), true
		t, err := msgs.SendUnlessBusy(inner, r.AgentID, "", req)
		if err != nil {
			s.c.log.Warn("agent: a batch's run did not start", "batch", id, "agent", r.AgentID, "error", err)
			rec.Items = append(rec.Items, schema.BatchItem{AgentID: r.AgentID, Error: err.Error()})
			continue
		}
		turns = append(turns, t)
		rec.Items = append(rec.Items, schema.BatchItem{AgentID: r.AgentID, RunID: t.RunID()})
	}
	var out letta.BatchJob
	if err := s.c.invoke(ctx, schema.BatchActor(id), opCreateBatch, rec, &out); err != nil {
		return nil, err
	}
	if callbackURL != nil {
		go s.c.batchEnded(id, *callbackURL, turns)
	}
	return &out, nil
}

func createBatchOp(call *actor.Call) ([]byte, error) {
	b, err := decodePayload[schema.Batch](call)
	if err != nil {
		return nil, err
	}
	b.CreatedAt, b.UpdatedAt = call.Now, call.Now
	if err := schema.PutBatch(call.Txn, &b, true); err != nil {
		return nil, err
	}
	return encodeBatch(call.Txn, &b)
}

func encodeBatch(txn kv.Txn, b *schema.Batch) ([]byte, error) {
	out, err := renderBatch(txn, b)
	if err != nil {
		return nil, err
	}
	return schema.Encode(out)
}

// checkBatchID refuses an id no batch can have as Letta answers a missing
// job, rather than activating an actor for it.
func checkBatchID(id string) error {
	if !letta.ValidID("job", id) {
		return schema.BatchNotFound(id)
	}
	return nil
}

// Get reads a batch.
func (s *Batches) Get(ctx context.Context, id string) (*letta.BatchJob, error) {
	if err := checkBatchID(id); err != nil {
		return nil, err
	}
	var out *letta.BatchJob
	err := s.c.read(ctx, func(txn kv.Txn) error {
		b, err := schema.GetBatch(txn, id)
		if err == nil {
			out, err = renderBatch(txn, b)
		}
		return err
	})
	return out, err
}

var batchIndex = index[*schema.Batch]{
	prefix: schema.BatchIndex.Prefix, idPrefix: "job", get: schema.GetBatch,
	created: func(b *schema.Batch) time.Time { return b.CreatedAt },
}

// List lists the batches still running (Letta lists created and running
// jobs only), by creation time.
func (s *Batches) List(ctx context.Context, p letta.Page) ([]*letta.BatchJob, error) {
	p, err := checkPage(p, DefaultBatchListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.BatchJob{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		return listIndex(txn, batchIndex, p, func(b *schema.Batch) (bool, error) {
			r, err := renderBatch(txn, b)
			if err != nil {
				return false, err
			}
			if r.Status == letta.RunRunning {
				out = append(out, r)
			}
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// Cancel marks a batch cancelled (whatever its state, as Letta does) and
// cancels the runs of it still going.
func (s *Batches) Cancel(ctx context.Context, id string) error {
	if err := checkBatchID(id); err != nil {
		return err
	}
	var b schema.Batch
	if err := s.c.invoke(ctx, schema.BatchActor(id), opCancelBatch, nil, &b); err != nil {
		return err
	}
	msgs := &Messages{s.c}
	for _, it := range b.Items {
		if it.RunID == "" {
			continue // never started
		}
		_, err := msgs.Cancel(ctx, it.AgentID, "", []string{it.RunID})
		if err != nil && letta.KindOf(err) != letta.KindNotFound {
			return err
		}
	}
	return nil
}

func cancelBatchOp(call *actor.Call) ([]byte, error) {
	b, err := schema.GetBatch(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	b.Status, b.UpdatedAt = schema.BatchCancelled, call.Now
	if err := schema.PutBatch(call.Txn, b, false); err != nil {
		return nil, err
	}
	return schema.Encode(b)
}

// Messages lists the messages of a batch's runs (inputs included) in
// Letta's stored shape, newest first unless asked otherwise; agentID, when
// set, keeps one agent's.
func (s *Batches) Messages(ctx context.Context, id, agentID string, p letta.Page) ([]letta.AgentFileMessage, error) {
	if err := checkBatchID(id); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultBatchListLimit)
	if err != nil {
		return nil, err
	}
	var ms []*schema.Message
	err = s.c.read(ctx, func(txn kv.Txn) error {
		b, err := schema.GetBatch(txn, id)
		if err != nil {
			return err
		}
		for _, it := range b.Items {
			if (agentID != "" && it.AgentID != agentID) || it.RunID == "" {
				continue
			}
			run, err := schema.GetRun(txn, it.RunID)
			if letta.KindOf(err) == letta.KindNotFound {
				continue // deleted with its agent
			}
			if err != nil {
				return err
			}
			of, err := message.OfRun(txn, run)
			if err != nil {
				return err
			}
			ms = append(ms, of...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(ms, func(a, b *schema.Message) int { return a.CreatedAt.Compare(b.CreatedAt) })
	if p.Order == letta.Desc {
		slices.Reverse(ms)
	}
	if p.After != "" {
		if i := slices.IndexFunc(ms, func(m *schema.Message) bool { return m.ID == p.After }); i >= 0 {
			ms = ms[i+1:]
		}
	}
	out := []letta.AgentFileMessage{}
	for _, m := range ms[:min(len(ms), p.Limit)] {
		out = append(out, exportMessage(m.ID, m.AgentID, m))
	}
	return out, nil
}

// batchFailure is a request of a batch whose run did not start, as the
// batch's metadata lists it.
type batchFailure struct {
	AgentID string `json:"agent_id"`
	Error   string `json:"error"`
}

// renderBatch is a batch as Letta's BatchJob: running until its runs have
// all ended, then completed (at the latest run's end), or failed if none
// started. Requests whose run did not start are listed in its metadata
// under "failed_requests".
func renderBatch(txn kv.Txn, b *schema.Batch) (*letta.BatchJob, error) {
	out := &letta.BatchJob{ID: b.ID, Status: b.Status, CreatedAt: letta.Timestamp{Time: b.CreatedAt},
		UpdatedAt: &letta.Timestamp{Time: b.UpdatedAt}, JobType: "batch", CallbackURL: b.CallbackURL,
		UserID: letta.DefaultUserID, Metadata: map[string]any{"job_type": "batch_messages"}}
	if cb := b.Callback; cb != nil {
		out.CallbackSentAt = &letta.Timestamp{Time: cb.SentAt}
		if cb.StatusCode != 0 {
			out.CallbackStatusCode = &cb.StatusCode
		}
		if cb.Error != "" {
			out.CallbackError = &cb.Error
		}
	}
	var failed []batchFailure
	for _, it := range b.Items {
		if it.RunID == "" {
			failed = append(failed, batchFailure{it.AgentID, it.Error})
		}
	}
	if failed != nil {
		out.Metadata["failed_requests"] = failed
	}
	if b.Status != schema.BatchRunning {
		return out, nil
	}
	last := b.CreatedAt
	for _, it := range b.Items {
		if it.RunID == "" {
			continue
		}
		run, err := schema.GetRun(txn, it.RunID)
		if letta.KindOf(err) == letta.KindNotFound {
			continue // deleted with its agent: ended
		}
		if err != nil {
			return nil, err
		}
		if run.CompletedAt == nil {
			return out, nil
		}
		if run.CompletedAt.After(last) {
			last = *run.CompletedAt
		}
	}
	out.Status = letta.RunCompleted
	if len(failed) == len(b.Items) {
		out.Status = letta.RunFailed
	}
	out.CompletedAt = &letta.Timestamp{Time: last}
	return out, nil
}
