package schema_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Spec: folding a count's deltas into its base keeps the count, and leaves
// a store that keeps every rule.
func TestFoldCountsKeepsTheCount(t *testing.T) {
	ctx := context.Background()
	store := kv.NewDB(kv.NewMemEngine())
	put(t, store, func(txn kv.Txn) {
		for _, e := range populated(t) {
			must(t, txn.Set(e.Key, e.Value))
		}
	})
	totals := func() (agents, blocks int) {
		txn, err := store.Begin(ctx)
		must(t, err)
		defer txn.Discard()
		agents, err = schema.Total(txn, schema.CountedAgents)
		must(t, err)
		blocks, err = schema.Total(txn, schema.CountedBlocks)
		must(t, err)
		return agents, blocks
	}
	agents, blocks := totals()
	if agents != 1 || blocks != 2 {
		t.Fatalf("before folding: %d agents, %d blocks; want 1 and 2", agents, blocks)
	}
	for _, what := range []string{schema.CountedAgents, schema.CountedBlocks} {
		n, err := schema.FoldCounts(ctx, store, what)
		if err != nil || n == 0 {
			t.Fatalf("fold %s: %d, %v; want its deltas folded", what, n, err)
		}
		if n, err := schema.FoldCounts(ctx, store, what); err != nil || n != 0 {
			t.Fatalf("fold %s again: %d, %v; want nothing left", what, n, err)
		}
	}
	if a, b := totals(); a != agents || b != blocks {
		t.Fatalf("after folding: %d agents, %d blocks; want %d and %d", a, b, agents, blocks)
	}
	es := scan(t, store)
	for _, e := range es {
		if strings.Contains(string(e.Key), "/delta/") {
			t.Errorf("delta %q left after folding", e.Key)
		}
	}
	for _, p := range schema.Check(es).Problems {
		t.Errorf("after folding: %s", p.Message)
	}
}
