package kv_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kelpie/kelpie/kv"
)

// holdEngine holds back the Apply of the first batch that writes key once
// armed, until released: a slow sync.
type holdEngine struct {
	kv.Engine
	key     string
	armed   bool
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func (e *holdEngine) Apply(batch []kv.Mutation) error {
	for _, m := range batch {
		if e.armed && string(m.Key) == e.key {
			e.once.Do(func() {
				close(e.arrived)
				<-e.release
			})
		}
	}
	return e.Engine.Apply(batch)
}

// TestSnapshotIsAPrefixOfCommitOrder: T1 reads x and writes y; T2,
// numbered after T1, writes x. However slowly T1's batch lands, no reader
// sees T2's x without T1's y: commits are published in their order, so a
// snapshot holds a prefix of it. (Applied concurrently, as DB once did, the
// later commit could land first: the simulator found that hole.)
func TestSnapshotIsAPrefixOfCommitOrder(t *testing.T) {
	eng := &holdEngine{Engine: kv.NewMemEngine(), key: "y", arrived: make(chan struct{}), release: make(chan struct{})}
	db := kv.NewDB(eng)
	ctx := context.Background()
	put := func(k, v string) error {
		txn, _ := db.Begin(ctx)
		txn.Set([]byte(k), []byte(v))
		return txn.Commit(ctx)
	}
	read := func() (x, y string) {
		r, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		xv, _ := r.Get([]byte("x"))
		yv, _ := r.Get([]byte("y"))
		if err := r.Commit(ctx); err != nil {
			t.Fatalf("read-only commit: %v", err)
		}
		return string(xv), string(yv)
	}
	if put("x", "0") != nil || put("y", "0") != nil {
		t.Fatal("setup")
	}
	eng.armed = true

	t1, _ := db.Begin(ctx)
	if v, _ := t1.Get([]byte("x")); string(v) != "0" {
		t.Fatalf("T1 read x=%q", v)
	}
	t1.Set([]byte("y"), []byte("1"))
	t1done := make(chan error, 1)
	go func() { t1done <- t1.Commit(ctx) }()
	<-eng.arrived // T1 is numbered and landing
	t2done := make(chan error, 1)
	go func() { t2done <- put("x", "1") }()

	if x, y := read(); x != "0" || y != "0" {
		t.Fatalf("while T1 lands: x=%s y=%s; want neither commit", x, y)
	}
	close(eng.release)
	if err := <-t1done; err != nil {
		t.Fatalf("T1: %v", err)
	}
	if err := <-t2done; err != nil {
		t.Fatalf("T2: %v", err)
	}
	if x, y := read(); x != "1" || y != "1" {
		t.Fatalf("after both: x=%s y=%s; want x=1 y=1", x, y)
	}
}

// TestReadsNeverFailUnderWrites: readers of keys that writers hammer never
// get an error, and always see a state some serial order reaches (the
// writers keep x and y equal).
func TestReadsNeverFailUnderWrites(t *testing.T) {
	db := kv.NewDB(kv.NewMemEngine())
	ctx := context.Background()
	const writers, readers, rounds = 8, 4, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				txn, _ := db.Begin(ctx)
				v := []byte{byte(w), byte(i)}
				txn.Set([]byte("x"), v)
				txn.Set([]byte("y"), v)
				if err := txn.Commit(ctx); err != nil {
					t.Errorf("writer: %v", err)
					return
				}
			}
		})
	}
	failed := 0
	var mu sync.Mutex
	for range readers {
		wg.Go(func() {
			for range rounds {
				r, err := db.Begin(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				x, _ := r.Get([]byte("x"))
				y, _ := r.Get([]byte("y"))
				err = r.Commit(ctx)
				if err != nil || string(x) != string(y) {
					mu.Lock()
					failed++
					mu.Unlock()
					t.Errorf("reader: x=%v y=%v commit %v", x, y, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		t.Errorf("%d readers failed", failed)
	}
}

// recordingObserver records the outcome of every commit it watched.
type recordingObserver struct {
	mu       sync.Mutex
	started  int
	outcomes []error
}

func (o *recordingObserver) CommitStarted(context.Context) func(error) {
	o.mu.Lock()
	o.started++
	o.mu.Unlock()
	return func(err error) {
		o.mu.Lock()
		o.outcomes = append(o.outcomes, err)
		o.mu.Unlock()
	}
}

// TestCommitObserver: an observer sees each commit that writes, once, with
// its outcome (a conflict as ErrConflict); a read-only commit is not a
// commit to it.
func TestCommitObserver(t *testing.T) {
	ctx := context.Background()
	db := kv.NewMemDB()
	o := &recordingObserver{}
	db.ObserveCommits(o)

	loser, _ := db.Begin(ctx)
	if _, err := loser.Get([]byte("k")); err != kv.ErrNotFound {
		t.Fatalf("Get = %v", err)
	}
	winner, _ := db.Begin(ctx)
	winner.Set([]byte("k"), []byte("1"))
	if err := winner.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	loser.Set([]byte("k"), []byte("2"))
	if err := loser.Commit(ctx); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("conflicting commit: %v", err)
	}
	reader, _ := db.Begin(ctx)
	reader.Get([]byte("k"))
	if err := reader.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if o.started != 2 || len(o.outcomes) != 2 || o.outcomes[0] != nil || !errors.Is(o.outcomes[1], kv.ErrConflict) {
		t.Fatalf("observer saw %d started, outcomes %v; want 2: nil then a conflict", o.started, o.outcomes)
	}
}

// Spec: ScanEach (and ScanEachFrom, whatever its first read) visits every
// pair of a range in order, forward and backward, across its growing reads (with the transaction's own writes and
// deletes merged in), and stops where its function says.
func TestScanEach(t *testing.T) {
	ctx := context.Background()
	db := kv.NewDB(kv.NewMemEngine())
	key := func(i int) []byte { return fmt.Appendf(nil, "k/%04d", i) }
	const n = 700
	txn, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := txn.Set(key(i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	txn, err = db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	if err := txn.Delete(key(20)); err != nil {
		t.Fatal(err)
	}
	if err := txn.Set(key(n), []byte("new")); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n + 1 {
		if i != 20 {
			want = append(want, string(key(i)))
		}
	}
	for _, reverse := range []bool{false, true} {
		exp := slices.Clone(want)
		if reverse {
			slices.Reverse(exp)
		}
		for _, first := range []int{0, 1, 2, 16} {
			var got []string
			err := kv.ScanEachFrom(txn, kv.PrefixRange([]byte("k/")), reverse, first, func(p kv.KeyValue) (bool, error) {
				got = append(got, string(p.Key))
				return true, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, exp) {
				t.Errorf("reverse %v, reading %d first: visited %d keys, want %d in order", reverse, first, len(got), len(exp))
			}
		}
		var got []string
		err = kv.ScanEach(txn, kv.PrefixRange([]byte("k/")), reverse, func(p kv.KeyValue) (bool, error) {
			got = append(got, string(p.Key))
			return len(got) < 3, nil
		})
		if err != nil || !slices.Equal(got, exp[:3]) {
			t.Errorf("reverse %v, stopping after 3: visited %q (%v)", reverse, got, err)
		}
	}
}

// Spec: a key read twice in one transaction reads the same value, each
// reader gets a copy of its own (a large value, which the transaction does
// not keep, as well), and a commit by another transaction in between is
// still a conflict for a transaction that writes.
func TestRepeatedReadInTxn(t *testing.T) {
	db := kv.NewMemDB()
	ctx := context.Background()
	large := strings.Repeat("L", 64<<10)
	put := func(v string) {
		txn, _ := db.Begin(ctx)
		if err := txn.Set([]byte("large"), []byte(v+large)); err != nil {
			t.Fatal(err)
		}
		if err := txn.Set([]byte("k"), []byte(v)); err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	put("one")
	txn, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := txn.Get([]byte("k"))
	if err != nil || string(first) != "one" {
		t.Fatalf("first read: %q %v", first, err)
	}
	first[0] = 'X'
	firstLarge, err := txn.Get([]byte("large"))
	if err != nil || string(firstLarge) != "one"+large {
		t.Fatalf("first read of the large value: %d bytes, %v", len(firstLarge), err)
	}
	firstLarge[0] = 'X'
	put("two")
	again, err := txn.Get([]byte("k"))
	if err != nil || string(again) != "one" {
		t.Fatalf("second read: %q %v; want the snapshot's value, unchanged by the first reader", again, err)
	}
	againLarge, err := txn.Get([]byte("large"))
	if err != nil || string(againLarge) != "one"+large {
		t.Fatalf("second read of the large value: %.10q… %v; want the snapshot's value, unchanged by the first reader", againLarge, err)
	}
	if _, err := txn.Get([]byte("absent")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("absent key: %v", err)
	}
	if _, err := txn.Get([]byte("absent")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("absent key read again: %v", err)
	}
	if err := txn.Set([]byte("other"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(ctx); !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("commit after a read key changed: %v, want a conflict", err)
	}
}
