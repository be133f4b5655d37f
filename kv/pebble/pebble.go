// Package pebble implements kv.Engine on Pebble, Kelpie's embedded on-disk
// storage engine.
//
// Guarantees:
//   - Apply commits its batch as one Pebble batch with pebble.Sync: it is
//     atomic, and durable (the WAL is fsynced) when Apply returns nil.
//     Concurrent Applies are not serialised here; Pebble's commit pipeline
//     lets them share fsyncs.
//   - A snapshot sees every batch whose Apply returned before NewSnapshot.
//   - Every byte slice returned is a copy owned by the caller.
//   - After Close, every operation (including on snapshots taken before it)
//     returns kv.ErrClosed instead of touching the closed Pebble DB, which
//     would panic. Close releases snapshots that are still open.
//
// Values are opaque here: kv.DB seals and checks them.
package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kelpie/kelpie/kv"
)

// Options configures Open. The zero value is a sensible default.
type Options struct {
	// FS is the file system; nil means the OS disk. Tests pass
	// vfs.NewCrashableMem() to simulate losing unsynced data.
	FS vfs.FS
	// Logger receives Pebble's log messages; nil means QuietLogger.
	Logger pebble.Logger
	// MemTableSize overrides Pebble's memtable size (0: Pebble's default).
	// Tests make it small to force flushes.
	MemTableSize uint64
}

// Engine is a kv.Engine backed by a Pebble DB.
type Engine struct {
	dir string
	db  *pebble.DB

	// mu is held shared by every use of db and exclusively by Close: Pebble
	// panics on use after Close, and Close must not race in-flight calls.
	mu     sync.RWMutex
	closed bool

	snapMu sync.Mutex
	snaps  map[*snapshot]struct{} // open snapshots, released by Close
}

var _ kv.Engine = (*Engine)(nil)

// Open opens (creating if needed) the Pebble database in dir.
func Open(dir string, opts Options) (*Engine, error) {
	po := &pebble.Options{
		FS:           opts.FS,
		Logger:       opts.Logger,
		MemTableSize: opts.MemTableSize,
		// Pin the on-disk format rather than inherit a default that changes
		// between Pebble releases.
		FormatMajorVersion: pebble.FormatNewest,
	}
	if po.FS == nil {
		po.FS = vfs.Default
	}
	if po.Logger == nil {
		po.Logger = QuietLogger{}
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("kv/pebble: open %s: %w", dir, err)
	}
	return &Engine{dir: dir, db: db, snaps: map[*snapshot]struct{}{}}, nil
}

// Apply implements kv.Engine.
func (e *Engine) Apply(batch []kv.Mutation) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return kv.ErrClosed
	}
	size := 0
	for _, m := range batch {
		size += len(m.Key) + len(m.Value) + 16
	}
	b := e.db.NewBatchWithSize(size)
	defer b.Close()
	for _, m := range batch {
		var err error
		if m.Value == nil {
			err = b.Delete(m.Key, nil)
		} else {
			err = b.Set(m.Key, m.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("kv/pebble: %s: build batch: %w", e.dir, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("kv/pebble: %s: commit batch of %d mutations: %w", e.dir, len(batch), err)
	}
	return nil
}

// NewSnapshot implements kv.Engine.
func (e *Engine) NewSnapshot() (kv.Snapshot, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, kv.ErrClosed
	}
	s := &snapshot{e: e, snap: e.db.NewSnapshot()}
	e.snapMu.Lock()
	e.snaps[s] = struct{}{}
	e.snapMu.Unlock()
	return s, nil
}

// Close implements kv.Engine. It waits for in-flight calls, releases open
// snapshots and closes the Pebble DB. Closing twice is a no-op.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.snapMu.Lock()
	var errs []error
	for s := range e.snaps {
		s.closed.Store(true)
		errs = append(errs, s.snap.Close())
	}
	clear(e.snaps)
	e.snapMu.Unlock()
	errs = append(errs, e.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kv/pebble: close %s: %w", e.dir, err)
	}
	return nil
}

type snapshot struct {
	e      *Engine
	snap   *pebble.Snapshot
	closed atomic.Bool
}

var errSnapshotClosed = errors.New("kv/pebble: snapshot closed")

// use runs f holding the engine open, or fails if the engine or the snapshot
// is closed.
func (s *snapshot) use(f func() error) error {
	s.e.mu.RLock()
	defer s.e.mu.RUnlock()
	switch {
	case s.e.closed:
		return kv.ErrClosed
	case s.closed.Load():
		return errSnapshotClosed
	}
	return f()
}

func (s *snapshot) Get(key []byte) ([]byte, error) {
	var out []byte
	err := s.use(func() error {
		v, closer, err := s.snap.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			return kv.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("kv/pebble: %s: get %q: %w", s.e.dir, key, err)
		}
		out = bytes.Clone(v)
		if out == nil {
			out = []byte{} // an empty value is not a deletion
		}
		return closer.Close()
	})
	return out, err
}

func (s *snapshot) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	if r.End != nil && bytes.Compare(r.Start, r.End) >= 0 {
		return nil, nil // empty range; Pebble rejects lower > upper bounds
	}
	var out []kv.KeyValue
	err := s.use(func() error {
		it, err := s.snap.NewIter(&pebble.IterOptions{LowerBound: r.Start, UpperBound: r.End})
		if err != nil {
			return fmt.Errorf("kv/pebble: %s: scan %q-%q: %w", s.e.dir, r.Start, r.End, err)
		}
		step := it.Next
		valid := it.First()
		if reverse {
			step = it.Prev
			valid = it.Last()
		}
		for ; valid && (limit <= 0 || len(out) < limit); valid = step() {
			v, err := it.ValueAndErr()
			if err != nil {
				break // ValueAndErr records err for it.Error
			}
			value := bytes.Clone(v)
			if value == nil {
				value = []byte{}
			}
			out = append(out, kv.KeyValue{Key: bytes.Clone(it.Key()), Value: value})
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			out = nil
			return fmt.Errorf("kv/pebble: %s: scan %q-%q: %w", s.e.dir, r.Start, r.End, err)
		}
		return nil
	})
	return out, err
}

// Close releases the snapshot. It is a no-op once the snapshot or the engine
// is closed.
func (s *snapshot) Close() error {
	s.e.mu.RLock()
	defer s.e.mu.RUnlock()
	if s.e.closed {
		return nil
	}
	s.e.snapMu.Lock()
	if s.closed.Swap(true) {
		s.e.snapMu.Unlock()
		return nil
	}
	delete(s.e.snaps, s)
	s.e.snapMu.Unlock()
	if err := s.snap.Close(); err != nil {
		return fmt.Errorf("kv/pebble: %s: close snapshot: %w", s.e.dir, err)
	}
	return nil
}

// QuietLogger is a pebble.Logger that drops informational messages and
// writes errors to stderr; Fatalf exits, as Pebble expects it not to return.
type QuietLogger struct{}

var stderr = log.New(os.Stderr, "kv/pebble: ", log.LstdFlags)

func (QuietLogger) Infof(string, ...any) {}

func (QuietLogger) Errorf(format string, args ...any) { stderr.Printf(format, args...) }

func (QuietLogger) Fatalf(format string, args ...any) { stderr.Fatalf(format, args...) }
