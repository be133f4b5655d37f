package schema

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kelpie/kelpie/kv"
)

// Counts of listed agents and of blocks, readable without a scan of the
// objects: a base, and a delta per object whose change is not yet folded
// into it (a minted agent's create counts all it makes in one key of its
// own instead: CreateCounts). A write changes only its own object's delta,
// so writes of different objects never conflict over a count; FoldCounts
// moves deltas into the base in the background, so a count reads the base
// and the few deltas written since the last fold.

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

// A deltaWriter adds delta (1 or -1) to object id's share of the count
// what: agents, blocks, or a term's path (termPath).
type deltaWriter func(txn kv.Txn, what, id string, delta int) error

// addObjectDelta is the deltaWriter of the object's own delta key.
func addObjectDelta(txn kv.Txn, what, id string, delta int) error {
	return addDelta(txn, objectDeltaKey(what, id), delta)
}

// objectDeltaKey is the delta key of object id in the count what.
func objectDeltaKey(what, id string) []byte {
	if what == CountedAgents || what == CountedBlocks {
		return CountDeltaKey(what, id)
	}
	return []byte(termDeltas + what + "/" + id)
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
	return sumCount(txn, CountBaseKey(what), countDeltas(what), what)
}

// sumCount adds a count's base, its objects' deltas and what the creates not
// yet folded added to it (created: the count's name in CreateCounts).
func sumCount(txn kv.Txn, base, deltas []byte, created string) (int, error) {
	total, err := readCount(txn, base)
	if err != nil {
		return 0, err
	}
	err = kv.ScanEach(txn, kv.PrefixRange(deltas), false, func(p kv.KeyValue) (bool, error) {
		n, err := parseCount(p.Key, p.Value)
		total += n
		return err == nil, err
	})
	if err != nil || !createCounted(created) {
		return total, err
	}
	n, err := sumCreated(txn, created)
	return total + n, err
}

// MaxFold is how many delta keys one FoldCounts transaction folds.
const MaxFold = 10_000

// deltaPrefixes prefix the keys FoldCounts folds, the creates' first.
var deltaPrefixes = [...]string{CreateCounts.Prefix, string(countDeltas(CountedAgents)), string(countDeltas(CountedBlocks)), termDeltas}

// FoldCounts folds up to MaxFold delta keys of the counts of agents, of
// blocks and of terms into their bases, in one transaction, and returns how
// many it folded. It reads the keys one by one, so that deltas written
// meanwhile do not conflict with it; only a write to a key it folds does
// (and then nothing is folded). A base that comes to 0 is deleted.
//
// It folds objects' deltas only with every create's key it saw: an
// object's -1 is written after the create's key holding its 1, so a base
// never takes the one without the other.
func FoldCounts(ctx context.Context, store kv.Store) (int, error) {
	var keys [][]byte
	err := update(ctx, store, func(txn kv.Txn) error {
		for _, prefix := range deltaPrefixes {
			kvs, err := txn.Scan(kv.PrefixRange([]byte(prefix)), MaxFold-len(keys), false)
			if err != nil {
				return err
			}
			for _, p := range kvs {
				keys = append(keys, p.Key)
			}
			if len(keys) == MaxFold {
				return nil
			}
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	folded := 0
	err = update(ctx, store, func(txn kv.Txn) error {
		sums := map[string]int{}
		var bases []string // in the order first met, for a deterministic write order
		add := func(base []byte, n int) {
			if _, ok := sums[string(base)]; !ok {
				bases = append(bases, string(base))
			}
			sums[string(base)] += n
		}
		for _, k := range keys {
			v, err := txn.Get(k)
			if errors.Is(err, kv.ErrNotFound) {
				continue // folded meanwhile, or an object's delta back to 0
			}
			if err != nil {
				return err
			}
			if err := foldDelta(k, v, add); err != nil {
				return err
			}
			if err := txn.Delete(k); err != nil {
				return err
			}
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

// foldDelta calls add with each base a delta key (of an object, or of a
// create) changes, and by how much.
func foldDelta(key, value []byte, add func(base []byte, n int)) error {
	if bytes.HasPrefix(key, []byte(CreateCounts.Prefix)) {
		return eachCreated(key, value, func(what, _ string) error {
			add(createdBase(what), 1)
			return nil
		})
	}
	n, err := parseCount(key, value)
	if err != nil {
		return err
	}
	if bytes.HasPrefix(key, []byte(termDeltas)) {
		base, err := termBaseOf(key)
		if err != nil {
			return err
		}
		add(base, n)
		return nil
	}
	what, _, _ := strings.Cut(strings.TrimPrefix(string(key), Counts.Prefix), "/")
	add(CountBaseKey(what), n)
	return nil
}
