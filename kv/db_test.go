package kv_test

import (
	"context"
	"errors"
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

// TestReadOnlyCommitCertifiesSnapshot: DB applies validated commits
// concurrently, so a later commit can land before an earlier one it must
// follow, and a snapshot taken in between holds a state no serial order
// has. Here T1 reads x and writes y; T2, sequenced after T1, writes x. A
// reader that sees T2's x but not T1's y must not get a nil Commit; once T1
// has landed, a retry sees both and commits. (The simulator found this.)
func TestReadOnlyCommitCertifiesSnapshot(t *testing.T) {
	eng := &holdEngine{Engine: kv.NewMemEngine(), key: "y", arrived: make(chan struct{}), release: make(chan struct{})}
	db := kv.NewDB(eng)
	ctx := context.Background()
	put := func(k, v string) {
		t.Helper()
		txn, _ := db.Begin(ctx)
		txn.Set([]byte(k), []byte(v))
		if err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (x, y string, err error) {
		r, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		xv, _ := r.Get([]byte("x"))
		yv, _ := r.Get([]byte("y"))
		return string(xv), string(yv), r.Commit(ctx)
	}
	put("x", "0")
	put("y", "0")
	eng.armed = true

	t1, _ := db.Begin(ctx)
	if v, _ := t1.Get([]byte("x")); string(v) != "0" {
		t.Fatalf("T1 read x=%q", v)
	}
	t1.Set([]byte("y"), []byte("1"))
	t1done := make(chan error, 1)
	go func() { t1done <- t1.Commit(ctx) }()
	<-eng.arrived // T1 is sequenced and applying
	put("x", "1") // T2

	x, y, err := read()
	if x != "1" || y != "0" {
		t.Fatalf("setup: reader saw x=%s y=%s; want the hole x=1 y=0", x, y)
	}
	if !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("reader saw T2 without T1 and Commit returned %v; want ErrConflict", err)
	}
	close(eng.release)
	if err := <-t1done; err != nil {
		t.Fatalf("T1: %v", err)
	}
	if x, y, err := read(); x != "1" || y != "1" || err != nil {
		t.Fatalf("retry: x=%s y=%s err=%v; want x=1 y=1 and a nil Commit", x, y, err)
	}
}
