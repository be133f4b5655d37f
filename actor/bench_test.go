package actor_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// counterBehavior's state is a small *uint64. "noop" does nothing (its
// transaction is read-only once the activation's epoch is bumped); "inc"
// saves state.
type counterBehavior struct{}

func (counterBehavior) Decode(_ actor.ID, data []byte) (any, error) {
	n := new(uint64)
	if len(data) == 8 {
		*n = binary.BigEndian.Uint64(data)
	}
	return n, nil
}

func (counterBehavior) Encode(s any) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, *s.(*uint64)), nil
}

func (counterBehavior) Invoke(_ context.Context, c *actor.Call) ([]byte, error) {
	if c.Op == "inc" {
		*c.State.(*uint64)++
		c.SetState(c.State)
	}
	return nil, nil
}

func benchRuntime(b *testing.B, cfg actor.Config) *actor.Runtime {
	b.Helper()
	if cfg.Store == nil {
		cfg.Store = kv.NewMemDB()
	}
	if cfg.Clock == nil {
		cfg.Clock = newFakeClock()
	}
	rt, err := actor.NewRuntime(cfg, map[string]actor.Behavior{ns: counterBehavior{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func benchIDs(b *testing.B, n int) []actor.ID {
	ids := make([]actor.ID, n)
	for i := range ids {
		ids[i] = mustID(b, fmt.Sprintf("a-%d", i))
	}
	return ids
}

// BenchmarkInvokeNoop is the runtime's per-invocation overhead: a no-op on an
// already active actor over the in-memory store. Each call still begins and
// commits a (read-only) transaction, which costs a snapshot.
func BenchmarkInvokeNoop(b *testing.B) {
	ctx := context.Background()
	warm := func(b *testing.B, rt *actor.Runtime, ids []actor.ID) {
		for _, id := range ids {
			if _, err := rt.Invoke(ctx, id, "noop", nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("callers=1", func(b *testing.B) {
		rt := benchRuntime(b, actor.Config{})
		ids := benchIDs(b, 1)
		warm(b, rt, ids)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rt.Invoke(ctx, ids[0], "noop", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	// 64 callers (32 per GOMAXPROCS on this 2-core machine).
	parallel := func(b *testing.B, actors int) {
		rt := benchRuntime(b, actor.Config{})
		ids := benchIDs(b, actors)
		warm(b, rt, ids)
		var next atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(64 / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			id := ids[int(next.Add(1)-1)%len(ids)]
			for pb.Next() {
				if _, err := rt.Invoke(ctx, id, "noop", nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("callers=many/parallel-distinct-actors", func(b *testing.B) { parallel(b, 64) })
	b.Run("callers=many/parallel-same-actor", func(b *testing.B) { parallel(b, 1) })
}

// BenchmarkMutexMapFloor is the floor the runtime is measured against: a
// mutex-guarded map update.
func BenchmarkMutexMapFloor(b *testing.B) {
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/a-%d", ns, i)
	}
	b.Run("single", func(b *testing.B) {
		var mu sync.Mutex
		m := map[string]int{}
		for b.Loop() {
			mu.Lock()
			m[keys[0]]++
			mu.Unlock()
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var mu sync.Mutex
		m := map[string]int{}
		var next atomic.Int64
		b.SetParallelism(64 / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			k := keys[int(next.Add(1)-1)%len(keys)]
			for pb.Next() {
				mu.Lock()
				m[k]++
				mu.Unlock()
			}
		})
	})
}

func memStats() runtime.MemStats {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m
}

// BenchmarkActivationMemory reports the memory one live activation holds
// (heap, and goroutine stack) and what is left per actor once all are
// evicted. The actors' state is put in storage beforehand, so the store's
// own footprint is in the baseline.
func BenchmarkActivationMemory(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	store := kv.NewMemDB()
	ids := benchIDs(b, n)
	{
		seed, err := actor.NewRuntime(actor.Config{Store: store, Clock: newFakeClock()},
			map[string]actor.Behavior{ns: counterBehavior{}})
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			if _, err := seed.Invoke(ctx, id, "inc", nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := seed.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}

	var live, stack, left float64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clk := newFakeClock()
		rt, err := actor.NewRuntime(actor.Config{Store: store, Clock: clk, IdleTimeout: time.Minute},
			map[string]actor.Behavior{ns: counterBehavior{}})
		if err != nil {
			b.Fatal(err)
		}
		goroutines := runtime.NumGoroutine()
		b.StopTimer()
		before := memStats()
		b.StartTimer()

		for _, id := range ids {
			if _, err := rt.Invoke(ctx, id, "noop", nil); err != nil {
				b.Fatal(err)
			}
		}

		b.StopTimer()
		active := memStats()
		if s := rt.Stats(); s.Active != n {
			b.Fatalf("Active = %d, want %d", s.Active, n)
		}
		live += float64(int64(active.HeapAlloc)-int64(before.HeapAlloc)) / n
		stack += float64(int64(active.StackInuse)-int64(before.StackInuse)) / n
		b.StartTimer()

		clk.Advance(2 * time.Minute)
		clk.sweep(b)

		b.StopTimer()
		if s := rt.Stats(); s.Active != 0 {
			b.Fatalf("Active = %d after eviction", s.Active)
		}
		// Warm drainers may stay (at most MaxIdleDrainers, whatever
		// the number of actors); no evicted activation holds one.
		waitFor(b, "evicted activations' goroutines to exit", func() bool {
			return runtime.NumGoroutine() <= goroutines+actor.MaxIdleDrainers
		})
		evicted := memStats()
		left += float64(int64(evicted.HeapAlloc)-int64(before.HeapAlloc)) / n
		if err := rt.Close(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(live/float64(b.N), "heap-B/activation")
	b.ReportMetric(stack/float64(b.N), "stack-B/activation")
	b.ReportMetric(left/float64(b.N), "heap-B/evicted-actor")
}
