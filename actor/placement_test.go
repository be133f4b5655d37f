package actor_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// placement is an actor.Placement that grants claims on one fence key,
// counting them, or refuses them or its service when told to.
type placement struct {
	mu        sync.Mutex
	claims    int
	refuse    error // Claim's answer, when set
	notServed error // Serving's answer
}

var placeKey = []byte("place/fence")

func (p *placement) Claim(_ context.Context, _ actor.ID) (*actor.Fence, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse != nil {
		return nil, p.refuse
	}
	p.claims++
	return &actor.Fence{Key: placeKey, Epoch: 7}, nil
}

func (p *placement) Serving() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.notServed
}

func setKey(t *testing.T, store kv.Store, key, value []byte) {
	t.Helper()
	txn, err := store.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	if err := txn.Set(key, value); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Spec: a placed actor is claimed once per activation, before anything of
// it runs; a refused claim or a node that is not serving runs nothing;
// every commit is fenced on the claim, so a moved claim rejects the
// activation's next commit and applies nothing, and its next read too: an
// invocation that writes nothing never answers from the memory of an
// activation whose claim has moved.
func TestPlacement(t *testing.T) {
	store := kv.NewMemDB()
	setKey(t, store, placeKey, kv.PutEpoch(7))
	p := &placement{}
	b := newListBehavior(nil)
	rt := newRuntime(t, actor.Config{Store: store, Placement: p}, b)
	id := mustID(t, "x")

	invoke(t, rt, id, "append", "a")
	invoke(t, rt, id, "append", "b")
	if p.claims != 1 {
		t.Fatalf("%d claims for one activation, want 1", p.claims)
	}

	p.notServed = kv.ErrUnavailable
	if _, err := rt.Invoke(t.Context(), id, "append", []byte("c")); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("invoke while not serving: %v", err)
	}
	p.notServed = nil

	setKey(t, store, placeKey, kv.PutEpoch(8)) // another node claimed it
	if _, err := rt.Invoke(t.Context(), id, "get", nil); !errors.Is(err, kv.ErrFenced) {
		t.Fatalf("read after the claim moved: %v, want kv.ErrFenced", err)
	}
	if _, err := rt.Invoke(t.Context(), id, "append", []byte("d")); !errors.Is(err, kv.ErrFenced) {
		t.Fatalf("invoke after the claim moved: %v, want kv.ErrFenced", err)
	}
	if st, _ := stored(t, store, b, id); len(st.Items) != 2 {
		t.Fatalf("stored %v, want only the two appends made under the claim", st.Items)
	}

	refused := errors.New("owned elsewhere")
	p.refuse = refused
	runs := b.ran("append")
	if _, err := rt.Invoke(t.Context(), id, "append", []byte("e")); !errors.Is(err, refused) {
		t.Fatalf("invoke with the claim refused: %v", err)
	}
	if b.ran("append") != runs {
		t.Fatal("the behavior ran without a claim")
	}
}
