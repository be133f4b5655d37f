package actor

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// Idempotency records expire: each is written with an expiry entry, at
// <IdemExpiryPrefix><written, Unix ns, 16 hex>/<the record's hash>, in the
// same transaction, so that the runtime's sweep finds the records older
// than Config.IdempotencyHorizon by a scan in time order, and deletes each
// with its entry in one transaction. A retry after its record expired runs
// again, as a new request.
const IdemExpiryPrefix = "actor/idemexp/"

// Bounds of the expiry sweep.
const (
	idemExpiryEvery = time.Minute // least time between two sweeps
	idemExpiryBatch = 256         // records deleted per transaction
)

// IdemExpiryKey is the expiry entry of a record written at at whose key
// ends in hash.
func IdemExpiryKey(at time.Time, hash string) []byte {
	return fmt.Appendf(nil, "%s%016x/%s", IdemExpiryPrefix, uint64(at.UnixNano()), hash)
}

// ParseIdemExpiryKey returns the time and the record hash an expiry entry
// names.
func ParseIdemExpiryKey(key []byte) (at time.Time, hash string, err error) {
	rest, ok := strings.CutPrefix(string(key), IdemExpiryPrefix)
	ts, hash, ok2 := strings.Cut(rest, "/")
	b, herr := hex.DecodeString(ts)
	if !ok || !ok2 || herr != nil || len(b) != 8 || hash == "" {
		return time.Time{}, "", fmt.Errorf("malformed idempotency expiry key %q", key)
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b))), hash, nil
}

// IdemRecordAt returns when an idempotency record (the value at an
// IdemPrefix key) was written; zero for a record from before records
// expired.
func IdemRecordAt(value []byte) (time.Time, error) {
	var rec idemRecord
	if err := json.Unmarshal(value, &rec); err != nil {
		return time.Time{}, fmt.Errorf("idempotency record: %w", err)
	}
	return rec.At, nil
}

// writeIdemRecord stores the answer to key, written now, with its expiry
// entry.
func writeIdemRecord(txn kv.Txn, key string, rec *idemRecord, answer []byte, now time.Time) error {
	rec.Result, rec.At = answer, now
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := txn.Set(idemKey(key), v); err != nil {
		return err
	}
	return txn.Set(IdemExpiryKey(now, idemHash(key)), nil)
}

// expireIdempotencyDue runs ExpireIdempotency if idemExpiryEvery has passed
// since the last sweep. A failure is logged; the next sweep tries again.
func (r *Runtime) expireIdempotencyDue() {
	now := r.cfg.Clock.Now()
	if now.Sub(r.lastExpiry) < idemExpiryEvery {
		return
	}
	r.lastExpiry = now
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.InvokeTimeout)
	defer cancel()
	if _, err := r.ExpireIdempotency(ctx); err != nil {
		r.cfg.Logger.Warn("actor: deleting expired idempotency records", "error", err)
	}
}

// ExpireIdempotency deletes the idempotency records written longer than
// Config.IdempotencyHorizon ago, with their expiry entries, and returns how
// many it deleted. The runtime's sweep calls it about every minute.
func (r *Runtime) ExpireIdempotency(ctx context.Context) (int, error) {
	end := IdemExpiryKey(r.cfg.Clock.Now().Add(-r.cfg.IdempotencyHorizon), "")
	total := 0
	for {
		n, err := r.expireBatch(ctx, kv.Range{Start: []byte(IdemExpiryPrefix), End: end})
		total += n
		r.mu.Lock()
		r.stats.IdemExpired += uint64(n)
		r.mu.Unlock()
		if err != nil || n < idemExpiryBatch {
			return total, err
		}
	}
}

// expireBatch deletes up to idemExpiryBatch records whose entries lie in
// r, in one transaction.
func (r *Runtime) expireBatch(ctx context.Context, rng kv.Range) (int, error) {
	txn, err := r.cfg.Store.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer txn.Discard()
	entries, err := txn.Scan(rng, idemExpiryBatch, false)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		_, hash, err := ParseIdemExpiryKey(e.Key)
		if err != nil {
			return 0, err
		}
		if err := txn.Delete(e.Key); err != nil {
			return 0, err
		}
		if err := txn.Delete([]byte(IdemPrefix + hash)); err != nil {
			return 0, err
		}
	}
	if err := txn.Commit(ctx); err != nil {
		return 0, err
	}
	return len(entries), nil
}
