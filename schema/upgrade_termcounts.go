package schema

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kelpie/kelpie/kv"
)

// upgradeScanBatch is how many keys one transaction of upgradeTermCounts
// reads.
const upgradeScanBatch = 4096

// upgradeTermCounts writes the base of every term count (version 6) from
// what the store holds: the term index entries of the counted kinds, and
// the identities' links to listed agents. An older store has no term
// counts and no deltas, so a run cut short and run again writes the same
// bases.
func upgradeTermCounts(ctx context.Context, store kv.Store) error {
	for _, kind := range []string{TermTag, TermName, TermProject} {
		err := countRuns(ctx, store, []byte(AgentTerms.Prefix+kind+"/"), func(_ kv.Txn, key []byte) ([]byte, bool, error) {
			// index/agent-term/<kind>/<hash>/<created>/<agent-id>
			p := strings.Split(strings.TrimPrefix(string(key), AgentTerms.Prefix), "/")
			if len(p) != 4 {
				return nil, false, fmt.Errorf("%q is not a term index entry", key)
			}
			return []byte(termBases + p[0] + "/" + p[1]), true, nil
		})
		if err != nil {
			return fmt.Errorf("counting the agents by %s: %w", kind, err)
		}
	}
	err := countRuns(ctx, store, []byte(IdentityAgents.Prefix), func(txn kv.Txn, key []byte) ([]byte, bool, error) {
		p := parts(IdentityAgents, string(key))
		if len(p) != 2 {
			return nil, false, fmt.Errorf("%q is not a link of an identity to an agent", key)
		}
		a, err := GetAgent(txn, p[1])
		if err != nil && err != ErrAgentNotFound {
			return nil, false, err
		}
		return TermCountBaseKey(Term{TermIdentity, p[0]}), Listed(a), nil
	})
	if err != nil {
		return fmt.Errorf("counting the agents by identity: %w", err)
	}
	return nil
}

// countRuns walks the keys under prefix, which group names (a base key,
// and whether the key counts) in runs, and sets each base to its run's
// count, or deletes it when that is 0.
func countRuns(ctx context.Context, store kv.Store, prefix []byte, group func(kv.Txn, []byte) (base []byte, counted bool, err error)) error {
	var base []byte // the run in progress
	n := 0
	flush := func(txn kv.Txn) error {
		if base == nil {
			return nil
		}
		if n == 0 {
			return txn.Delete(base)
		}
		return txn.Set(base, strconv.AppendInt(nil, int64(n), 10))
	}
	r := kv.PrefixRange(prefix)
	for {
		var kvs []kv.KeyValue
		err := update(ctx, store, func(txn kv.Txn) error {
			var err error
			if kvs, err = txn.Scan(r, upgradeScanBatch, false); err != nil {
				return err
			}
			for _, e := range kvs {
				b, counted, err := group(txn, e.Key)
				if err != nil {
					return err
				}
				if string(b) != string(base) {
					if err := flush(txn); err != nil {
						return err
					}
					base, n = b, 0
				}
				if counted {
					n++
				}
			}
			if len(kvs) < upgradeScanBatch {
				return flush(txn)
			}
			return nil
		})
		if err != nil || len(kvs) < upgradeScanBatch {
			return err
		}
		r.Start = append(kvs[len(kvs)-1].Key, 0)
	}
}
