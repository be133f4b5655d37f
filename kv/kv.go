package kv

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// Limits on what a transaction may hold. They exist so that a bad caller gets
// an error instead of exhausting memory.
const (
	MaxKeyBytes   = 1 << 10  // 1 KiB per key
	MaxValueBytes = 16 << 20 // 16 MiB per value, before the checksum
	MaxTxnBytes   = 64 << 20 // 64 MiB of keys and values written by one transaction
)

// EngineKeyPrefix begins the keys an Engine may keep for itself: DB
// rejects them, so an engine's own records never meet a caller's, and an
// engine's scans leave them out.
const EngineKeyPrefix = 0x00

var (
	// ErrNotFound is returned by Get when the key has no value.
	ErrNotFound = errors.New("kv: key not found")
	// ErrConflict means a key the transaction read changed before it
	// committed; nothing was applied and the transaction may be retried.
	ErrConflict = errors.New("kv: transaction conflict")
	// ErrFenced means the transaction's fence key no longer holds the epoch
	// it was fenced on; nothing was applied. The writer is stale.
	ErrFenced = errors.New("kv: fenced: epoch changed")
	// ErrCorrupt means stored data failed its checksum (a value's, or the
	// engine's own); it is never served.
	ErrCorrupt = errors.New("kv: corrupt value")
	// ErrDiskFull means a write was refused, or failed, for lack of disk
	// space; reads go on, and writes resume once space is freed.
	ErrDiskFull = errors.New("kv: not enough free disk space")
	// ErrUnavailable means the storage could not be reached (a database
	// server down or cut off); the operation may be retried, and succeeds
	// once the storage is back. For a commit the outcome is unknown unless
	// the error says nothing was applied.
	ErrUnavailable = errors.New("kv: storage unavailable")
	// ErrTxnDone is returned by any use of a committed or discarded Txn.
	ErrTxnDone = errors.New("kv: transaction already finished")
	// ErrTooLarge is returned when a key, value or transaction exceeds its limit.
	ErrTooLarge = errors.New("kv: too large")
	// ErrClosed is returned after the store has been closed.
	ErrClosed = errors.New("kv: store closed")
)

// Store is an ordered transactional key-value store.
type Store interface {
	// Begin starts a transaction reading a consistent snapshot.
	Begin(ctx context.Context) (Txn, error)
	// Close releases the store. Transactions still open fail afterwards.
	Close() error
}

// Txn is one transaction. It is not safe for concurrent use. Exactly one of
// Commit or Discard ends it; Discard after Commit is a no-op, so
// `defer txn.Discard()` is always correct.
type Txn interface {
	// Get returns the value of key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Scan returns up to limit pairs in r, in key order, or in reverse key
	// order when reverse is set. limit <= 0 means no limit.
	Scan(r Range, limit int, reverse bool) ([]KeyValue, error)
	// Set buffers a write of value at key. It copies value: the caller
	// may reuse it at once.
	Set(key, value []byte) error
	// Delete buffers a deletion of key.
	Delete(key []byte) error
	// Fence makes Commit conditional on key holding epoch (see PutEpoch);
	// it fails at once with ErrFenced if the snapshot already disagrees.
	Fence(key []byte, epoch uint64) error
	// Commit applies the buffered writes atomically and durably. For a
	// transaction that wrote nothing it applies nothing and returns nil:
	// what it read was one consistent snapshot.
	Commit(ctx context.Context) error
	// Discard abandons the transaction.
	Discard()
}

// Publisher is a Txn whose commit can be followed in two halves, for a
// caller with work to overlap with the sync: Publish validates and orders
// the writes as Commit does (an error means what it means there), and
// durable, which must be called exactly once, waits until they are durable
// and returns the commit's outcome (an error: unknown). A read that sees
// the writes still waits for them to be durable, as it waits for any
// commit's; only the caller knows of them early, and must not acknowledge
// them before durable returns nil. DB's transactions are Publishers.
type Publisher interface {
	Publish(ctx context.Context) (durable func() error, err error)
}

// KeyValue is one pair returned by Scan. Both slices belong to the caller.
type KeyValue struct {
	Key   []byte
	Value []byte
}

// Range is the half-open key interval [Start, End). A nil End means no upper
// bound.
type Range struct {
	Start []byte
	End   []byte
}

// PrefixRange returns the range of every key that begins with prefix.
func PrefixRange(prefix []byte) Range {
	return Range{Start: prefix, End: prefixEnd(prefix)}
}

// Contains reports whether key lies in r.
func (r Range) Contains(key []byte) bool {
	return bytes.Compare(key, r.Start) >= 0 && (r.End == nil || bytes.Compare(key, r.End) < 0)
}

// containsString is Contains for a key held as a string, without copying
// it to bytes.
func (r Range) containsString(key string) bool {
	return key >= string(r.Start) && (r.End == nil || key < string(r.End))
}

// prefixEnd returns the smallest key greater than every key with the prefix,
// or nil when there is none (the prefix is all 0xff bytes).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Mutation is one write in a batch handed to an Engine. A nil Value deletes.
type Mutation struct {
	Key   []byte
	Value []byte
}

// Engine is what a storage engine provides to DB: consistent snapshots and
// atomic, durable batches. Values pass through the engine opaque (DB adds and
// checks the checksums).
type Engine interface {
	// NewSnapshot returns a read view that includes every batch whose Apply
	// returned before the call, and each other batch whole or not at all.
	NewSnapshot() (Snapshot, error)
	// Apply writes the batch atomically and returns once it is durable.
	// DB calls it for one batch at a time, in commit order (an engine that
	// can let concurrent batches share a sync implements Pipeliner). On
	// error the batch may or may not have been applied.
	Apply(batch []Mutation) error
	// Close releases the engine.
	Close() error
}

// SharedEngine is an Engine whose storage other processes commit to as well
// (a database server several nodes share). Validating commits against this
// process's own, as DB otherwise does, would miss theirs; so DB hands each
// commit to the engine, which validates and applies it in one transaction
// of the shared storage.
type SharedEngine interface {
	Engine
	// BeginSnapshot is NewSnapshot for a transaction: ctx bounds its reads.
	// The snapshot records what it served, for CommitSnapshot.
	BeginSnapshot(ctx context.Context) (Snapshot, error)
	// CommitSnapshot applies batch atomically and durably if everything snap
	// served (keys, and the ranges it scanned) is unchanged and each key of
	// fences holds its epoch (an absent key: epoch 0). Otherwise it returns
	// ErrConflict, or ErrFenced when a fence key changed, and applies
	// nothing. snap was begun by this engine, and is closed after (its
	// connection may carry the commit).
	CommitSnapshot(ctx context.Context, snap Snapshot, batch []Mutation, fences map[string]uint64) error
}

// Snapshot is a consistent read view of an Engine.
type Snapshot interface {
	// Get returns the stored bytes at key or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Scan returns up to limit pairs in r (limit <= 0: all), forwards or in
	// reverse. The returned slices belong to the caller.
	Scan(r Range, limit int, reverse bool) ([]KeyValue, error)
	// Close releases the snapshot.
	Close() error
}

// TimedSnapshot is a Snapshot that knows when it was taken by the clock of
// the storage it reads: a database server's, which every process sharing
// the storage reads alike (a SharedEngine's snapshots are timed).
type TimedSnapshot interface {
	Snapshot
	// Time is when the snapshot was taken, by the storage's clock.
	Time() time.Time
}

// SnapshotTime returns when txn's snapshot was taken by its storage's
// clock, and false when the storage keeps no clock of its own (a local
// engine: the process's clock is the only one then).
func SnapshotTime(txn Txn) (time.Time, bool) {
	if t, ok := txn.(interface{ SnapshotTime() (time.Time, bool) }); ok {
		return t.SnapshotTime()
	}
	return time.Time{}, false
}

// ScanEach reads firstScanBatch pairs, then twice as many each time up to
// scanBatch: a caller that stops after a few (the tail of a long history)
// does not pay for reading and copying hundreds, and one that reads a long
// range takes a few more, larger, reads.
const (
	firstScanBatch = 16
	scanBatch      = 256
)

// ScanEach calls fn with each pair in r, in order (descending if reverse),
// until fn returns false or an error. It reads at most scanBatch pairs at
// a time, so a long range is not held in memory at once.
func ScanEach(txn Txn, r Range, reverse bool, fn func(KeyValue) (bool, error)) error {
	return ScanEachFrom(txn, r, reverse, firstScanBatch, fn)
}

// ScanEachFrom is ScanEach reading first pairs at first: for a caller that
// usually stops after fewer than firstScanBatch.
func ScanEachFrom(txn Txn, r Range, reverse bool, first int, fn func(KeyValue) (bool, error)) error {
	for batch := max(1, first); ; batch = min(2*batch, scanBatch) {
		kvs, err := txn.Scan(r, batch, reverse)
		if err != nil {
			return err
		}
		for _, p := range kvs {
			more, err := fn(p)
			if err != nil || !more {
				return err
			}
		}
		if len(kvs) < batch {
			return nil
		}
		last := kvs[len(kvs)-1].Key
		if reverse {
			r.End = last
		} else {
			r.Start = append(last, 0)
		}
	}
}
