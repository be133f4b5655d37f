package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/kvtest"
	"github.com/kelpie/kelpie/kv/pebble"
)

// BenchmarkCommit measures transactions that read a key and write it (200
// bytes), each durable on return, from 1 and 16 concurrent writers, each
// transaction on a key of its own: on Postgres (the test server, on this
// machine's disk, fsync and synchronous_commit on), and on Pebble in a
// temporary directory on the same disk, both through kv.DB. Keys are spread
// over the key space, as agents' random ids spread theirs; the store holds
// no keys before, or benchPreload (as a store of many agents does). A
// conflict is retried, as the actor runtime retries it, and counted
// (conflicts/op): Postgres's serializable isolation tracks reads of absent
// keys by index page, so transactions on different keys of one page can
// conflict, and a small table has few pages.
//
//	go test ./kv/postgres/ -run '^$' -bench BenchmarkCommit -benchtime 2000x
func BenchmarkCommit(b *testing.B) {
	engines := []struct {
		name string
		open func(b *testing.B) kv.Engine
	}{
		{"postgres", func(b *testing.B) kv.Engine { return openEngine(b) }},
		{"pebble", func(b *testing.B) kv.Engine {
			eng, err := pebble.Open(b.TempDir(), pebble.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			return eng
		}},
	}
	for _, eng := range engines {
		for _, preload := range []int{0, benchPreload} {
			for _, writers := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/keys=%d/writers=%d", eng.name, preload, writers), func(b *testing.B) {
					e := eng.open(b)
					db := kv.NewDB(e)
					defer db.Close()
					preloadKeys(b, e, preload)
					benchReadWrites(b, db, writers)
				})
			}
		}
	}
}

// benchPreload is how many keys the store holds before the measurement,
// in its second setting.
const benchPreload = 100_000

// benchKey is the i'th key: an odd multiplier permutes the keys, spreading
// them over the key space.
func benchKey(i uint64) []byte {
	return fmt.Appendf(nil, "bench/%016x", i*0x9e3779b97f4a7c15)
}

// preloadKeys writes n keys into eng, a thousand a batch.
func preloadKeys(b *testing.B, eng kv.Engine, n int) {
	db := kv.NewDB(eng) // shares eng: never closed
	for start := 0; start < n; start += 1000 {
		tx, err := db.Begin(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		for i := start; i < min(start+1000, n); i++ {
			// Among the measured keys: the measured transactions
			// write from the first on.
			if err := tx.Set(benchKey(1<<40+uint64(i)), benchValue); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReadWrites runs b.N read-write transactions over writers
// goroutines, retrying conflicts, and reports commits/s and conflicts/op.
func benchReadWrites(b *testing.B, db kv.Store, writers int) {
	var conflicts atomic.Int64
	kvtest.RunWriters(b, writers, func(i uint64) error {
		key := benchKey(i)
		for {
			err := readWrite(db, key)
			if !errors.Is(err, kv.ErrConflict) {
				return err
			}
			conflicts.Add(1)
		}
	})
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
}

var benchValue = make([]byte, 200)

// readWrite reads key and writes it, in one transaction.
func readWrite(db kv.Store, key []byte) error {
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Discard()
	if _, err := tx.Get(key); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	if err := tx.Set(key, benchValue); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
