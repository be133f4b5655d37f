package pebble

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
)

// idleClock is the real clock but for After, whose channels the test fires.
type idleClock struct {
	clock.Real
	afters chan chan time.Time
}

func (c *idleClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.afters <- ch
	return ch
}

// Spec: once its memtable is three quarters full, the engine moves to a
// new one (and a new WAL) after an interval in which no batch was
// published, not while batches are; every write stays readable.
func TestRotateWhenIdle(t *testing.T) {
	clk := &idleClock{afters: make(chan chan time.Time)}
	e := openEngine(t, "db", Options{FS: vfs.NewMem(), Logger: quiet(), Clock: clk})
	defer e.Close()
	capacity := func() uint64 { e.rot.mu.Lock(); defer e.rot.mu.Unlock(); return e.rot.capacity }
	first := capacity()
	if first == 0 {
		t.Fatal("the memtable's capacity is unknown after Open")
	}
	n := 0
	write := func() {
		value := make([]byte, 1024)
		if err := e.Apply([]kv.Mutation{{Key: fmt.Appendf(nil, "k%06d", n), Value: value}}); err != nil {
			t.Fatal(err)
		}
		n++
	}
	for e.rot.filled.Load() < e.rot.due() {
		if capacity() != first {
			t.Fatal("Pebble moved to a new memtable before this one was three quarters full")
		}
		write()
	}

	// A batch published during the interval: no move yet.
	fire := <-clk.afters
	write()
	fire <- time.Now()
	fire = <-clk.afters
	if capacity() != first {
		t.Fatal("moved to a new memtable while batches were published")
	}
	// An interval without batches: the engine moves on, with no write
	// since. Woken again, the mover waits once more only after its move.
	fire <- time.Now()
	e.rot.wake <- struct{}{}
	<-clk.afters
	// The capacity follows Pebble's WALCreated events.
	if capacity() != 2*first {
		t.Fatalf("after an idle interval: memtable capacity %d, want %d (a new one, twice as large)", capacity(), 2*first)
	}
	write()
	for i := range n {
		key := fmt.Appendf(nil, "k%06d", i)
		snap, err := e.NewSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := snap.Get(key); err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		snap.Close()
	}
}
