package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// DB implements Store on an Engine: snapshot reads, buffered writes,
// optimistic validation at commit, fencing and checksums.
//
// Commits are validated one at a time under a short lock and then applied to
// the engine concurrently, so that the engine can group their syncs. Each
// validated commit gets a sequence number. A transaction begins at the
// "visible" sequence: every commit at or below it has finished applying, so
// the snapshot taken afterwards holds all of them. Commits above it that had
// also finished (out of order) are in the snapshot too, and the transaction
// notes them. A commit validates against the write sets of every other commit
// numbered above its start: those may be missing from its snapshot.
type DB struct {
	eng Engine

	mu      sync.Mutex
	closed  bool
	last    uint64          // highest sequence handed to a commit
	visible uint64          // every commit <= visible has finished applying
	pending map[uint64]bool // finished commits above visible
	log     []commitRecord  // write sets of recent commits, by sequence
	open    map[uint64]int  // start sequence -> open transactions
}

type commitRecord struct {
	seq  uint64
	keys []string // written keys, sorted
}

// NewDB returns a DB over eng. The DB owns eng and closes it on Close.
func NewDB(eng Engine) *DB {
	return &DB{eng: eng, pending: map[uint64]bool{}, open: map[uint64]int{}}
}

// Begin implements Store.
func (db *DB) Begin(ctx context.Context) (Txn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil, ErrClosed
	}
	start, last := db.visible, db.last
	db.open[start]++
	var seen map[uint64]bool
	if len(db.pending) > 0 {
		seen = make(map[uint64]bool, len(db.pending))
		for seq := range db.pending {
			seen[seq] = true
		}
	}
	db.mu.Unlock()

	snap, err := db.eng.NewSnapshot()
	if err != nil {
		db.release(start)
		return nil, fmt.Errorf("kv: begin: %w", err)
	}
	return &txn{db: db, snap: snap, start: start, last: last, seen: seen, reads: map[string]struct{}{}, writes: map[string][]byte{}}, nil
}

// Close closes the engine. It does not wait for open transactions.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	db.mu.Unlock()
	return db.eng.Close()
}

// release forgets an open transaction that started at start.
func (db *DB) release(start uint64) {
	db.mu.Lock()
	db.releaseLocked(start)
	db.mu.Unlock()
}

func (db *DB) releaseLocked(start uint64) {
	if db.open[start]--; db.open[start] <= 0 {
		delete(db.open, start)
	}
	db.pruneLocked()
}

// pruneLocked drops write sets no open or future transaction can conflict
// with: those at or below both the oldest open start and visible.
func (db *DB) pruneLocked() {
	floor := db.visible
	for s := range db.open {
		floor = min(floor, s)
	}
	n := sort.Search(len(db.log), func(i int) bool { return db.log[i].seq > floor })
	if n > 0 {
		db.log = append(db.log[:0], db.log[n:]...)
	}
}

// validateReads checks a read-only transaction against the commits that were
// in flight when it began. Commits are applied concurrently, so its snapshot
// may hold a later one of them without an earlier one it must follow; if it
// read anything such a commit wrote, what it saw may match no serial order.
// Commits sequenced after it began are ordered after it and cannot matter.
func (db *DB) validateReads(t *txn) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	i := sort.Search(len(db.log), func(i int) bool { return db.log[i].seq > t.start })
	for _, rec := range db.log[i:] {
		if rec.seq > t.last {
			break
		}
		if !t.seen[rec.seq] {
			if err := t.conflictsWith(rec.keys); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateAndSequence checks t against every commit after its start and, if
// none conflicts, reserves the next sequence for t's writes.
func (db *DB) validateAndSequence(t *txn, keys []string) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return 0, ErrClosed
	}
	i := sort.Search(len(db.log), func(i int) bool { return db.log[i].seq > t.start })
	for _, rec := range db.log[i:] {
		if t.seen[rec.seq] {
			continue // applied before t's snapshot was taken
		}
		if err := t.conflictsWith(rec.keys); err != nil {
			return 0, err
		}
	}
	db.last++
	db.log = append(db.log, commitRecord{seq: db.last, keys: keys})
	return db.last, nil
}

// finish records that commit seq has been applied (or failed) and advances
// visible past every contiguous finished commit.
func (db *DB) finish(seq, start uint64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.pending[seq] = true
	for db.pending[db.visible+1] {
		delete(db.pending, db.visible+1)
		db.visible++
	}
	db.releaseLocked(start)
}

type txn struct {
	db     *DB
	snap   Snapshot
	start  uint64
	last   uint64          // highest commit sequenced when the transaction began
	seen   map[uint64]bool // commits above start already in the snapshot
	done   bool
	reads  map[string]struct{}
	ranges []Range
	fences map[string]uint64
	writes map[string][]byte // nil value: delete
	size   int
}

func (t *txn) check() error {
	if t.done {
		return ErrTxnDone
	}
	return nil
}

func checkKey(key []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("kv: empty key")
	}
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: key of %d bytes exceeds %d", ErrTooLarge, len(key), MaxKeyBytes)
	}
	return nil
}

func (t *txn) Get(key []byte) ([]byte, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if v, ok := t.writes[string(key)]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return bytes.Clone(v), nil
	}
	t.reads[string(key)] = struct{}{}
	stored, err := t.snap.Get(key)
	if err != nil {
		return nil, err
	}
	return Unseal(key, stored)
}

func (t *txn) Scan(r Range, limit int, reverse bool) ([]KeyValue, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	t.ranges = append(t.ranges, Range{Start: bytes.Clone(r.Start), End: bytes.Clone(r.End)})

	// Buffered writes in the range override the snapshot. Fetching as many
	// extra snapshot pairs as there are buffered deletes in range guarantees
	// limit survivors when the snapshot has them.
	var own []KeyValue
	deletes := 0
	for k, v := range t.writes {
		if !r.Contains([]byte(k)) {
			continue
		}
		if v == nil {
			deletes++
		}
		own = append(own, KeyValue{Key: []byte(k), Value: v})
	}
	fetch := limit
	if limit > 0 {
		fetch = limit + deletes
	}
	stored, err := t.snap.Scan(r, fetch, reverse)
	if err != nil {
		return nil, err
	}
	less := func(a, b []byte) bool {
		if reverse {
			return bytes.Compare(a, b) > 0
		}
		return bytes.Compare(a, b) < 0
	}
	sort.Slice(own, func(i, j int) bool { return less(own[i].Key, own[j].Key) })

	out := make([]KeyValue, 0, len(stored)+len(own))
	emit := func(kv KeyValue) bool {
		if kv.Value != nil {
			out = append(out, KeyValue{Key: kv.Key, Value: bytes.Clone(kv.Value)})
		}
		return limit > 0 && len(out) >= limit
	}
	i, j := 0, 0
	for i < len(stored) || j < len(own) {
		var next KeyValue
		switch {
		case j == len(own) || (i < len(stored) && less(stored[i].Key, own[j].Key)):
			v, err := Unseal(stored[i].Key, stored[i].Value)
			if err != nil {
				return nil, err
			}
			next = KeyValue{Key: stored[i].Key, Value: v}
			i++
		case i < len(stored) && bytes.Equal(stored[i].Key, own[j].Key):
			next = own[j]
			i++
			j++
		default:
			next = own[j]
			j++
		}
		if emit(next) {
			break
		}
	}
	return out, nil
}

func (t *txn) Set(key, value []byte) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if len(value) > MaxValueBytes {
		return fmt.Errorf("%w: value of %d bytes at key %q exceeds %d", ErrTooLarge, len(value), key, MaxValueBytes)
	}
	if value == nil {
		value = []byte{}
	}
	return t.put(key, bytes.Clone(value))
}

func (t *txn) Delete(key []byte) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	return t.put(key, nil)
}

func (t *txn) put(key, value []byte) error {
	if t.size += len(key) + len(value); t.size > MaxTxnBytes {
		return fmt.Errorf("%w: transaction writes exceed %d bytes", ErrTooLarge, MaxTxnBytes)
	}
	t.writes[string(key)] = value
	return nil
}

func (t *txn) Fence(key []byte, epoch uint64) error {
	var have uint64
	v, err := t.Get(key)
	switch {
	case err == nil:
		if have, err = ParseEpoch(v); err != nil {
			return fmt.Errorf("kv: fence %q: %w", key, err)
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if have != epoch {
		return fmt.Errorf("%w: key %q holds epoch %d, fenced on %d", ErrFenced, key, have, epoch)
	}
	if t.fences == nil {
		t.fences = map[string]uint64{}
	}
	t.fences[string(key)] = epoch
	return nil
}

// conflictsWith reports whether a commit that wrote keys invalidates t.
func (t *txn) conflictsWith(keys []string) error {
	for _, k := range keys {
		if _, ok := t.fences[k]; ok {
			return fmt.Errorf("%w: fence key %q was rewritten", ErrFenced, k)
		}
		if _, ok := t.reads[k]; ok {
			return fmt.Errorf("%w: key %q changed", ErrConflict, k)
		}
		for _, r := range t.ranges {
			if r.Contains([]byte(k)) {
				return fmt.Errorf("%w: key %q changed in scanned range", ErrConflict, k)
			}
		}
	}
	return nil
}

func (t *txn) Commit(ctx context.Context) error {
	if err := t.check(); err != nil {
		return err
	}
	t.done = true
	t.snap.Close()
	if len(t.writes) == 0 {
		err := t.db.validateReads(t)
		t.db.release(t.start)
		return err
	}
	if err := ctx.Err(); err != nil {
		t.db.release(t.start)
		return err
	}
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seq, err := t.db.validateAndSequence(t, keys)
	if err != nil {
		t.db.release(t.start)
		return err
	}
	batch := make([]Mutation, len(keys))
	for i, k := range keys {
		key := []byte(k)
		batch[i].Key = key
		if v := t.writes[k]; v != nil {
			batch[i].Value = seal(key, v)
		}
	}
	err = t.db.eng.Apply(batch)
	t.db.finish(seq, t.start)
	if err != nil {
		return fmt.Errorf("kv: commit of %d keys, outcome unknown: %w", len(keys), err)
	}
	return nil
}

func (t *txn) Discard() {
	if t.done {
		return
	}
	t.done = true
	t.snap.Close()
	t.db.release(t.start)
}
