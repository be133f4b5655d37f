package pebble

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kelpie/kelpie/kv"
)

// recoverInterval is the least time between two reopens tried after a
// failed sync.
const recoverInterval = time.Second

// syncState follows the batches published but not yet durable, the keys
// whose last write failed to sync, and whether writes have stopped.
type syncState struct {
	mu       sync.Mutex
	inflight map[*flight]struct{}
	// writers are the flights in inflight by key written: a point read,
	// most reads, looks its key up rather than visiting every flight.
	writers  map[string][]*flight
	poisoned map[string]error // key -> why its last write is unknown
	failed   error            // set by a failed sync, until a reopen
	stalled  error            // set by a failed flush, until one succeeds
	lastTry  time.Time        // the last reopen tried
	changed  chan struct{}    // closed and replaced when failed or stalled changes
}

// flight is one published batch on its way to durability.
type flight struct {
	keys []string // sorted
	done chan struct{}
	err  error // set before done is closed
}

func (s *syncState) init() {
	s.inflight, s.writers, s.poisoned, s.changed = map[*flight]struct{}{}, map[string][]*flight{}, map[string]error{}, make(chan struct{})
}

// changedLocked wakes the commits waiting on Writable. Called with s.mu
// held.
func (s *syncState) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

var _ kv.WriteGate = (*Engine)(nil)

// Writable implements kv.WriteGate: writes are refused after a failed sync
// (until a reopen), while flushes fail (Pebble would stall every write until
// one succeeds), and below the free-space reserve.
func (e *Engine) Writable() (<-chan struct{}, error) {
	err := e.writable()
	e.syncs.mu.Lock()
	defer e.syncs.mu.Unlock()
	return e.syncs.changed, err
}

// flushEnded records how a flush ended: a failure stalls writes, which a
// later success (Pebble retries at once) ends.
func (e *Engine) flushEnded(err error) {
	s := &e.syncs
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.stalled
	s.stalled = classify(err)
	if (was == nil) != (err == nil) {
		if err != nil {
			e.log.Error("storage flush failed: writes are refused until one succeeds", "error", err)
		} else {
			e.log.Info("storage flush succeeded: writes resume")
		}
		s.changedLocked()
	}
}

var _ kv.Pipeliner = (*Engine)(nil)

// Apply implements kv.Engine: Publish, then wait.
func (e *Engine) Apply(batch []kv.Mutation) error {
	wait, err := e.Publish(batch)
	if err != nil {
		return err
	}
	return wait()
}

// Publish implements kv.Pipeliner: the batch enters Pebble's commit
// pipeline, which publishes batches in the order they enter it, and wait
// returns once its WAL sync is done; batches waiting together share a sync.
func (e *Engine) Publish(batch []kv.Mutation) (wait func() error, err error) {
	if err := e.writable(); err != nil {
		return nil, err
	}
	// Held until the sync is done, so that Close and a reopen wait for it.
	e.mu.RLock()
	if err := e.usable(); err != nil {
		e.mu.RUnlock()
		return nil, err
	}
	b, f, err := e.build(batch)
	if err != nil {
		e.mu.RUnlock()
		return nil, err
	}
	e.syncs.start(f)
	e.durable.pubMu.Lock()
	cp, err := e.stamp(b)
	if err == nil {
		err = e.db.ApplyNoSyncWait(b, pebble.Sync)
	}
	e.durable.pubMu.Unlock()
	e.applied.Add(1) // even on error: the batch may have been applied
	if err != nil {
		e.land(f, err)
		b.Close()
		e.mu.RUnlock()
		return nil, fmt.Errorf("kv/pebble: %s: commit batch of %d mutations: %w", e.dir, len(batch), classify(err))
	}
	e.published(batch)
	return func() error {
		defer e.mu.RUnlock()
		defer b.Close()
		err := e.syncWait(b)
		e.land(f, err)
		if err != nil {
			return fmt.Errorf("kv/pebble: %s: sync batch of %d mutations: %w", e.dir, len(batch), f.err)
		}
		e.synced(cp)
		return nil
	}, nil
}

// syncWait waits for b's WAL sync, timing it for Options.OnSyncWait.
func (e *Engine) syncWait(b *pebble.Batch) error {
	if e.opts.OnSyncWait == nil {
		return b.SyncWait()
	}
	start := e.opts.Clock.Now()
	err := b.SyncWait()
	e.opts.OnSyncWait(e.opts.Clock.Now().Sub(start))
	return err
}

// usable reports why the DB cannot be used now, if it cannot. Called with
// e.mu held.
func (e *Engine) usable() error {
	switch {
	case e.closed:
		return kv.ErrClosed
	case e.db == nil:
		return fmt.Errorf("kv/pebble: %s: storage is reopening after a failed write: %w", e.dir, e.failure())
	}
	return nil
}

// build makes the Pebble batch and its flight.
func (e *Engine) build(batch []kv.Mutation) (*pebble.Batch, *flight, error) {
	size := 0
	f := &flight{keys: make([]string, len(batch)), done: make(chan struct{})}
	for i, m := range batch {
		size += len(m.Key) + len(m.Value) + 16
		f.keys[i] = string(m.Key)
	}
	slices.Sort(f.keys)
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
			return nil, nil, fmt.Errorf("kv/pebble: %s: build batch: %w", e.dir, err)
		}
	}
	return b, f, nil
}

func (s *syncState) start(f *flight) {
	s.mu.Lock()
	s.inflight[f] = struct{}{}
	for _, k := range f.keys {
		s.writers[k] = append(s.writers[k], f)
	}
	s.mu.Unlock()
}

// land records how a flight ended. A failed sync leaves its keys unknown
// (the batch was visible, and is not durable) and stops writes: Pebble's
// WAL fails every later sync too, until a reopen.
func (e *Engine) land(f *flight, err error) {
	s := &e.syncs
	s.mu.Lock()
	delete(s.inflight, f)
	for _, k := range f.keys {
		if w := slices.DeleteFunc(s.writers[k], func(g *flight) bool { return g == f }); len(w) > 0 {
			s.writers[k] = w
		} else {
			delete(s.writers, k)
		}
	}
	if err != nil {
		f.err = classify(err)
		for _, k := range f.keys {
			s.poisoned[k] = f.err
		}
		if s.failed == nil {
			s.failed = f.err
			e.log.Error("storage write failed: writes stop until storage reopens; reads of everything else go on", "error", f.err)
			s.changedLocked()
		}
	}
	s.mu.Unlock()
	close(f.done)
}

func (e *Engine) failure() error {
	e.syncs.mu.Lock()
	defer e.syncs.mu.Unlock()
	return e.syncs.failed
}

// writable says whether a write may be tried now: not after a failed sync
// (unless a reopen succeeds), not while flushes fail, and not below the
// free-space reserve.
func (e *Engine) writable() error {
	if e.failure() != nil {
		e.recover()
	}
	return e.refusing()
}

// refusing says why writes are refused now, without trying to recover.
func (e *Engine) refusing() error {
	if failed := e.failure(); failed != nil {
		return fmt.Errorf("kv/pebble: %s: writes stopped after a failed write, until storage reopens: %w", e.dir, failed)
	}
	e.syncs.mu.Lock()
	stalled := e.syncs.stalled
	e.syncs.mu.Unlock()
	if stalled != nil {
		return fmt.Errorf("kv/pebble: %s: writes refused while flushes fail: %w", e.dir, stalled)
	}
	return e.space.check()
}

// recover reopens the DB after a failed sync, if space allows and none
// was tried within recoverInterval: the reopen replays what is durable and
// drops what was not. It reports whether writes may go on.
func (e *Engine) recover() bool {
	s := &e.syncs
	s.mu.Lock()
	now := e.opts.Clock.Now()
	if s.failed == nil || now.Sub(s.lastTry) < recoverInterval {
		ok := s.failed == nil
		s.mu.Unlock()
		return ok
	}
	s.lastTry = now
	s.mu.Unlock()
	if err := e.space.check(); err != nil {
		return false
	}
	// Reopening closes the DB that still serves reads: first make sure the
	// disk takes a synced write again.
	if err := e.probe(); err != nil {
		e.log.Warn("storage still fails a synced write; not reopening yet", "error", err, "retry_in", recoverInterval)
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.dropSnapshots()
	if e.db != nil {
		if err := e.db.Close(); err != nil {
			e.log.Warn("closing storage after a failed write", "error", err)
		}
		e.db = nil
	}
	db, err := e.open()
	if err == nil {
		if err = e.recovered(db); err != nil {
			err = errors.Join(err, db.Close())
		}
	}
	if err != nil {
		e.log.Error("reopening storage failed; trying again later", "error", err, "retry_in", recoverInterval)
		return false
	}
	e.db, e.gen = db, e.gen+1
	e.startRotation(db)
	s.mu.Lock()
	s.failed = nil
	clear(s.poisoned)
	s.changedLocked()
	s.mu.Unlock()
	e.log.Info("storage reopened after a failed write: writes resume")
	return true
}

// probe writes, syncs and removes a small file beside the DB.
func (e *Engine) probe() error {
	name := e.opts.FS.PathJoin(e.dir, "kelpie-write-probe")
	f, err := e.opts.FS.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, werr := f.Write(make([]byte, 4096))
	err = errors.Join(werr, f.Sync(), f.Close())
	return errors.Join(err, e.opts.FS.Remove(name))
}

// await waits for the syncs of the published batches that wrote a key in
// r (a read's key or range), so that a read never returns data that is not
// durable; a key whose write failed to sync is an error.
func (e *Engine) await(r kv.Range) error {
	s := &e.syncs
	s.mu.Lock()
	var wait []*flight
	for f := range s.inflight {
		if f.wrote(r) {
			wait = append(wait, f)
		}
	}
	var poisoned error
	for k, err := range s.poisoned {
		if inRange(k, r) {
			poisoned = fmt.Errorf("kv/pebble: %s: key %q: its last write failed to sync; it is unknown until storage reopens: %w", e.dir, k, err)
			break
		}
	}
	s.mu.Unlock()
	if poisoned != nil {
		return poisoned
	}
	return e.wait(wait)
}

// awaitKey is await for the one key of a point read.
func (e *Engine) awaitKey(key []byte) error {
	s := &e.syncs
	s.mu.Lock()
	wait := slices.Clone(s.writers[string(key)])
	err, poisoned := s.poisoned[string(key)]
	s.mu.Unlock()
	if poisoned {
		return fmt.Errorf("kv/pebble: %s: key %q: its last write failed to sync; it is unknown until storage reopens: %w", e.dir, key, err)
	}
	return e.wait(wait)
}

// wait waits for the syncs of flights, failing if one failed.
func (e *Engine) wait(flights []*flight) error {
	for _, f := range flights {
		<-f.done
		if f.err != nil {
			return fmt.Errorf("kv/pebble: %s: a write to the keys read failed to sync: %w", e.dir, f.err)
		}
	}
	return nil
}

// wrote reports whether f wrote a key in r. Every read asks it of every
// batch in flight, so it searches f's sorted keys rather than visiting
// them, and converts no key (string(b) in a comparison does not allocate).
func (f *flight) wrote(r kv.Range) bool {
	i, _ := slices.BinarySearchFunc(f.keys, r.Start, func(k string, start []byte) int {
		switch {
		case k < string(start):
			return -1
		case k > string(start):
			return 1
		}
		return 0
	})
	return i < len(f.keys) && (r.End == nil || f.keys[i] < string(r.End))
}

// inRange reports whether key k lies in r.
func inRange(k string, r kv.Range) bool {
	return k >= string(r.Start) && (r.End == nil || k < string(r.End))
}
