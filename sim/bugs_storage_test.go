package sim

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// Broken storage layers: planted bugs the tests of bugs_test.go sweep for.

// ---- ack before commit, save on deactivation (the seed's bug) -------------

// writeBackStore acknowledges every commit at once and keeps its writes in
// memory, serving them to every later read, until the actor "deactivates"
// (its writes have been idle for the idle timeout): only then are they saved.
// A crash before the save, or a failed save, loses acknowledged writes.
type writeBackStore struct {
	inner kv.Store
	env   VariantEnv

	mu    sync.Mutex
	dirty map[string]dirtyWrite
}

type dirtyWrite struct {
	value []byte // nil: deleted
	at    time.Time
}

func newWriteBackStore(inner kv.Store, env VariantEnv) kv.Store {
	s := &writeBackStore{inner: inner, env: env, dirty: map[string]dirtyWrite{}}
	go func() {
		t := env.Clock.NewTicker(env.IdleTimeout / 2)
		defer t.Stop()
		for {
			select {
			case <-env.Done:
				return
			case <-t.C():
				s.saveIdle()
			}
		}
	}()
	return s
}

// saveIdle saves the writes idle for the idle timeout ("on deactivation").
// A save that fails is not retried: its writes are gone.
func (s *writeBackStore) saveIdle() {
	now := s.env.Clock.Now()
	s.mu.Lock()
	batch := map[string]dirtyWrite{}
	for k, d := range s.dirty {
		if now.Sub(d.at) >= s.env.IdleTimeout || now.Before(d.at) {
			batch[k] = d
		}
	}
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := func() error {
		txn, err := s.inner.Begin(context.Background())
		if err != nil {
			return err
		}
		defer txn.Discard()
		for k, d := range batch {
			if d.value == nil {
				err = txn.Delete([]byte(k))
			} else {
				err = txn.Set([]byte(k), d.value)
			}
			if err != nil {
				return err
			}
		}
		return txn.Commit(context.Background())
	}()
	_ = err // saved or lost: either way no longer pending
	s.mu.Lock()
	for k, d := range batch {
		if cur, ok := s.dirty[k]; ok && cur.at.Equal(d.at) && bytes.Equal(cur.value, d.value) {
			delete(s.dirty, k)
		}
	}
	s.mu.Unlock()
}

func (s *writeBackStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &writeBackTxn{s: s, inner: t, writes: map[string]dirtyWrite{}}, nil
}

func (s *writeBackStore) Close() error { return s.inner.Close() }

type writeBackTxn struct {
	s      *writeBackStore
	inner  kv.Txn
	writes map[string]dirtyWrite
}

func (t *writeBackTxn) Get(key []byte) ([]byte, error) {
	if w, ok := t.writes[string(key)]; ok {
		if w.value == nil {
			return nil, kv.ErrNotFound
		}
		return bytes.Clone(w.value), nil
	}
	t.s.mu.Lock()
	d, ok := t.s.dirty[string(key)]
	t.s.mu.Unlock()
	if ok {
		if d.value == nil {
			return nil, kv.ErrNotFound
		}
		return bytes.Clone(d.value), nil
	}
	return t.inner.Get(key)
}

func (t *writeBackTxn) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	base, err := t.inner.Scan(r, 0, reverse)
	if err != nil {
		return nil, err
	}
	merged := map[string][]byte{}
	for _, p := range base {
		merged[string(p.Key)] = p.Value
	}
	overlay := func(k string, v []byte) {
		if !r.Contains([]byte(k)) {
			return
		}
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = bytes.Clone(v)
		}
	}
	t.s.mu.Lock()
	for k, d := range t.s.dirty {
		overlay(k, d.value)
	}
	t.s.mu.Unlock()
	for k, w := range t.writes {
		overlay(k, w.value)
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if reverse {
		slices.Reverse(keys)
	}
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := make([]kv.KeyValue, len(keys))
	for i, k := range keys {
		out[i] = kv.KeyValue{Key: []byte(k), Value: merged[k]}
	}
	return out, nil
}

func (t *writeBackTxn) Set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	t.writes[string(key)] = dirtyWrite{value: bytes.Clone(value)}
	return nil
}

func (t *writeBackTxn) Delete(key []byte) error {
	t.writes[string(key)] = dirtyWrite{}
	return nil
}

func (t *writeBackTxn) Fence(key []byte, epoch uint64) error {
	v, err := t.Get(key)
	var have uint64
	switch {
	case err == nil:
		if have, err = kv.ParseEpoch(v); err != nil {
			return err
		}
	case !errors.Is(err, kv.ErrNotFound):
		return err
	}
	if have != epoch {
		return kv.ErrFenced
	}
	return nil
}

// Commit acknowledges at once: the writes only join the pending ones.
func (t *writeBackTxn) Commit(context.Context) error {
	now := t.s.env.Clock.Now()
	t.s.mu.Lock()
	for k, w := range t.writes {
		w.at = now
		t.s.dirty[k] = w
	}
	t.s.mu.Unlock()
	t.inner.Discard()
	return nil
}

func (t *writeBackTxn) Discard() { t.inner.Discard() }

// ---- partial delete -----------------------------------------------------

// splitDeleteStore commits an agent delete in two transactions: first the
// record, then its index entry and attachments. A failure or crash in
// between leaves the rest behind.
type splitDeleteStore struct{ inner kv.Store }

func newSplitDeleteStore(inner kv.Store, _ VariantEnv) kv.Store { return &splitDeleteStore{inner} }

func (s *splitDeleteStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &splitDeleteTxn{Txn: t, s: s, restore: map[string][]byte{}}, nil
}

func (s *splitDeleteStore) Close() error { return s.inner.Close() }

type splitDeleteTxn struct {
	kv.Txn
	s            *splitDeleteStore
	deletedAgent bool
	restore      map[string][]byte
}

func (t *splitDeleteTxn) Delete(key []byte) error {
	k := string(key)
	switch {
	case strings.HasPrefix(k, agentStatePrefix):
		t.deletedAgent = true
	case strings.HasPrefix(k, agentIndexPrefix), strings.HasPrefix(k, attachmentPrefix), strings.HasPrefix(k, blockAgentsPrefix):
		if _, seen := t.restore[k]; !seen {
			if v, err := t.Txn.Get(key); err == nil {
				t.restore[k] = v
			}
		}
	}
	return t.Txn.Delete(key)
}

func (t *splitDeleteTxn) Commit(ctx context.Context) error {
	if !t.deletedAgent || len(t.restore) == 0 {
		return t.Txn.Commit(ctx)
	}
	for k, v := range t.restore {
		if err := t.Txn.Set([]byte(k), v); err != nil {
			return err
		}
	}
	if err := t.Txn.Commit(ctx); err != nil {
		return err
	}
	rest, err := t.s.inner.Begin(ctx)
	if err != nil {
		return err
	}
	defer rest.Discard()
	for k := range t.restore {
		if err := rest.Delete([]byte(k)); err != nil {
			return err
		}
	}
	return rest.Commit(ctx)
}

// ---- lost block edit ----------------------------------------------------

// blockCacheStore gives each agent activation a cache of the blocks it has
// read, served instead of storage, and every commit of the agent writes the
// whole cache back, as an agent that keeps its memory blocks in its state
// and saves all of them would. An edit made meanwhile through the block's
// own route, or through another agent, is overwritten.
type blockCacheStore struct {
	inner kv.Store
	mu    sync.Mutex
	cache map[string]map[string][]byte // agent actor -> block key -> value
}

func newBlockCacheStore(inner kv.Store, _ VariantEnv) kv.Store {
	return &blockCacheStore{inner: inner, cache: map[string]map[string][]byte{}}
}

func (s *blockCacheStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &blockCacheTxn{Txn: t, s: s, writes: map[string][]byte{}}, nil
}

func (s *blockCacheStore) Close() error { return s.inner.Close() }

type blockCacheTxn struct {
	kv.Txn
	s      *blockCacheStore
	actor  string
	writes map[string][]byte
}

var agentEpochPrefix = epochPrefix + "agents/"

func (t *blockCacheTxn) Get(key []byte) ([]byte, error) {
	k := string(key)
	switch {
	case strings.HasPrefix(k, agentEpochPrefix):
		// A load: a new activation starts with an empty cache.
		t.actor = k[len(epochPrefix):]
		t.s.mu.Lock()
		t.s.cache[t.actor] = map[string][]byte{}
		t.s.mu.Unlock()
	case strings.HasPrefix(k, blockPrefix) && t.actor != "":
		if v, ok := t.writes[k]; ok {
			if v == nil {
				return nil, kv.ErrNotFound
			}
			return bytes.Clone(v), nil
		}
		t.s.mu.Lock()
		v, ok := t.s.cache[t.actor][k]
		t.s.mu.Unlock()
		if ok {
			return bytes.Clone(v), nil
		}
		v, err := t.Txn.Get(key)
		if err == nil {
			t.s.mu.Lock()
			if c := t.s.cache[t.actor]; c != nil {
				c[k] = bytes.Clone(v)
			}
			t.s.mu.Unlock()
		}
		return v, err
	}
	return t.Txn.Get(key)
}

func (t *blockCacheTxn) Fence(key []byte, epoch uint64) error {
	if k := string(key); strings.HasPrefix(k, agentEpochPrefix) {
		t.actor = k[len(epochPrefix):]
	}
	return t.Txn.Fence(key, epoch)
}

func (t *blockCacheTxn) Set(key, value []byte) error {
	if k := string(key); strings.HasPrefix(k, blockPrefix) && t.actor != "" {
		t.writes[k] = bytes.Clone(value)
	}
	return t.Txn.Set(key, value)
}

func (t *blockCacheTxn) Commit(ctx context.Context) error {
	if t.actor == "" {
		return t.Txn.Commit(ctx)
	}
	t.s.mu.Lock()
	cached := map[string][]byte{}
	for k, v := range t.s.cache[t.actor] {
		cached[k] = v
	}
	t.s.mu.Unlock()
	for k, v := range cached {
		if _, own := t.writes[k]; !own {
			if err := t.Txn.Set([]byte(k), v); err != nil {
				return err
			}
		}
	}
	if err := t.Txn.Commit(ctx); err != nil {
		return err
	}
	t.s.mu.Lock()
	if c := t.s.cache[t.actor]; c != nil {
		for k, v := range t.writes {
			c[k] = v
		}
	}
	t.s.mu.Unlock()
	return nil
}
