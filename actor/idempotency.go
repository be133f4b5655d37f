package actor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// Idempotency records: an invocation with an idempotency key stores its
// answer under the key in its own transaction, so that a retry of the same
// request gets the first answer and runs nothing (expiry.go says how
// records end).

// WithIdempotencyKey makes the invocation happen at most once per key: a
// repeat with the same key, operation and payload returns the first result
// without running again, even across restarts. The record is written in the
// invocation's own transaction.
func WithIdempotencyKey(key string) InvokeOption {
	return func(r *request) { r.idemKey = key }
}

func idemKey(key string) []byte { return []byte(IdemPrefix + idemHash(key)) }

// idemHash is the part of an idempotency record's key that names it.
func idemHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// idemRecord is what an idempotency key stores: which request it answered
// and the answer.
type idemRecord struct {
	Fingerprint []byte `json:"fingerprint"`
	Result      []byte `json:"result"`
	// Actor is the actor that answered (absent in records written before
	// it was kept), for Answered.
	Actor *ID `json:"actor,omitempty"`
	// At is when the record was written, which its expiry entry repeats
	// (absent in records written before records expired: those never do).
	At time.Time `json:"at,omitzero"`
}

// fingerprint identifies a request: the actor it is for, its op and its
// payload. The record key is global, so the whole id is in it (a key reused
// on another actor is a different request); fields are length-prefixed so no
// two requests share an encoding.
func fingerprint(id ID, op string, payload []byte) []byte {
	h := sha256.New()
	for _, f := range []string{id.String(), op} {
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	fmt.Fprintf(h, "%d:", len(payload))
	h.Write(payload)
	return h.Sum(nil)
}

// idempotent looks up the record of req's idempotency key: answered is
// true, with the first answer in the record, when the key was used for
// this very request; otherwise it returns the record to store with the
// answer. A key used for another request is ErrIdempotencyMismatch.
func idempotent(txn kv.Txn, id ID, req *request) (rec *idemRecord, answered bool, err error) {
	fp := fingerprint(id, req.op, req.payload)
	v, err := txn.Get(idemKey(req.idemKey))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		return &idemRecord{Fingerprint: fp, Actor: &id}, false, nil
	case err != nil:
		return nil, false, err
	}
	rec = new(idemRecord)
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, false, fmt.Errorf("idempotency record: %w", err)
	}
	if string(rec.Fingerprint) != string(fp) {
		return nil, false, ErrIdempotencyMismatch
	}
	return rec, true, nil
}

// Answered returns the answer an invocation of op with payload and
// idempotency key recorded, on whichever actor it ran: for a caller that
// chose the actor from state that has changed since, so that it cannot ask
// the same actor again. found is false when the key recorded no answer; a
// key recorded for another request is ErrIdempotencyMismatch.
func (r *Runtime) Answered(ctx context.Context, key, op string, payload []byte) (result []byte, found bool, err error) {
	txn, err := r.cfg.Store.Begin(ctx)
	if err != nil {
		return nil, false, err
	}
	defer txn.Discard()
	v, err := txn.Get(idemKey(key))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var rec idemRecord
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, false, fmt.Errorf("idempotency record: %w", err)
	}
	if rec.Actor == nil || string(rec.Fingerprint) != string(fingerprint(*rec.Actor, op, payload)) {
		return nil, false, ErrIdempotencyMismatch
	}
	return rec.Result, true, nil
}
