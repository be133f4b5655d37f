package sim

import (
	"bytes"
	"context"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// ---- a push's branch update lost -----------------------------------------------

// pushRefLossStore drops the ref writes of a transaction that also writes a
// block: a push's block changes commit, and its branch stays where it was
// (the next fetch commits the blocks on the old branch, and the pushed
// commit is gone from its history).
type pushRefLossStore struct{ inner kv.Store }

func newPushRefLossStore(inner kv.Store, _ VariantEnv) kv.Store { return &pushRefLossStore{inner} }

func (s *pushRefLossStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &pushRefLossTxn{Txn: t}, nil
}

func (s *pushRefLossStore) Close() error { return s.inner.Close() }

type pushRefLossTxn struct {
	kv.Txn
	refs        []kv.KeyValue
	wroteBlocks bool
}

func (t *pushRefLossTxn) Set(key, value []byte) error {
	switch {
	case bytes.HasPrefix(key, []byte(schema.GitRefs.Prefix)):
		t.refs = append(t.refs, kv.KeyValue{Key: bytes.Clone(key), Value: bytes.Clone(value)})
		return nil
	case bytes.HasPrefix(key, []byte(schema.Blocks.Prefix)):
		t.wroteBlocks = true
	}
	return t.Txn.Set(key, value)
}

func (t *pushRefLossTxn) Get(key []byte) ([]byte, error) {
	for i := len(t.refs) - 1; i >= 0; i-- {
		if bytes.Equal(t.refs[i].Key, key) {
			return t.refs[i].Value, nil
		}
	}
	return t.Txn.Get(key)
}

func (t *pushRefLossTxn) Commit(ctx context.Context) error {
	if !t.wroteBlocks {
		for _, kv := range t.refs {
			if err := t.Txn.Set(kv.Key, kv.Value); err != nil {
				return err
			}
		}
	}
	return t.Txn.Commit(ctx)
}

func init() {
	plantedBugs = append(plantedBugs, plantedBug{
		name:     "push-ref-lost",
		variant:  Variant{Name: "a push's blocks commit without its branch update", WrapStore: newPushRefLossStore},
		profile:  "none",
		catchers: []string{"memfs"},
		message:  "history lacks it",
	})
}
