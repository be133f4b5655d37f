package schema_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Spec: Upgrade brings a store of layout version 1 (no agent terms, counts
// or version) to Version, so that it keeps every rule; run again, it does
// nothing; a newer store is refused.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := context.Background()
	store := kv.NewDB(kv.NewMemEngine())
	old := 0
	put(t, store, func(txn kv.Txn) {
		for _, e := range populated(t) {
			switch schema.FamilyOf(e.Key) {
			case schema.AgentTerms, schema.TagNames, schema.Counts, schema.TermCounts, schema.CreateCounts, schema.Meta, schema.PassageTerms, schema.PassageCounts, schema.PassageTagCounts:
				old++
				continue
			}
			must(t, txn.Set(e.Key, e.Value))
		}
	})
	if old == 0 {
		t.Fatal("the populated store has no agent terms, counts or version to take away")
	}
	if v, err := schema.VersionOf(ctx, store); err != nil || v != 1 {
		t.Fatalf("VersionOf = %d, %v; want 1", v, err)
	}
	n, err := schema.Upgrade(ctx, store)
	if err != nil || n != 1 {
		t.Fatalf("Upgrade = %d, %v; want 1 agent indexed", n, err)
	}
	rep := schema.Check(scan(t, store))
	for _, p := range rep.Problems {
		t.Errorf("after upgrade: %s: %s", p.Object, p.Message)
	}
	if n, err := schema.Upgrade(ctx, store); err != nil || n != 0 {
		t.Fatalf("second Upgrade = %d, %v; want nothing to do", n, err)
	}
	put(t, store, func(txn kv.Txn) { must(t, txn.Set([]byte(schema.VersionKey), []byte("99"))) })
	if _, err := schema.Upgrade(ctx, store); err == nil || !strings.Contains(err.Error(), "newer than this server's") {
		t.Fatalf("Upgrade of a newer store: %v", err)
	}
}

// Spec: a store of layout version 2 (no index of tag names), 3 (no
// trigram terms of names), 4 (no word index or counts of passages) or 5
// (no counts of terms) is brought to Version by Upgrade: afterwards it
// passes Check, which adds up every count.
func TestUpgradeFromVersions2To5(t *testing.T) {
	gramPrefix := schema.AgentTerms.Prefix + schema.TermGram + "/"
	for _, version := range []int{2, 3, 4, 5} {
		t.Run(strconv.Itoa(version), func(t *testing.T) {
			ctx := context.Background()
			store := kv.NewDB(kv.NewMemEngine())
			dropped := 0
			put(t, store, func(txn kv.Txn) {
				for _, e := range withoutCreateCounts(t, populated(t)) {
					f := schema.FamilyOf(e.Key)
					switch {
					case version == 2 && f == schema.TagNames, version < 4 && strings.HasPrefix(string(e.Key), gramPrefix),
						version < 5 && (f == schema.PassageTerms || f == schema.PassageCounts || f == schema.PassageTagCounts), f == schema.TermCounts:
						dropped++
						continue
					case f == schema.Meta:
						must(t, txn.Set(e.Key, []byte(strconv.Itoa(version))))
						continue
					}
					must(t, txn.Set(e.Key, e.Value))
				}
			})
			if dropped == 0 {
				t.Fatalf("the populated store has no entries version %d lacks", version)
			}
			if v, err := schema.VersionOf(ctx, store); err != nil || v != version {
				t.Fatalf("VersionOf = %d, %v; want %d", v, err, version)
			}
			upgradeAndCheck(t, store)
		})
	}
}

// Spec: a store of layout version 6, where a create counted its objects
// with a delta each, not with a key of the create's (CreateCounts), is
// brought to Version by Upgrade: it passes Check, and folding its deltas
// keeps its counts.
func TestUpgradeFromVersion6(t *testing.T) {
	ctx := context.Background()
	store := kv.NewDB(kv.NewMemEngine())
	es := populated(t)
	if !slices.ContainsFunc(es, func(e schema.Entry) bool { return schema.FamilyOf(e.Key) == schema.CreateCounts }) {
		t.Fatal("the populated store has no count key of a create to take away")
	}
	old := withoutCreateCounts(t, es)
	put(t, store, func(txn kv.Txn) {
		for _, e := range old {
			if schema.FamilyOf(e.Key) == schema.Meta {
				e.Value = []byte("6")
			}
			must(t, txn.Set(e.Key, e.Value))
		}
	})
	upgradeAndCheck(t, store)
	if n, err := schema.FoldCounts(ctx, store); err != nil || n == 0 {
		t.Fatalf("fold: %d, %v; want the deltas folded", n, err)
	}
	for _, p := range schema.Check(scan(t, store)).Problems {
		t.Errorf("after folding: %s: %s", p.Object, p.Message)
	}
}

// upgradeAndCheck upgrades store, which must then pass Check and be at
// Version.
func upgradeAndCheck(t *testing.T, store kv.Store) {
	t.Helper()
	ctx := context.Background()
	if _, err := schema.Upgrade(ctx, store); err != nil {
		t.Fatal(err)
	}
	for _, p := range schema.Check(scan(t, store)).Problems {
		t.Errorf("after upgrade: %s: %s", p.Object, p.Message)
	}
	if v, err := schema.VersionOf(ctx, store); err != nil || v != schema.Version {
		t.Fatalf("VersionOf after upgrade = %d, %v", v, err)
	}
}

// withoutCreateCounts returns es with each count key of a create
// (CreateCounts) replaced by the objects' deltas a create wrote before
// layout version 7 (added to the deltas of the same objects), in key
// order.
func withoutCreateCounts(t *testing.T, es []schema.Entry) []schema.Entry {
	t.Helper()
	var out []schema.Entry
	deltas := map[string]int{}
	for _, e := range es {
		switch f := schema.FamilyOf(e.Key); {
		case f == schema.CreateCounts:
			agentID := strings.TrimPrefix(string(e.Key), schema.CreateCounts.Prefix)
			for line := range strings.SplitSeq(string(e.Value), "\n") {
				what, id, ok := strings.Cut(line, " ")
				if !ok {
					id = agentID
				}
				key := schema.TermCounts.Prefix + "delta/" + what + "/" + id
				if what == schema.CountedAgents || what == schema.CountedBlocks {
					key = string(schema.CountDeltaKey(what, id))
				}
				deltas[key]++
			}
		case (f == schema.Counts || f == schema.TermCounts) && strings.Contains(string(e.Key), "/delta/"):
			n, err := strconv.Atoi(string(e.Value))
			must(t, err)
			deltas[string(e.Key)] += n
		default:
			out = append(out, e)
		}
	}
	for k, n := range deltas {
		if n != 0 {
			out = append(out, schema.Entry{Key: []byte(k), Value: strconv.AppendInt(nil, int64(n), 10)})
		}
	}
	slices.SortFunc(out, func(a, b schema.Entry) int { return bytes.Compare(a.Key, b.Key) })
	return out
}

func put(t *testing.T, store kv.Store, fn func(kv.Txn)) {
	t.Helper()
	txn, err := store.Begin(context.Background())
	must(t, err)
	defer txn.Discard()
	fn(txn)
	must(t, txn.Commit(context.Background()))
}

func scan(t *testing.T, store kv.Store) []schema.Entry {
	t.Helper()
	txn, err := store.Begin(context.Background())
	must(t, err)
	defer txn.Discard()
	kvs, err := txn.Scan(kv.Range{Start: []byte{0}}, 0, false)
	must(t, err)
	es := make([]schema.Entry, len(kvs))
	for i, p := range kvs {
		es[i] = schema.Entry{Key: p.Key, Value: p.Value}
	}
	return es
}
