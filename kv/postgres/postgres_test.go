package postgres

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/kvtest"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openURL opens an engine on the database at url, closed when t ends.
func openURL(t testing.TB, url string) *Engine {
	t.Helper()
	e, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func openEngine(t testing.TB) *Engine { return openURL(t, pgtest.NewDatabase(t)) }

func TestStore(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) kv.Store { return kv.NewDB(openEngine(t)) })
}

// Spec: the conformance suite holds with every transaction begun on one of
// two nodes in turn (two engines, two pools, one database): conflicts,
// fences and snapshots work across nodes as within one.
func TestStoreAcrossTwoNodes(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) kv.Store {
		url := pgtest.NewDatabase(t)
		return &twoNodes{nodes: [2]kv.Store{kv.NewDB(openURL(t, url)), kv.NewDB(openURL(t, url))}}
	})
}

// twoNodes is a kv.Store that begins transactions on its two nodes in turn.
type twoNodes struct {
	nodes [2]kv.Store
	next  atomic.Uint64
}

func (s *twoNodes) Begin(ctx context.Context) (kv.Txn, error) {
	return s.nodes[(s.next.Add(1)-1)%2].Begin(ctx)
}

func (s *twoNodes) Close() error {
	return errors.Join(s.nodes[0].Close(), s.nodes[1].Close())
}

func TestCorruption(t *testing.T) {
	kvtest.TestCorruption(t, openEngine(t))
}

// Spec: a transaction's snapshot is timed by the database server's clock,
// read when the snapshot is taken: between the server's now() just before
// Begin and just after it, and unchanged by the reads that follow.
func TestSnapshotTimeIsTheServers(t *testing.T) {
	e := openEngine(t)
	db := kv.NewDB(e)
	serverNow := func() time.Time {
		var at time.Time
		if err := e.pool.QueryRow(t.Context(), "SELECT clock_timestamp()").Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	before := serverNow()
	txn, err := db.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	after := serverNow()
	at, ok := kv.SnapshotTime(txn)
	if !ok {
		t.Fatal("a Postgres transaction has no snapshot time")
	}
	if at.Before(before.Truncate(time.Microsecond)) || at.After(after) {
		t.Fatalf("snapshot time %v, want between the server's %v and %v", at, before, after)
	}
	if _, err := txn.Get([]byte("k")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatal(err)
	}
	if again, _ := kv.SnapshotTime(txn); !again.Equal(at) {
		t.Fatalf("snapshot time moved from %v to %v", at, again)
	}
	if _, ok := kv.SnapshotTime(mustBegin(t, kv.NewDB(kv.NewMemEngine()))); ok {
		t.Fatal("a local engine's transaction claims a storage clock")
	}
}

func mustBegin(t *testing.T, s kv.Store) kv.Txn {
	t.Helper()
	txn, err := s.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(txn.Discard)
	return txn
}
