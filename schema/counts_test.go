package schema_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Spec: folding a count's deltas into its base keeps the count (of all
// agents, of blocks, of the agents with a term), and leaves a store that
// keeps every rule.
func TestFoldCountsKeepsTheCount(t *testing.T) {
	ctx := context.Background()
	store := kv.NewDB(kv.NewMemEngine())
	put(t, store, func(txn kv.Txn) {
		for _, e := range populated(t) {
			must(t, txn.Set(e.Key, e.Value))
		}
	})
	terms := []schema.Term{{Kind: schema.TermTag, Value: "red"}, {Kind: schema.TermTag, Value: "blue"},
		{Kind: schema.TermProject, Value: "project-1"}, {Kind: schema.TermTag, Value: "never"}}
	totals := func() (agents, blocks int, byTerm []int) {
		txn, err := store.Begin(ctx)
		must(t, err)
		defer txn.Discard()
		agents, err = schema.Total(txn, schema.CountedAgents)
		must(t, err)
		blocks, err = schema.Total(txn, schema.CountedBlocks)
		must(t, err)
		for _, term := range terms {
			n, err := schema.TermTotal(txn, term)
			must(t, err)
			byTerm = append(byTerm, n)
		}
		return agents, blocks, byTerm
	}
	agents, blocks, byTerm := totals()
	if agents != 1 || blocks != 2 || !slices.Equal(byTerm, []int{1, 1, 1, 0}) {
		t.Fatalf("before folding: %d agents, %d blocks, %v by term; want 1, 2 and [1 1 1 0]", agents, blocks, byTerm)
	}
	if n, err := schema.FoldCounts(ctx, store); err != nil || n == 0 {
		t.Fatalf("fold: %d, %v; want the deltas folded", n, err)
	}
	if n, err := schema.FoldCounts(ctx, store); err != nil || n != 0 {
		t.Fatalf("fold again: %d, %v; want nothing left", n, err)
	}
	if a, b, ts := totals(); a != agents || b != blocks || !slices.Equal(ts, byTerm) {
		t.Fatalf("after folding: %d agents, %d blocks, %v by term; want %d, %d and %v", a, b, ts, agents, blocks, byTerm)
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

// Spec: a block created under a minted id, alone or counted with the
// create of a minted agent, is stored and counted as CreateBlock stores and
// counts it, and its delete takes the count back.
func TestCreateMintedBlockCountsAsCreateBlock(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	creates := map[string]func(kv.Txn, *schema.Block) error{
		"CreateBlock":       schema.CreateBlock,
		"CreateMintedBlock": func(txn kv.Txn, b *schema.Block) error { return schema.CreateMintedBlock(txn, b, nil) },
		"CreateMintedBlock of an agent's create": func(txn kv.Txn, b *schema.Block) error {
			counts := schema.NewMintedCounts("agent-00000000-0000-4000-8000-000000000001")
			if err := schema.CreateMintedBlock(txn, b, counts); err != nil {
				return err
			}
			return schema.IndexMintedAgent(txn, schema.Indexed{}, nil, counts)
		},
	}
	for name, create := range creates {
		store := kv.NewDB(kv.NewMemEngine())
		b := &schema.Block{Block: letta.Block{ID: "block-00000000-0000-4000-8000-000000000001", Label: "human"}, CreatedAt: at, UpdatedAt: at}
		put(t, store, func(txn kv.Txn) { must(t, create(txn, b)) })
		count := func() int {
			txn, err := store.Begin(ctx)
			must(t, err)
			defer txn.Discard()
			n, err := schema.Total(txn, schema.CountedBlocks)
			must(t, err)
			return n
		}
		if n := count(); n != 1 {
			t.Errorf("%s: %d blocks counted, want 1", name, n)
		}
		for _, p := range schema.Check(scan(t, store)).Problems {
			t.Errorf("%s: %s", name, p.Message)
		}
		put(t, store, func(txn kv.Txn) { must(t, schema.DeleteBlock(txn, b)) })
		if n := count(); n != 0 {
			t.Errorf("%s, then DeleteBlock: %d blocks counted, want 0", name, n)
		}
	}
}

// Spec: FoldCounts folds an object's delta of -1 only with, or after, the
// create's key (CreateCounts) holding its 1, even when the creates' keys
// fill a fold: the count of a name only a hidden agent had never goes
// below 0, and every fold keeps the counts.
func TestFoldTakesTheCreatesFirst(t *testing.T) {
	ctx := context.Background()
	store := kv.NewDB(kv.NewMemEngine())
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	agent := func(i int) *schema.Agent {
		return &schema.Agent{ID: fmt.Sprintf("agent-00000000-0000-4000-8000-%012d", i), Name: fmt.Sprintf("agent %d", i), CreatedAt: at}
	}
	create := func(txn kv.Txn, a *schema.Agent) {
		must(t, schema.IndexMintedAgent(txn, schema.IndexedOf(a), nil, schema.NewMintedCounts(a.ID)))
	}
	put(t, store, func(txn kv.Txn) {
		for i := range schema.MaxFold {
			create(txn, agent(i))
		}
	})
	last := agent(schema.MaxFold) // its create's key sorts after the others
	put(t, store, func(txn kv.Txn) { create(txn, last) })
	hidden := *last
	hidden.Hidden = new(true)
	put(t, store, func(txn kv.Txn) { must(t, schema.IndexAgent(txn, schema.IndexedOf(last), schema.IndexedOf(&hidden))) })
	counts := func() (agents, named int) {
		txn, err := store.Begin(ctx)
		must(t, err)
		defer txn.Discard()
		agents, err = schema.Total(txn, schema.CountedAgents)
		must(t, err)
		named, err = schema.TermTotal(txn, schema.Term{Kind: schema.TermName, Value: last.Name})
		must(t, err)
		return agents, named
	}
	for fold := 1; ; fold++ {
		if agents, named := counts(); agents != schema.MaxFold || named != 0 {
			t.Fatalf("before fold %d: %d agents and %d named %q; want %d and 0", fold, agents, named, last.Name, schema.MaxFold)
		}
		n, err := schema.FoldCounts(ctx, store)
		if err != nil {
			t.Fatalf("fold %d: %v", fold, err)
		}
		if n == 0 {
			if fold < 3 {
				t.Fatalf("fold %d folded nothing; want the creates' keys folded first, then the rest", fold)
			}
			return
		}
	}
}
