package schema

import (
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Batches (Letta's message batches, /v1/messages/batches): a record each,
// indexed by creation time, naming the background run each agent of the
// batch got. Batch operations run on a per-batch actor that keeps no
// state.
var (
	Batches = &Family{"batch", "batch/",
		"batch/<job-id>", "a Batch record (JSON)"}
	BatchIndex = &Family{"batch-index", "index/batches/",
		"index/batches/<created, 16 hex>/<job-id>", "empty: every batch, by creation time"}
)

// BatchNamespace is the actor namespace of batch operations.
const BatchNamespace = "batches"

// BatchActor is the actor that serialises operations on a batch.
func BatchActor(batchID string) actor.ID { return actor.ID{Namespace: BatchNamespace, Key: batchID} }

// Batch statuses stored; a running batch whose runs have all ended is
// read as completed.
const (
	BatchRunning   = "running"
	BatchCancelled = "cancelled"
)

// Batch is a stored batch of agent runs.
type Batch struct {
	ID          string      `json:"id"`
	Status      string      `json:"status"`
	CallbackURL *string     `json:"callback_url,omitempty"`
	Items       []BatchItem `json:"items"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
	// Callback is the outcome of calling CallbackURL once the batch
	// ended; nil until then.
	Callback *BatchCallback `json:"callback,omitempty"`
}

// BatchItem is one agent's part of a batch: the run its request started,
// or why none started (Error).
type BatchItem struct {
	AgentID string `json:"agent_id"`
	RunID   string `json:"run_id,omitempty"`
	Error   string `json:"error,omitempty"`
}

// BatchCallback is what calling a batch's callback URL gave: the answer's
// status code, or the error that stopped the call.
type BatchCallback struct {
	SentAt     time.Time `json:"sent_at"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// BatchKey is where a batch's record is.
func BatchKey(id string) []byte { return []byte(Batches.Prefix + id) }

// BatchNotFound is Letta's answer for a missing batch (a job).
func BatchNotFound(id string) error {
	return letta.NotFoundf("Job with id=%s not found.", letta.Clip(id))
}

// GetBatch reads a batch's record.
func GetBatch(txn kv.Txn, id string) (*Batch, error) {
	return get[Batch](txn, BatchKey(id), "batch "+id, BatchNotFound(id))
}

// PutBatch writes a batch's record, with its index entry when created.
func PutBatch(txn kv.Txn, b *Batch, created bool) error {
	if err := put(txn, BatchKey(b.ID), b); err != nil {
		return err
	}
	if created {
		return txn.Set(IndexKey(BatchIndex.Prefix, b.CreatedAt, b.ID), nil)
	}
	return nil
}
