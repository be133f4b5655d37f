package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// DB implements Store on an Engine: snapshot reads, buffered writes,
// optimistic validation at commit, fencing and checksums.
//
// Commits are validated, numbered and published to the engine one at a
// time, in one order (the order slot): so the engine's state is always a prefix of
// that order, and any snapshot of it is a state some serial order reaches.
// A transaction begins at the sequence of the last published commit; its
// snapshot holds every commit up to it (and possibly a few published since,
// a longer prefix). A write validates against every commit numbered above
// its start. A read-only transaction needs no validation: its snapshot is
// consistent by construction, so reads never fail because of writes.
//
// A SharedEngine, whose storage other processes commit to, validates and
// applies each commit itself; DB then keeps no order or commit log of its
// own, and a transaction's snapshot is the engine's.
//
// Durability overlaps: an engine that can publish a batch before it is
// durable (a Pipeliner, such as kv/pebble) syncs each commit after the
// order lock is released, so concurrent commits share a sync. Other engines
// apply, and sync, inside the order.
type DB struct {
	eng Engine

	order chan struct{} // the order slot: held to validate, number and publish a commit

	observer atomic.Pointer[CommitObserver]

	mu        sync.Mutex
	closed    bool
	published uint64         // the last commit handed to the engine
	log       []commitRecord // write sets of recent commits, by sequence
	open      map[uint64]int // start sequence -> open transactions
}

type commitRecord struct {
	seq  uint64
	keys []string // written keys, sorted
}

// WriteGate is an Engine that can refuse writes before they queue (a disk
// full or failing): DB asks it before a commit waits for its turn in the
// order, and again whenever it says its answer may have changed, so that
// commits behind a stuck one are refused promptly rather than left waiting.
type WriteGate interface {
	// Writable returns why writes are refused now (nil: they are not), and
	// a channel closed when that may change.
	Writable() (changed <-chan struct{}, err error)
}

// Pipeliner is an Engine that can publish a batch before it is durable.
type Pipeliner interface {
	// Publish writes batch atomically and makes it visible to snapshots
	// taken after Publish returns; wait returns once the batch is durable.
	// DB calls Publish for one batch at a time, in commit order, and waits
	// outside that order.
	Publish(batch []Mutation) (wait func() error, err error)
}

// CommitObserver watches a DB's commits, for metrics and traces:
// CommitStarted is called with the commit's context as a commit with
// writes begins, and the function it returns once that commit has ended,
// with its error (nil: durable; ErrConflict or ErrFenced: nothing
// applied). Both must be quick and safe for concurrent use. The observer
// times commits itself, so that DB reads no clock.
type CommitObserver interface {
	CommitStarted(ctx context.Context) (ended func(err error))
}

// ObserveCommits makes o watch every commit that starts from now on.
func (db *DB) ObserveCommits(o CommitObserver) { db.observer.Store(&o) }

// NewDB returns a DB over eng. The DB owns eng and closes it on Close.
func NewDB(eng Engine) *DB {
	return &DB{eng: eng, order: make(chan struct{}, 1), open: map[uint64]int{}}
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
	start := db.published
	db.open[start]++
	db.mu.Unlock()

	var snap Snapshot
	var err error
	if shared, ok := db.eng.(SharedEngine); ok {
		snap, err = shared.BeginSnapshot(ctx)
	} else {
		snap, err = db.eng.NewSnapshot()
	}
	if err != nil {
		db.release(start)
		return nil, fmt.Errorf("kv: begin: %w", err)
	}
	return &txn{db: db, snap: snap, start: start, reads: map[string]readValue{}, writes: map[string][]byte{}}, nil
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

func (db *DB) isClosed() bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.closed
}

// release forgets an open transaction that started at start.
func (db *DB) release(start uint64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.open[start]--; db.open[start] <= 0 {
		delete(db.open, start)
	}
	db.pruneLocked()
}

// pruneLocked drops write sets no open or future transaction can conflict
// with: those at or below both the oldest open start and the last
// published commit.
func (db *DB) pruneLocked() {
	floor := db.published
	for s := range db.open {
		floor = min(floor, s)
	}
	n := sort.Search(len(db.log), func(i int) bool { return db.log[i].seq > floor })
	if n > 0 {
		db.log = append(db.log[:0], db.log[n:]...)
	}
}

// commit validates t's writes, numbers them and publishes them to the
// engine, in commit order; it returns how to wait for their durability. A
// validation error means nothing was applied; any other, that the outcome
// is unknown.
func (db *DB) commit(ctx context.Context, t *txn, keys []string, batch []Mutation) (wait func() error, err error) {
	if err := db.enterOrder(ctx); err != nil {
		return nil, err
	}
	defer func() { <-db.order }()
	seq, err := db.validateAndSequence(t, keys)
	if err != nil {
		return nil, err
	}
	if p, ok := db.eng.(Pipeliner); ok {
		wait, err = p.Publish(batch)
	} else {
		err = db.eng.Apply(batch)
	}
	// Published even on error: the batch may have been applied, and later
	// transactions must validate against it.
	db.mu.Lock()
	db.published = seq
	db.mu.Unlock()
	if err != nil {
		return nil, unknownOutcome(len(batch), err)
	}
	return wait, nil
}

func unknownOutcome(keys int, err error) error {
	return fmt.Errorf("kv: commit of %d keys, outcome unknown: %w", keys, err)
}

// enterOrder takes the order slot, unless ctx ends or the engine refuses
// writes first; either way nothing is applied.
func (db *DB) enterOrder(ctx context.Context) error {
	gate, _ := db.eng.(WriteGate)
	for {
		var changed <-chan struct{}
		if gate != nil {
			var err error
			if changed, err = gate.Writable(); err != nil {
				return err
			}
		}
		select {
		case db.order <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// validateAndSequence checks t against every commit after its start and, if
// none conflicts, reserves the next sequence for t's writes. Called holding
// the order slot.
func (db *DB) validateAndSequence(t *txn, keys []string) (uint64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return 0, ErrClosed
	}
	i := sort.Search(len(db.log), func(i int) bool { return db.log[i].seq > t.start })
	for _, rec := range db.log[i:] {
		if err := t.conflictsWith(rec.keys); err != nil {
			return 0, err
		}
	}
	seq := db.published + 1
	db.log = append(db.log, commitRecord{seq: seq, keys: keys})
	return seq, nil
}

type txn struct {
	db    *DB
	snap  Snapshot
	start uint64 // the last commit published when the transaction began
	done  bool
	// reads is the read set: each key read, with what the snapshot had,
	// so that reading it again (a fence on a key just loaded, a record
	// checked then rewritten) needs no engine read.
	reads  map[string]readValue
	ranges []Range
	fences map[string]uint64
	// writes holds each written value sealed (see seal) as it will be
	// stored, so that Set copies it once; nil: delete.
	writes map[string][]byte
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
	if key[0] == EngineKeyPrefix {
		return fmt.Errorf("kv: key %q begins with byte 0x00, reserved for the storage engine", key)
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
		return bytes.Clone(v[checksumBytes:]), nil
	}
	r, ok := t.reads[string(key)]
	switch {
	case ok && !r.found:
		return nil, ErrNotFound
	case ok && r.kept != nil:
		return bytes.Clone(r.kept), nil // each reader gets a copy of its own
	}
	stored, err := t.snap.Get(key)
	if errors.Is(err, ErrNotFound) {
		t.reads[string(key)] = readValue{}
	}
	if err != nil {
		return nil, err
	}
	v, err := Unseal(key, stored)
	if err != nil {
		return nil, err
	}
	if len(v) > maxKeptReadBytes {
		t.reads[string(key)] = readValue{found: true}
		return v, nil
	}
	t.reads[string(key)] = readValue{found: true, kept: v}
	return bytes.Clone(v), nil
}

// maxKeptReadBytes is the largest value a transaction keeps to answer a
// second read of its key: the records read twice are small (an epoch, a
// run), and a transaction that reads many large ones (a listing) must not
// hold them all until it ends.
const maxKeptReadBytes = 4 << 10

// readValue is what a transaction's snapshot had at a key it read.
type readValue struct {
	found bool
	kept  []byte // the value, when found and at most maxKeptReadBytes
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
		if !r.containsString(k) {
			continue
		}
		if v == nil {
			deletes++
		} else {
			v = v[checksumBytes:]
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
	i, j := 0, 0
	for (i < len(stored) || j < len(own)) && (limit <= 0 || len(out) < limit) {
		var next KeyValue
		switch {
		case j == len(own) || (i < len(stored) && less(stored[i].Key, own[j].Key)):
			// The snapshot's pairs are the caller's already.
			v, err := Unseal(stored[i].Key, stored[i].Value)
			if err != nil {
				return nil, err
			}
			out = append(out, KeyValue{Key: stored[i].Key, Value: v})
			i++
			continue
		case i < len(stored) && bytes.Equal(stored[i].Key, own[j].Key):
			next = own[j]
			i++
			j++
		default:
			next = own[j]
			j++
		}
		if next.Value != nil { // nil: deleted in this transaction
			// A buffered write's value is the transaction's: copied.
			out = append(out, KeyValue{Key: next.Key, Value: bytes.Clone(next.Value)})
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
	return t.put(key, len(value), seal(key, value))
}

func (t *txn) Delete(key []byte) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	return t.put(key, 0, nil)
}

// put buffers the write of sealed, whose value is n bytes long (nil
// sealed: a delete).
func (t *txn) put(key []byte, n int, sealed []byte) error {
	if t.size += len(key) + n; t.size > MaxTxnBytes {
		return fmt.Errorf("%w: transaction writes exceed %d bytes", ErrTooLarge, MaxTxnBytes)
	}
	t.writes[string(key)] = sealed
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
	}
	// keys are sorted: a range holds one of them if it holds the first at
	// or after its start. (Checking every key against every range, under
	// the commit order, took a sixth of a turn's CPU at 128 agents.)
	for _, r := range t.ranges {
		i := sort.Search(len(keys), func(i int) bool { return keys[i] >= string(r.Start) })
		if i < len(keys) && (r.End == nil || keys[i] < string(r.End)) {
			return fmt.Errorf("%w: key %q changed in scanned range", ErrConflict, keys[i])
		}
	}
	return nil
}

func (t *txn) Commit(ctx context.Context) error {
	durable, err := t.Publish(ctx)
	if err != nil {
		return err
	}
	return durable()
}

// Publish implements Publisher.
func (t *txn) Publish(ctx context.Context) (durable func() error, err error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	t.done = true
	shared, isShared := t.db.eng.(SharedEngine)
	if isShared {
		defer t.snap.Close() // after CommitSnapshot, which may use it
	} else {
		t.snap.Close()
	}
	defer t.db.release(t.start)
	if len(t.writes) == 0 {
		return durableNow, nil // its snapshot is consistent by construction
	}
	ended := func(error) {}
	if o := t.db.observer.Load(); o != nil {
		ended = (*o).CommitStarted(ctx)
	}
	defer func() {
		if err != nil {
			ended(err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	batch := make([]Mutation, len(keys))
	for i, k := range keys {
		batch[i] = Mutation{Key: []byte(k), Value: t.writes[k]}
	}
	if isShared {
		if t.db.isClosed() {
			return nil, ErrClosed
		}
		if err := shared.CommitSnapshot(ctx, t.snap, batch, t.fences); err != nil {
			return nil, err
		}
		ended(nil)
		return durableNow, nil
	}
	wait, err := t.db.commit(ctx, t, keys, batch)
	if err != nil {
		return nil, err
	}
	return func() error {
		var err error
		if wait != nil {
			if werr := wait(); werr != nil {
				err = unknownOutcome(len(keys), werr)
			}
		}
		ended(err)
		return err
	}, nil
}

func durableNow() error { return nil }

// SnapshotTime implements the optional method SnapshotTime reads.
func (t *txn) SnapshotTime() (time.Time, bool) {
	if ts, ok := t.snap.(TimedSnapshot); ok {
		return ts.Time(), true
	}
	return time.Time{}, false
}

func (t *txn) Discard() {
	if t.done {
		return
	}
	t.done = true
	t.snap.Close()
	t.db.release(t.start)
}
