package pebble

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/kelpie/kelpie/kv"
)

// Pebble moves to a new memtable, and a new WAL, inside the commit that
// finds the current memtable full: that commit waits for the old WAL's
// closing sync, the new file's creation and a sync of the directory. In
// BenchmarkTurnLatency that was 4-7ms on a loaded disk, in about one turn
// of 130 (a fresh store's memtables start at 256KiB and double): a turn's
// whole budget. So once the memtable is three quarters full, the engine
// moves on ahead of time, in the background, after an interval in which no
// batch was published (a turn's commits come in bursts, with the model
// call between them): no commit waits for it then. A forced move flushes
// the old memtable as a full one would be.

// rotateIdle is how long no batch must have been published before the
// engine moves to a new memtable ahead of time.
const rotateIdle = 5 * time.Millisecond

// memtableEntryOverhead is about what a key takes in a memtable beyond its
// bytes and its value's: a skiplist node of average height, its trailer
// and alignment. Pebble reserves room for the tallest node but then counts
// what the nodes took; it lets the next memtable grow only if a forced
// move found this one at least half full, so the estimate errs low.
const memtableEntryOverhead = 40

// defaultMemTableSize is Pebble's MemTableSize when Options leaves it 0.
const defaultMemTableSize = 4 << 20

// rotation follows how full Pebble's mutable memtable is, as Pebble
// reserves room in it, to move on before it is full.
type rotation struct {
	mu       sync.Mutex
	capacity uint64 // of the mutable memtable; 0: unknown, never move early
	max      uint64 // what capacity grows to, doubling at each move

	filled atomic.Uint64 // reserved in the mutable memtable, estimated
	wake   chan struct{} // the memtable is due to be moved from
	stop   chan struct{} // closed by Close
}

// startRotation follows db's memtable from now on and starts the mover.
func (e *Engine) startRotation(db *pebble.DB) {
	r := &e.rot
	r.mu.Lock()
	if r.max = e.opts.MemTableSize; r.max == 0 {
		r.max = defaultMemTableSize
	}
	r.capacity = 0
	r.mu.Unlock()
	r.measure(db)
	r.filled.Store(0)
	if r.stop == nil {
		r.wake, r.stop = make(chan struct{}, 1), make(chan struct{})
		go e.rotateWhenIdle()
	}
}

// walCreated is Pebble's WALCreated event: a new memtable, empty, twice as
// large as the last (up to the maximum) as Pebble sizes them.
func (e *Engine) walCreated() {
	r := &e.rot
	r.mu.Lock()
	r.capacity = min(2*r.capacity, r.max)
	r.mu.Unlock()
	r.filled.Store(0)
}

// published counts the room a published batch took in the memtable and
// wakes the mover when that makes it due.
func (e *Engine) published(batch []kv.Mutation) {
	r := &e.rot
	if r.wake == nil {
		return // read-only
	}
	n := uint64(0)
	for _, m := range batch {
		n += uint64(len(m.Key)+len(m.Value)) + memtableEntryOverhead
	}
	after := r.filled.Add(n)
	if due := r.due(); due > 0 && after >= due && after-n < due {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// measure reads the mutable memtable's capacity from Pebble when it is the
// only one: Pebble reports only the whole queue's.
func (r *rotation) measure(db *pebble.DB) {
	if m := db.Metrics().MemTable; m.Count == 1 {
		r.mu.Lock()
		r.capacity = m.Size
		r.mu.Unlock()
	}
}

// due is how full the memtable is when the engine moves on early: late
// enough that it moves about as often as Pebble would, early enough to
// find an idle interval first; at least half, or Pebble would not let the
// next memtable grow.
func (r *rotation) due() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.capacity / 4 * 3
}

// rotateWhenIdle moves to a new memtable each time one is due, after an
// interval without a published batch, until Close.
func (e *Engine) rotateWhenIdle() {
	r := &e.rot
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		}
		for idle := false; !idle; {
			last := e.applied.Load()
			select {
			case <-r.stop:
				return
			case <-e.opts.Clock.After(rotateIdle):
			}
			idle = e.applied.Load() == last
		}
		e.rotateEarly()
	}
}

// rotateEarly moves to a new memtable if the current one is still due
// (Pebble may have moved on meanwhile) and writes are going on normally.
func (e *Engine) rotateEarly() {
	e.mu.RLock()
	defer e.mu.RUnlock()
	r := &e.rot
	if e.usable() != nil || e.refusing() != nil {
		return
	}
	r.measure(e.db)
	if due := r.due(); due == 0 || r.filled.Load() < due {
		return
	}
	if _, err := e.db.AsyncFlush(); err != nil {
		e.log.Warn("moving to a new memtable ahead of time failed; Pebble will when it is full", "error", err)
	}
}

// stopRotation stops the mover, which returns at once or, if it is
// moving, once Close has released e.mu. Called by Close, with e.mu held.
func (e *Engine) stopRotation() {
	if r := &e.rot; r.stop != nil {
		close(r.stop)
	}
}
