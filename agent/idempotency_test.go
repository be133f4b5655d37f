package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Spec: a retry of an edit by label with the same idempotency key gets the
// first answer, even when the block was detached or its agent deleted
// since (the edit looked the block up by label before it ran); without
// the key, or with the key of another request, it does not.
func TestEditByLabelRetryGetsItsAnswer(t *testing.T) {
	svc := newService(t, kv.NewDB(kv.NewMemEngine()), churn)
	ctx := t.Context()
	for _, gone := range []string{"detached", "deleted"} {
		t.Run(gone, func(t *testing.T) {
			st, err := svc.Agents.Create(ctx, createReq("retry-"+gone, "v0"))
			if err != nil {
				t.Fatal(err)
			}
			keyed := agent.WithIdempotencyKey(ctx, "PATCH human\x00key-"+gone)
			value := "v1"
			first, err := svc.Agents.UpdateBlock(keyed, st.ID, "human", letta.BlockUpdate{Value: &value})
			if err != nil {
				t.Fatal(err)
			}
			switch gone {
			case "detached":
				_, err = svc.Agents.DetachBlock(ctx, st.ID, first.ID)
			case "deleted":
				err = svc.Agents.Delete(ctx, st.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
			again, err := svc.Agents.UpdateBlock(keyed, st.ID, "human", letta.BlockUpdate{Value: &value})
			if err != nil || again.ID != first.ID || again.Value != "v1" {
				t.Fatalf("retry with the key: %+v, %v; want the first answer %+v", again, err, first)
			}
			if _, err := svc.Agents.UpdateBlock(ctx, st.ID, "human", letta.BlockUpdate{Value: &value}); agent.KindOf(err) != letta.KindNotFound {
				t.Fatalf("the edit again without the key: %v; want not found", err)
			}
			other := "v2"
			if _, err := svc.Agents.UpdateBlock(keyed, st.ID, "human", letta.BlockUpdate{Value: &other}); agent.KindOf(err) != letta.KindInvalid {
				t.Fatalf("another edit with the key: %v; want the key refused", err)
			}
		})
	}
}

// Spec: an idempotency record answers retries for the runtime's
// IdempotencyHorizon, on the service's clock; past it the record is deleted
// (with its expiry entry) and a retry runs again as a new request.
func TestIdempotencyRecordsExpire(t *testing.T) {
	clk := kelpietest.NewStepClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := kv.NewDB(kv.NewMemEngine())
	svc, err := agent.New(agent.Config{Store: store, Clock: clk, DefaultModel: "openai/gpt-4o-mini",
		Runtime: actor.Config{IdleTimeout: 20 * time.Millisecond, IdempotencyHorizon: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(context.Background())
	ctx := t.Context()
	st, err := svc.Agents.Create(ctx, createReq("expiry", "v0"))
	if err != nil {
		t.Fatal(err)
	}
	keyed := agent.WithIdempotencyKey(ctx, "PATCH human\x00expiring")
	v1, v2 := "v1", "v2"
	edit := func(ctx context.Context, v *string) string {
		t.Helper()
		b, err := svc.Agents.UpdateBlock(ctx, st.ID, "human", letta.BlockUpdate{Value: v})
		if err != nil {
			t.Fatal(err)
		}
		return b.Value
	}
	current := func() string {
		t.Helper()
		b, err := svc.Agents.Block(ctx, st.ID, "human")
		if err != nil {
			t.Fatal(err)
		}
		return b.Value
	}
	edit(keyed, &v1)
	edit(ctx, &v2)
	clk.Advance(59 * time.Minute)
	time.Sleep(100 * time.Millisecond) // sweeps run, and find nothing old enough
	if got := edit(keyed, &v1); got != "v1" || current() != "v2" {
		t.Fatalf("a retry within the horizon: answered %q, block %q; want the first answer v1, the block left at v2", got, current())
	}
	clk.Advance(2 * time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for svc.Counts().Runtime.IdemExpired == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no idempotency record expired 61 minutes after it was written, with a horizon of an hour")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := countPrefix(t, store, actor.IdemPrefix) + countPrefix(t, store, actor.IdemExpiryPrefix); n != 0 {
		t.Fatalf("%d idempotency records or expiry entries remain after expiry", n)
	}
	if got := edit(keyed, &v1); got != "v1" || current() != "v1" {
		t.Fatalf("a retry past the horizon: answered %q, block %q; want it run again (v1)", got, current())
	}
}

func countPrefix(t *testing.T, store kv.Store, prefix string) int {
	t.Helper()
	txn, err := store.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	kvs, err := txn.Scan(kv.PrefixRange([]byte(prefix)), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	return len(kvs)
}
