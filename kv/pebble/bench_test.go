package pebble

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/kvtest"
)

var benchWriters = []int{1, 16, 64}

// BenchmarkPebbleSyncedCommit measures raw engine Applies of one 200-byte
// value, each durable, from concurrent writers sharing fsyncs.
func BenchmarkPebbleSyncedCommit(b *testing.B) {
	for _, w := range benchWriters {
		b.Run(fmt.Sprint("writers=", w), func(b *testing.B) {
			eng := openEngine(b, b.TempDir(), Options{})
			defer eng.Close()
			val := benchValue()
			kvtest.RunWriters(b, w, func(i uint64) error {
				return eng.Apply([]kv.Mutation{{Key: benchKey(i), Value: val}})
			})
		})
	}
}

// BenchmarkDBCommit is BenchmarkPebbleSyncedCommit through kv.DB: a
// transaction per commit, with validation and checksums.
func BenchmarkDBCommit(b *testing.B) {
	for _, w := range benchWriters {
		b.Run(fmt.Sprint("writers=", w), func(b *testing.B) {
			db := kv.NewDB(openEngine(b, b.TempDir(), Options{}))
			defer db.Close()
			val := benchValue()
			ctx := context.Background()
			kvtest.RunWriters(b, w, func(i uint64) error {
				tx, err := db.Begin(ctx)
				if err != nil {
					return err
				}
				defer tx.Discard()
				if err := tx.Set(benchKey(i), val); err != nil {
					return err
				}
				return tx.Commit(ctx)
			})
		})
	}
}

func benchValue() []byte {
	val := make([]byte, 200)
	for i := range val {
		val[i] = byte(rand.Uint32())
	}
	return val
}

func benchKey(i uint64) []byte { return fmt.Appendf(nil, "bench/%016d", i) }
