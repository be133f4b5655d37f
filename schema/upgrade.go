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
// version 3 no trigram terms of names.
const Version = 4

// upgradeBatch is how many agents one upgrade transaction indexes.
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
// and, from version 1, the counts), then records the version.
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
		return upgraded, update(ctx, store, func(txn kv.Txn) error {
			return txn.Set([]byte(VersionKey), strconv.AppendInt(nil, Version, 10))
		})
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
		return txn.Set([]byte(VersionKey), strconv.AppendInt(nil, Version, 10))
	})
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
