package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
)

// lockWaitTimeout bounds waiting for a commit to block on a row lock: a
// guard against hanging, not a performance assertion.
const lockWaitTimeout = 30 * time.Second

func put(t testing.TB, db kv.Store, key string, value []byte) {
	t.Helper()
	tx, err := db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Discard()
	if err := tx.Set([]byte(key), value); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func get(t testing.TB, db kv.Store, key string) ([]byte, error) {
	t.Helper()
	tx, err := db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Discard()
	return tx.Get([]byte(key))
}

// Spec: two nodes (two engines, two pools) commit, at the same moment, two
// transactions each of which read what the other writes (write skew):
// exactly one commits, the other fails with ErrConflict, and the database
// holds exactly the winner's write. Repeated, so that the commits really
// overlap in the database.
func TestTwoNodesWriteSkew(t *testing.T) {
	url := pgtest.NewDatabase(t)
	nodes := [2]kv.Store{kv.NewDB(openURL(t, url)), kv.NewDB(openURL(t, url))}
	const rounds = 40
	won := [2]int{}
	for round := range rounds {
		keys := [2]string{fmt.Sprintf("x/%d", round), fmt.Sprintf("y/%d", round)}
		put(t, nodes[0], keys[0], []byte("0"))
		put(t, nodes[0], keys[1], []byte("0"))
		var txs [2]kv.Txn
		for i, node := range nodes {
			tx, err := node.Begin(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Discard()
			// Node i reads key i and writes the other.
			if v, err := tx.Get([]byte(keys[i])); err != nil || string(v) != "0" {
				t.Fatalf("node %d read %q, %v", i, v, err)
			}
			if err := tx.Set([]byte(keys[1-i]), []byte("1")); err != nil {
				t.Fatal(err)
			}
			txs[i] = tx
		}
		var errs [2]error
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range txs {
			wg.Go(func() {
				<-start
				errs[i] = txs[i].Commit(context.Background())
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both nodes committed a write skew", round)
				}
				winner = i
			case !errors.Is(err, kv.ErrConflict):
				t.Fatalf("round %d: node %d: %v; want ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither node committed: %v", round, errs)
		}
		won[winner]++
		for i, key := range keys {
			want := "0"
			if i == 1-winner {
				want = "1"
			}
			if v, err := get(t, nodes[1], key); err != nil || string(v) != want {
				t.Fatalf("round %d: %s = %q, %v; want %q (node %d won)", round, key, v, err, want, winner)
			}
		}
	}
	t.Logf("%d rounds: node 0 won %d, node 1 won %d", rounds, won[0], won[1])
}

// Spec: a fence that another node rewrites while a commit fenced on it is
// in flight fails that commit with ErrFenced, and nothing of it is applied:
// the fence is checked under a lock inside the commit's own database
// transaction, whether the fence key existed (and is deleted) or not (and
// is created).
func TestFenceMovedDuringCommit(t *testing.T) {
	url := pgtest.NewDatabase(t)
	db := kv.NewDB(openURL(t, url))
	// The sealed bytes of the fence key at epoch 1, as any kv.DB stores them.
	mem := kv.NewMemEngine()
	put(t, kv.NewDB(mem), "fence/absent", kv.PutEpoch(1))
	snap, _ := mem.NewSnapshot()
	sealed, err := snap.Get([]byte("fence/absent"))
	if err != nil {
		t.Fatal(err)
	}
	put(t, db, "fence/present", kv.PutEpoch(1))

	for _, c := range []struct {
		fence string
		epoch uint64
		other string // what the other node's transaction does
		args  []any
	}{
		{"fence/present", 1, "DELETE FROM kelpie_kv WHERE k = $1", []any{[]byte("fence/present")}},
		{"fence/absent", 0, "INSERT INTO kelpie_kv (k, v, ver) VALUES ($1, $2, 7)", []any{[]byte("fence/absent"), sealed}},
	} {
		t.Run(c.fence, func(t *testing.T) {
			other, err := pgx.Connect(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(context.Background())
			otx, err := other.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer otx.Rollback(context.Background())
			if _, err := otx.Exec(t.Context(), c.other, c.args...); err != nil {
				t.Fatal(err)
			}

			tx, err := db.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Discard()
			if err := tx.Fence([]byte(c.fence), c.epoch); err != nil {
				t.Fatal(err)
			}
			data := "data/" + c.fence
			if err := tx.Set([]byte(data), []byte("stale")); err != nil {
				t.Fatal(err)
			}
			committed := make(chan error, 1)
			go func() { committed <- tx.Commit(context.Background()) }()
			waitForLockWait(t, url, committed)
			if err := otx.Commit(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := <-committed; !errors.Is(err, kv.ErrFenced) {
				t.Fatalf("Commit = %v; want ErrFenced", err)
			}
			if v, err := get(t, db, data); !errors.Is(err, kv.ErrNotFound) {
				t.Fatalf("the fenced commit's write is there: %q, %v", v, err)
			}
		})
	}
}

// waitForLockWait returns once a session of the database waits for a lock
// (the commit behind the other transaction), failing if the commit ends
// first.
func waitForLockWait(t *testing.T, url string, committed <-chan error) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for deadline := time.Now().Add(lockWaitTimeout); ; {
		var waiting int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
		select {
		case err := <-committed:
			t.Fatalf("the commit did not wait for the other transaction: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the commit never waited for the other transaction's lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
