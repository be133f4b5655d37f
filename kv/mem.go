package kv

import (
	"bytes"
	"sync"

	"github.com/google/btree"
)

// MemEngine is an Engine held in memory. Snapshots are copy-on-write clones
// of a B-tree, so taking one costs O(1). Its zero value is not usable; call
// NewMemEngine. It survives a simulated process crash as long as the value
// itself is kept: it plays the part of the disk.
type MemEngine struct {
	mu     sync.Mutex
	tree   *btree.BTreeG[KeyValue]
	closed bool
}

func lessKV(a, b KeyValue) bool { return bytes.Compare(a.Key, b.Key) < 0 }

// NewMemEngine returns an empty in-memory engine.
func NewMemEngine() *MemEngine {
	return &MemEngine{tree: btree.NewG(16, lessKV)}
}

// NewMemDB returns a DB over a new MemEngine.
func NewMemDB() *DB { return NewDB(NewMemEngine()) }

// NewSnapshot implements Engine.
func (e *MemEngine) NewSnapshot() (Snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrClosed
	}
	return memSnapshot{e.tree.Clone()}, nil
}

// Apply implements Engine. Values are copied.
func (e *MemEngine) Apply(batch []Mutation) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	for _, m := range batch {
		if m.Value == nil {
			e.tree.Delete(KeyValue{Key: m.Key})
			continue
		}
		e.tree.ReplaceOrInsert(KeyValue{Key: bytes.Clone(m.Key), Value: bytes.Clone(m.Value)})
	}
	return nil
}

// Close implements Engine.
func (e *MemEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return nil
}

// Reopen makes a closed engine usable again with its contents intact, as a
// restarted process finds its disk.
func (e *MemEngine) Reopen() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = false
}

type memSnapshot struct{ tree *btree.BTreeG[KeyValue] }

func (s memSnapshot) Get(key []byte) ([]byte, error) {
	kv, ok := s.tree.Get(KeyValue{Key: key})
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(kv.Value), nil
}

func (s memSnapshot) Scan(r Range, limit int, reverse bool) ([]KeyValue, error) {
	var out []KeyValue
	visit := func(kv KeyValue) bool {
		switch {
		case bytes.Compare(kv.Key, r.Start) < 0:
			return false // only reached going backwards: past the start
		case !r.Contains(kv.Key):
			return reverse // forwards: past the end; backwards: the end key itself
		}
		out = append(out, KeyValue{Key: bytes.Clone(kv.Key), Value: bytes.Clone(kv.Value)})
		return limit <= 0 || len(out) < limit
	}
	switch {
	case !reverse:
		s.tree.AscendGreaterOrEqual(KeyValue{Key: r.Start}, visit)
	case r.End == nil:
		s.tree.Descend(visit)
	default:
		s.tree.DescendLessOrEqual(KeyValue{Key: r.End}, visit)
	}
	return out, nil
}

func (s memSnapshot) Close() error { return nil }
