package schema

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/kelpie/kelpie/kv"
)

// Version is the layout this package writes. Version 1 (no version key)
// had no agent terms and no agent counts; version 2 no index of tag names;
// version 3 no trigram terms of names; version 4 no word index and no
// counts of passages; version 5 no counts of terms (TermCounts); version 6
// no count keys of creates (CreateCounts), which it reads as it is: a
// create's counts were its objects' deltas, which version 7 folds too.
const Version = 7

// upgradeBatch is how many agents or passages one upgrade transaction
// indexes.
const upgradeBatch = 500

// VersionOf returns the layout version a store records: 1 when it records
// none.
func VersionOf(ctx context.Context, store kv.Store) (int, error) {
	txn, err := store.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer txn.Discard()
	v, err := txn.Get([]byte(VersionKey))
	if errors.Is(err, kv.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, fmt.Errorf("schema version at %q: %q is not a version", VersionKey, v)
	}
	return n, nil
}

// Upgrade brings a store written by an older version of this package to
// Version: it adds the agent terms (tag names and name trigrams included;
// and, from version 1, the counts), the passages' word index and counts,
// the counts of terms, then records the version (from version 6, nothing
// else).
// It must run before the store serves writes. It is idempotent, and a run
// cut short (a crash) is completed by the next one. upgraded is how many
// agents it indexed; 0, with no error, when the store was current.
func Upgrade(ctx context.Context, store kv.Store) (upgraded int, err error) {
	v, err := VersionOf(ctx, store)
	if err != nil || v == Version {
		return 0, err
	}
	if v > Version {
		return 0, fmt.Errorf("the store has layout version %d, newer than this server's %d: run a newer kelpie", v, Version)
	}
	if v < 4 {
		if upgraded, err = upgradeAgentIndexes(ctx, store, v); err != nil {
			return upgraded, err
		}
	}
	if v < 5 {
		if err := upgradePassageIndex(ctx, store); err != nil {
			return upgraded, fmt.Errorf("upgrade to layout version %d: %w", Version, err)
		}
	}
	if v < 6 {
		if err := upgradeTermCounts(ctx, store); err != nil {
			return upgraded, fmt.Errorf("upgrade to layout version %d: %w", Version, err)
		}
	}
	return upgraded, update(ctx, store, func(txn kv.Txn) error {
		return txn.Set([]byte(VersionKey), strconv.AppendInt(nil, Version, 10))
	})
}

// upgradeAgentIndexes writes the agent terms of a store of version v (< 4)
// and, from version 1, the counts of agents and blocks; it returns how many
// agents it indexed.
func upgradeAgentIndexes(ctx context.Context, store kv.Store, v int) (upgraded int, err error) {
	counts := map[string]int{}
	var after []byte
	for {
		n, last, listed, err := upgradeAgents(ctx, store, after)
		if err != nil {
			return upgraded, fmt.Errorf("upgrade to layout version %d, after %d agents: %w", Version, upgraded, err)
		}
		upgraded += n
		counts[CountedAgents] += listed
		if n < upgradeBatch {
			break
		}
		after = last
	}
	if v >= 2 {
		// Versions 2 and 3 kept their counts (a base and deltas): only
		// terms were missing.
		return upgraded, nil
	}
	err = update(ctx, store, func(txn kv.Txn) error {
		return kv.ScanEach(txn, kv.PrefixRange([]byte(BlockIndex.Prefix)), false, func(kv.KeyValue) (bool, error) {
			counts[CountedBlocks]++
			return true, nil
		})
	})
	if err != nil {
		return upgraded, fmt.Errorf("upgrade to layout version %d: counting blocks: %w", Version, err)
	}
	return upgraded, update(ctx, store, func(txn kv.Txn) error {
		for what, n := range counts {
			if err := txn.Set(CountBaseKey(what), strconv.AppendInt(nil, int64(n), 10)); err != nil {
				return err
			}
		}
		return nil
	})
}

// upgradePassageIndex writes every passage's postings, upgradeBatch
// passages a transaction, then sets each owner's counts to what it read
// (so a run cut short and run again counts each passage once).
func upgradePassageIndex(ctx context.Context, store kv.Store) error {
	counts := map[string]int{}
	tags := map[string]map[string]int{}
	r := kv.PrefixRange([]byte(Passages.Prefix))
	for {
		var kvs []kv.KeyValue
		err := update(ctx, store, func(txn kv.Txn) error {
			var err error
			if kvs, err = txn.Scan(r, upgradeBatch, false); err != nil {
				return err
			}
			for _, e := range kvs {
				p, err := DecodePassage(e.Value)
				if err != nil {
					return fmt.Errorf("%q: %w", e.Key, err)
				}
				owner := p.Owner()
				for _, t := range IndexedTerms(p) {
					if err := txn.Set(PassageTermKey(owner, t, e.Key), nil); err != nil {
						return err
					}
				}
				counts[owner]++
				for _, tag := range distinctTags(p) {
					if tags[owner] == nil {
						tags[owner] = map[string]int{}
					}
					tags[owner][tag]++
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("indexing passages: %w", err)
		}
		if len(kvs) < upgradeBatch {
			break
		}
		r.Start = append(kvs[len(kvs)-1].Key, 0)
	}
	var keys [][]byte
	var values []int
	for owner, n := range counts {
		keys, values = append(keys, PassageCountKey(owner)), append(values, n)
		for tag, n := range tags[owner] {
			keys, values = append(keys, PassageTagCountKey(owner, tag)), append(values, n)
		}
	}
	for start := 0; start < len(keys); start += upgradeBatch {
		err := update(ctx, store, func(txn kv.Txn) error {
			for i := start; i < min(start+upgradeBatch, len(keys)); i++ {
				if err := txn.Set(keys[i], strconv.AppendInt(nil, int64(values[i]), 10)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("counting passages: %w", err)
		}
	}
	return nil
}

// upgradeAgents writes the terms of up to upgradeBatch agents past the key
// after; it returns how many it read, the key of the last, and how many of
// them are listed.
func upgradeAgents(ctx context.Context, store kv.Store, after []byte) (n int, last []byte, listed int, err error) {
	r := kv.PrefixRange(AgentKey(""))
	if after != nil {
		r.Start = append(after, 0)
	}
	err = update(ctx, store, func(txn kv.Txn) error {
		n, last, listed = 0, nil, 0
		kvs, err := txn.Scan(r, upgradeBatch, false)
		if err != nil {
			return err
		}
		for _, p := range kvs {
			a, err := DecodeAgent(p.Value)
			if err != nil {
				return fmt.Errorf("%q: %w", p.Key, err)
			}
			for _, t := range AgentTermsOf(a) {
				if err := setAll(txn, TermKeys(t, a.CreatedAt, a.ID)); err != nil {
					return err
				}
			}
			if Listed(a) {
				listed++
			}
		}
		if n = len(kvs); n > 0 {
			last = kvs[n-1].Key
		}
		return nil
	})
	return n, last, listed, err
}

// update runs fn in a transaction and commits it.
func update(ctx context.Context, store kv.Store, fn func(kv.Txn) error) error {
	txn, err := store.Begin(ctx)
	if err != nil {
		return err
	}
	defer txn.Discard()
	if err := fn(txn); err != nil {
		return err
	}
	return txn.Commit(ctx)
}
