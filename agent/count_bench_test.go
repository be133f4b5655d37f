package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// BenchmarkCountByTerm measures counts of agents filtered by one term on an
// in-memory store holding KELPIE_BENCH_AGENTS agents (default 100000),
// written straight through schema (records, IndexAgent) in large
// transactions, then folded. Every agent has the tag "all", one of 100 tags
// t0..t99 (1% each), one of 1000 tags u0..u999 (0.1%), and a unique name.
// ns/op is one count; the same file runs against an older tree for a
// before/after.
func BenchmarkCountByTerm(b *testing.B) {
	n := 100_000
	if v := os.Getenv("KELPIE_BENCH_AGENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("KELPIE_BENCH_AGENTS=%q: want at least 1000", v)
		}
	}
	ctx := context.Background()
	store := kv.NewDB(kv.NewMemEngine())
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 2000
	for i := 0; i < n; i += batch {
		txn, err := store.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for j := i; j < min(i+batch, n); j++ {
			a := &schema.Agent{ID: letta.DerivedID("agent", strconv.Itoa(j)), Name: fmt.Sprint("agent-", j),
				Tags: []string{"all", fmt.Sprint("t", j%100), fmt.Sprint("u", j%1000)}, CreatedAt: start.Add(time.Duration(j) * time.Millisecond)}
			data, err := schema.Encode(a)
			if err == nil {
				err = txn.Set(schema.AgentKey(a.ID), data)
			}
			if err == nil {
				err = schema.IndexAgent(txn, schema.Indexed{}, schema.IndexedOf(a))
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := txn.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	svc := newService(b, store, actor.Config{})
	b.Cleanup(func() { svc.Close(context.Background()) })
	// The service folds the deltas every second: wait until none is left,
	// so that a count reads what it reads between bursts of writes.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		txn, err := store.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		left, err := txn.Scan(kv.Range{Start: []byte("count"), End: []byte("countz")}, 0, false)
		txn.Discard()
		if err != nil {
			b.Fatal(err)
		}
		deltas := 0
		for _, p := range left {
			if bytes.Contains(p.Key, []byte("/delta/")) {
				deltas++
			}
		}
		if deltas == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d deltas still not folded", deltas)
		}
	}
	for _, q := range []struct {
		name string
		f    agent.AgentFilter
		want int
	}{
		{"all", agent.AgentFilter{}, n},
		{"tag-100%", agent.AgentFilter{Tags: []string{"all"}}, n},
		{"tag-1%", agent.AgentFilter{Tags: []string{"t7"}}, n / 100},
		{"tag-0.1%", agent.AgentFilter{Tags: []string{"u7"}}, n / 1000},
		{"name", agent.AgentFilter{Name: fmt.Sprint("agent-", n/2)}, 1},
		{"tags-any", agent.AgentFilter{Tags: []string{"u7", "u8"}}, 2 * n / 1000},
	} {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				got, err := svc.Agents.Count(ctx, q.f)
				if err != nil || got != q.want {
					b.Fatalf("count %+v = %d, %v; want %d", q.f, got, err, q.want)
				}
			}
		})
	}
}
