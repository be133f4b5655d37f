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
	"log/slog"
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
	// Logger receives Pebble's messages: informational ones at Debug,
	// errors at Error. nil means slog.Default().
	Logger *slog.Logger
	// MemTableSize overrides Pebble's memtable size (0: Pebble's default).
	// Tests make it small to force flushes.
	MemTableSize uint64
	// CacheBytes is the block cache's size; 0 means DefaultCacheBytes.
	CacheBytes int64
	// MaxOpenFiles bounds the files Pebble keeps open (0: Pebble's default,
	// 1000), so that it leaves file descriptors for connections.
	MaxOpenFiles int
}

// DefaultCacheBytes sizes the block cache so that the working set of a
// busy single node (agent records, recent messages, indexes) stays in memory:
// Pebble's own default (8 MiB) sent history reads to disk.
const DefaultCacheBytes = 128 << 20

// Engine is a kv.Engine backed by a Pebble DB.
type Engine struct {
	dir string
	db  *pebble.DB

	// mu is held shared by every use of db and exclusively by Close: Pebble
	// panics on use after Close, and Close must not race in-flight calls.
	mu     sync.RWMutex
	closed bool

	// applied counts Applies that have returned from Pebble. A Pebble
	// snapshot taken after reading n includes all n, so NewSnapshot calls
	// that still read n share it instead of each taking Pebble's DB mutex
	// (for a snapshot, and again to close it): under many concurrent
	// transactions that mutex was the DB path's bottleneck. The cached
	// snapshot stays open until a newer one replaces it (at the next
	// NewSnapshot after an Apply) or Close.
	applied atomic.Uint64
	snapMu  sync.Mutex
	cur     *shared              // newest shared snapshot; holds a ref of its own
	live    map[*shared]struct{} // unreleased, closed by Close
}

// shared is a Pebble snapshot with reference-counted users.
type shared struct {
	snap *pebble.Snapshot
	gen  uint64 // applied, read before snap was taken
	refs int    // guarded by Engine.snapMu
}

var _ kv.Engine = (*Engine)(nil)

// Open opens (creating if needed) the Pebble database in dir.
func Open(dir string, opts Options) (*Engine, error) {
	po := &pebble.Options{
		FS:           opts.FS,
		MemTableSize: opts.MemTableSize,
		MaxOpenFiles: opts.MaxOpenFiles,
		// Pin the on-disk format rather than inherit a default that changes
		// between Pebble releases.
		FormatMajorVersion: pebble.FormatNewest,
	}
	if po.FS == nil {
		po.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	po.Logger = slogLogger{opts.Logger.With("component", "pebble", "dir", dir)}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	po.Cache = pebble.NewCache(opts.CacheBytes)
	defer po.Cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("kv/pebble: open %s: %w", dir, err)
	}
	return &Engine{dir: dir, db: db, live: map[*shared]struct{}{}}, nil
}

// Apply implements kv.Engine.
func (e *Engine) Apply(batch []kv.Mutation) error {
	wait, err := e.Publish(batch)
	if err != nil {
		return err
	}
	return wait()
}

var _ kv.Pipeliner = (*Engine)(nil)

// Publish implements kv.Pipeliner: the batch enters Pebble's commit
// pipeline, which publishes batches in the order they enter it, and wait
// returns once its WAL sync is done; batches waiting together share a sync.
// (Pebble makes a batch visible before its sync completes; a process crash
// cannot lose it then, only a power loss before the sync.)
func (e *Engine) Publish(batch []kv.Mutation) (wait func() error, err error) {
	// Held until the sync is done, so that Close waits for it.
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, kv.ErrClosed
	}
	size := 0
	for _, m := range batch {
		size += len(m.Key) + len(m.Value) + 16
	}
	b := e.db.NewBatchWithSize(size)
	for _, m := range batch {
		var err error
		if m.Value == nil {
			err = b.Delete(m.Key, nil)
		} else {
			err = b.Set(m.Key, m.Value, nil)
		}
		if err != nil {
			b.Close()
			e.mu.RUnlock()
			return nil, fmt.Errorf("kv/pebble: %s: build batch: %w", e.dir, err)
		}
	}
	err = e.db.ApplyNoSyncWait(b, pebble.Sync)
	e.applied.Add(1) // even on error: the batch may have been applied
	if err != nil {
		b.Close()
		e.mu.RUnlock()
		return nil, fmt.Errorf("kv/pebble: %s: commit batch of %d mutations: %w", e.dir, len(batch), err)
	}
	return func() error {
		defer e.mu.RUnlock()
		defer b.Close()
		if err := b.SyncWait(); err != nil {
			return fmt.Errorf("kv/pebble: %s: sync batch of %d mutations: %w", e.dir, len(batch), err)
		}
		return nil
	}, nil
}

// NewSnapshot implements kv.Engine.
func (e *Engine) NewSnapshot() (kv.Snapshot, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, kv.ErrClosed
	}
	gen := e.applied.Load()
	e.snapMu.Lock()
	if c := e.cur; c != nil && c.gen == gen {
		// No Apply has returned since c was taken: c includes every one
		// that returned before this call.
		c.refs++
		e.snapMu.Unlock()
		return &snapshot{e: e, sh: c}, nil
	}
	e.snapMu.Unlock()

	sh := &shared{snap: e.db.NewSnapshot(), gen: gen, refs: 1}
	e.snapMu.Lock()
	e.live[sh] = struct{}{}
	var old *shared
	if e.cur == nil || e.cur.gen < gen {
		old, e.cur = e.cur, sh
		sh.refs++
	}
	e.snapMu.Unlock()
	if old != nil {
		e.release(old)
	}
	return &snapshot{e: e, sh: sh}, nil
}

// release drops a reference to sh and closes it when none remain. The
// caller holds e.mu shared, with e open.
func (e *Engine) release(sh *shared) {
	e.snapMu.Lock()
	sh.refs--
	last := sh.refs == 0
	if last {
		delete(e.live, sh)
	}
	e.snapMu.Unlock()
	if last {
		sh.snap.Close() // never fails: it only unlinks the snapshot
	}
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
	for sh := range e.live {
		sh.snap.Close()
	}
	clear(e.live)
	e.cur = nil
	e.snapMu.Unlock()
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("kv/pebble: close %s: %w", e.dir, err)
	}
	return nil
}

type snapshot struct {
	e      *Engine
	sh     *shared
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
		v, closer, err := s.sh.snap.Get(key)
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
		it, err := s.sh.snap.NewIter(&pebble.IterOptions{LowerBound: r.Start, UpperBound: r.End})
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
	if s.closed.Swap(true) {
		return nil
	}
	s.e.mu.RLock()
	defer s.e.mu.RUnlock()
	if !s.e.closed {
		s.e.release(s.sh)
	}
	return nil
}

// slogLogger is Pebble's logger on slog. Fatalf exits the process, as
// Pebble requires of it: it calls Fatalf only when it cannot go on.
type slogLogger struct{ l *slog.Logger }

func (g slogLogger) Infof(format string, args ...any) { g.l.Debug(fmt.Sprintf(format, args...)) }

func (g slogLogger) Errorf(format string, args ...any) { g.l.Error(fmt.Sprintf(format, args...)) }

func (g slogLogger) Fatalf(format string, args ...any) {
	g.l.Error("fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
