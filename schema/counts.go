package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/kelpie/kelpie/kv"
)

// Counts of listed agents and of blocks, readable without a scan of the
// objects: a base, and a delta per object whose change is not yet folded
// into it. A write changes only its own object's delta, so writes of
// different objects never conflict over a count; FoldCounts moves deltas
// into the base in the background, so a count reads the base and the few
// deltas written since the last fold.

// What the counts count.
const (
	CountedAgents = "agents" // listed agents
	CountedBlocks = "blocks" // every block, templates and hidden ones included
)

// CountBaseKey holds the folded count of what; CountDeltaKey an object's
// change not yet folded into it (-1, or 1).
func CountBaseKey(what string) []byte { return []byte(Counts.Prefix + what + "/base") }

func CountDeltaKey(what, id string) []byte { return []byte(string(countDeltas(what)) + id) }

func countDeltas(what string) []byte { return []byte(Counts.Prefix + what + "/delta/") }

// addCount adds delta (1 or -1) to the count of what for object id.
func addCount(txn kv.Txn, what, id string, delta int) error {
	return addDelta(txn, CountDeltaKey(what, id), delta)
}

// addDelta adds delta (1 or -1) to an object's delta key.
func addDelta(txn kv.Txn, key []byte, delta int) error {
	n, err := readCount(txn, key)
	if err != nil {
		return err
	}
	switch n += delta; n {
	case 0:
		return txn.Delete(key)
	case 1, -1:
		return txn.Set(key, strconv.AppendInt(nil, int64(n), 10))
	}
	panic(fmt.Sprintf("schema: the count delta at %q would be %d: an object is counted at most once", key, n))
}

func readCount(txn kv.Txn, key []byte) (int, error) {
	v, err := txn.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return parseCount(key, v)
}

func parseCount(key, v []byte) (int, error) {
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, fmt.Errorf("count at %q: %q is not a number", key, v)
	}
	return n, nil
}

// Total returns the count of what (CountedAgents, CountedBlocks): its base
// and the deltas not yet folded into it.
func Total(txn kv.Txn, what string) (int, error) {
	return sumCount(txn, CountBaseKey(what), countDeltas(what))
}

// sumCount adds a count's base and its deltas.
func sumCount(txn kv.Txn, base, deltas []byte) (int, error) {
	total, err := readCount(txn, base)
	if err != nil {
		return 0, err
	}
	err = kv.ScanEach(txn, kv.PrefixRange(deltas), false, func(p kv.KeyValue) (bool, error) {
		n, err := parseCount(p.Key, p.Value)
		total += n
		return err == nil, err
	})
	return total, err
}

// MaxFold is how many deltas one FoldCounts transaction folds.
const MaxFold = 10_000

// FoldCounts folds up to MaxFold deltas of the count of what into its base,
// in one transaction, and returns how many it folded.
func FoldCounts(ctx context.Context, store kv.Store, what string) (int, error) {
	return fold(ctx, store, countDeltas(what), func([]byte) ([]byte, error) { return CountBaseKey(what), nil })
}

// fold folds up to MaxFold deltas under the prefix deltas into their bases
// (baseOf names a delta's), in one transaction, and returns how many it
// folded. It reads the deltas one by one, so that deltas written meanwhile
// do not conflict with it; only a write to a delta it folds does (and then
// nothing is folded). A base that comes to 0 is deleted.
func fold(ctx context.Context, store kv.Store, deltas []byte, baseOf func(delta []byte) ([]byte, error)) (int, error) {
	var keys [][]byte
	err := update(ctx, store, func(txn kv.Txn) error {
		kvs, err := txn.Scan(kv.PrefixRange(deltas), MaxFold, false)
		for _, p := range kvs {
			keys = append(keys, p.Key)
		}
		return err
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	folded := 0
	err = update(ctx, store, func(txn kv.Txn) error {
		sums := map[string]int{}
		var bases []string // in the order first met, for a deterministic write order
		for _, k := range keys {
			n, err := readCount(txn, k)
			if err != nil {
				return err
			}
			if err := txn.Delete(k); err != nil {
				return err
			}
			base, err := baseOf(k)
			if err != nil {
				return err
			}
			if _, ok := sums[string(base)]; !ok {
				bases = append(bases, string(base))
			}
			sums[string(base)] += n
		}
		for _, b := range bases {
			n, err := readCount(txn, []byte(b))
			if err != nil {
				return err
			}
			switch n += sums[b]; {
			case n < 0:
				return fmt.Errorf("schema: folding %d into the count at %q makes it %d: the store's counts are wrong", sums[b], b, n)
			case n == 0:
				err = txn.Delete([]byte(b))
			default:
				err = txn.Set([]byte(b), strconv.AppendInt(nil, int64(n), 10))
			}
			if err != nil {
				return err
			}
		}
		folded = len(keys)
		return nil
	})
	return folded, err
}
