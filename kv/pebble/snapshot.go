package pebble

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/kelpie/kelpie/kv"
)

// NewSnapshot implements kv.Engine.
func (e *Engine) NewSnapshot() (kv.Snapshot, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if err := e.usable(); err != nil {
		return nil, err
	}
	gen := e.applied.Load()
	e.snapMu.Lock()
	if c := e.cur; c != nil && c.gen == gen && c.db == e.gen {
		// No Publish has returned since c was taken: c includes every one
		// that returned before this call.
		c.refs++
		e.snapMu.Unlock()
		return &snapshot{e: e, sh: c}, nil
	}
	e.snapMu.Unlock()

	e.renewAnchor()
	sh := &shared{snap: e.db.NewSnapshot(), gen: gen, db: e.gen, refs: 1}
	e.snapMu.Lock()
	e.live[sh] = struct{}{}
	var old *shared
	if e.cur == nil || e.cur.gen < gen || e.cur.db != e.gen {
		old, e.cur = e.cur, sh
		sh.refs++
	}
	e.snapMu.Unlock()
	if old != nil {
		e.release(old)
	}
	return &snapshot{e: e, sh: sh}, nil
}

// anchorEvery is how many shared snapshots an anchor (Engine.anchor)
// stays older than.
const anchorEvery = 64

// renewAnchor takes the anchor, or a new one after anchorEvery shared
// snapshots, before a shared snapshot is taken: so the anchor is older.
// The caller holds e.mu shared, with e usable.
func (e *Engine) renewAnchor() {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	if e.sinceAnchor++; e.anchor != nil && e.sinceAnchor < anchorEvery {
		return
	}
	old := e.anchor
	e.anchor, e.sinceAnchor = e.db.NewSnapshot(), 0
	if old != nil {
		old.Close() // never fails: it only unlinks the snapshot
	}
}

// release drops a reference to sh and closes it when none remain. The
// caller holds e.mu shared, with e open.
func (e *Engine) release(sh *shared) {
	e.snapMu.Lock()
	sh.refs--
	last := sh.refs == 0
	_, live := e.live[sh]
	if last {
		delete(e.live, sh)
	}
	e.snapMu.Unlock()
	if last && live { // a reopen closed the others
		sh.close()
	}
}

// iter returns an iterator over sh bounded to [lower, upper): an idle one
// moved there, or a new one. Filters of the last level are used: Pebble's
// prefix seeks otherwise never consult them (see get); other positionings
// ignore filters. The caller holds e.mu shared, and gives the iterator back
// with done.
func (e *Engine) iter(sh *shared, lower, upper []byte) (*pebble.Iterator, error) {
	e.snapMu.Lock()
	if n := len(sh.idle); n > 0 {
		it := sh.idle[n-1]
		sh.idle = sh.idle[:n-1]
		e.snapMu.Unlock()
		it.SetBounds(lower, upper)
		return it, nil
	}
	e.snapMu.Unlock()
	return sh.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper, UseL6Filters: true})
}

// done gives back an iterator iter returned and reports its error. One
// without an error is kept for the next read of sh, unless sh is closed.
func (e *Engine) done(sh *shared, it *pebble.Iterator) error {
	if err := it.Error(); err != nil {
		return errors.Join(err, it.Close())
	}
	e.snapMu.Lock()
	if _, live := e.live[sh]; live && sh.refs > 0 {
		sh.idle = append(sh.idle, it)
		it = nil
	}
	e.snapMu.Unlock()
	if it != nil {
		return it.Close()
	}
	return nil
}

type snapshot struct {
	e      *Engine
	sh     *shared
	closed atomic.Bool
}

var (
	errSnapshotClosed = errors.New("kv/pebble: snapshot closed")
	// A reopen after a failed write ends the snapshots of the old DB: the
	// transaction is to be retried, as after a conflict.
	errReopened = fmt.Errorf("%w: storage was reopened after a failed write", kv.ErrConflict)
)

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
	case s.sh.db != s.e.gen || s.e.db == nil:
		return errReopened
	}
	return f()
}

func (s *snapshot) Get(key []byte) ([]byte, error) {
	if err := s.e.awaitKey(key); err != nil {
		return nil, err
	}
	upper := keyAfter(key)
	var out []byte
	err := s.use(func() (err error) {
		out, err = s.get(key, upper)
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			err = fmt.Errorf("kv/pebble: %s: get %q: %w", s.e.dir, key, classify(err))
		}
		return err
	})
	return out, err
}

// get reads key through an iterator bounded to it (upper is keyAfter(key))
// rather than Pebble's Get, which never consults the bloom filters of the
// last level (L6), where a small or settled store keeps nearly all its
// tables: a read of a key that does not exist (a new agent's state, its
// counts) then read and decompressed a data block of an L6 table, about
// 140µs once the tables outgrow the block cache, against a few µs with the
// filter.
func (s *snapshot) get(key, upper []byte) ([]byte, error) {
	it, err := s.e.iter(s.sh, key, upper)
	if err != nil {
		return nil, err
	}
	var out []byte
	if it.SeekPrefixGE(key) {
		v, verr := it.ValueAndErr()
		if verr == nil {
			if out = bytes.Clone(v); out == nil {
				out = []byte{} // an empty value is not a deletion
			}
		}
	}
	if err := s.e.done(s.sh, it); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, kv.ErrNotFound
	}
	return out, nil
}

// keyAfter is the least key after key.
func keyAfter(key []byte) []byte { return append(key[:len(key):len(key)], 0) }

func (s *snapshot) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	r.Start = noEngineKeys(r.Start)
	if r.End != nil && bytes.Compare(r.Start, r.End) >= 0 {
		return nil, nil // empty range; Pebble rejects lower > upper bounds
	}
	if err := s.e.await(r); err != nil {
		return nil, err
	}
	var out []kv.KeyValue
	err := s.use(func() (err error) {
		out, err = s.scan(r, limit, reverse)
		return err
	})
	return out, err
}

func (s *snapshot) scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	it, err := s.e.iter(s.sh, r.Start, r.End)
	if err != nil {
		return nil, fmt.Errorf("kv/pebble: %s: scan %q-%q: %w", s.e.dir, r.Start, r.End, classify(err))
	}
	// One positioning only: a reverse scan that also called First paid
	// for a seek it threw away.
	step, first := it.Next, it.First
	if reverse {
		step, first = it.Prev, it.Last
	}
	valid := first()
	var out []kv.KeyValue
	for ; valid && (limit <= 0 || len(out) < limit); valid = step() {
		v, err := it.ValueAndErr()
		if err != nil {
			break // ValueAndErr records err for it.Error
		}
		// One allocation holds both: a scan of a history copies many.
		k := it.Key()
		buf := make([]byte, len(k)+len(v))
		copy(buf, k)
		copy(buf[len(k):], v)
		out = append(out, kv.KeyValue{Key: buf[:len(k):len(k)], Value: buf[len(k):]})
	}
	if err := s.e.done(s.sh, it); err != nil {
		return nil, fmt.Errorf("kv/pebble: %s: scan %q-%q: %w", s.e.dir, r.Start, r.End, classify(err))
	}
	return out, nil
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
