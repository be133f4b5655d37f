package actor_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// readLog is a kv.Store that records the keys its transactions read.
type readLog struct {
	kv.Store
	mu   sync.Mutex
	keys []string
}

func (s *readLog) Begin(ctx context.Context) (kv.Txn, error) {
	txn, err := s.Store.Begin(ctx)
	return loggedTxn{txn, s}, err
}

func (s *readLog) read() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

type loggedTxn struct {
	kv.Txn
	log *readLog
}

func (t loggedTxn) Get(key []byte) ([]byte, error) {
	t.log.mu.Lock()
	t.log.keys = append(t.log.keys, string(key))
	t.log.mu.Unlock()
	return t.Txn.Get(key)
}

// Spec: an invocation on a minted id starts the actor as loading a new
// one would (no state; its commit takes epoch 1) without reading the
// actor's state; an id that was not new after all, because an actor by
// that id committed before (even one whose state was deleted since),
// fails with ErrFenced and changes nothing.
func TestMintedID(t *testing.T) {
	store := &readLog{Store: kv.NewMemDB()}
	var minted []bool // Call.Minted of each "append"
	b := newListBehavior(map[string]opFunc{"append": func(_ context.Context, c *actor.Call, st *listState) ([]byte, error) {
		minted = append(minted, c.Minted)
		st.Items = append(st.Items, string(c.Payload))
		c.SetState(st)
		return nil, nil
	}})
	rt := newRuntime(t, actor.Config{Store: store}, b)
	id := mustID(t, "minted")
	invoke(t, rt, id, "append", "a", actor.Minted())
	if slices.Contains(store.read(), string(actor.StateKey(id))) {
		t.Errorf("a minted id's state was read: %q", store.read())
	}
	// Only the invocation that was told so, and before any commit.
	invoke(t, rt, id, "append", "b", actor.Minted())
	invoke(t, rt, id, "append", "c")
	if !slices.Equal(minted, []bool{true, false, false}) {
		t.Errorf("Call.Minted of the invocations = %v, want [true false false]", minted)
	}
	invoke(t, rt, id, "reset", "")
	invoke(t, rt, id, "append", "a")
	if st, _ := stored(t, store, b, id); !slices.Equal(st.Items, []string{"a"}) {
		t.Fatalf("stored = %v, want [a]", st.Items)
	}
	if got := get(t, rt, id); !slices.Equal(got.Items, []string{"a"}) {
		t.Fatalf("state = %v, want [a]", got.Items)
	}

	for _, reset := range []bool{false, true} {
		if reset {
			invoke(t, newRuntime(t, actor.Config{Store: store}, b), id, "reset", "")
		}
		before := dump(t, store)
		// Another runtime, which has no activation of id.
		_, err := newRuntime(t, actor.Config{Store: store}, b).Invoke(t.Context(), id, "append", []byte("b"), actor.Minted())
		if !errors.Is(err, kv.ErrFenced) {
			t.Errorf("reset %v: minted invocation of a used id: %v, want ErrFenced", reset, err)
		}
		if after := dump(t, store); !maps.Equal(before, after) {
			t.Errorf("reset %v: the store changed:\n%v\nto\n%v", reset, before, after)
		}
	}
}
