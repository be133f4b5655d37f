package actor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// Spec: an invocation gets as Call.Local the value its caller gave with
// WithLocal, and nil without it.
func TestWithLocal(t *testing.T) {
	var got []any
	b := newListBehavior(map[string]opFunc{"see": func(_ context.Context, c *actor.Call, _ *listState) ([]byte, error) {
		got = append(got, c.Local)
		return nil, nil
	}})
	rt := newRuntime(t, actor.Config{Store: kv.NewMemDB()}, b)
	id := mustID(t, "local")
	ctx := context.Background()
	if _, err := rt.Invoke(ctx, id, "see", []byte(`"v"`), actor.WithLocal("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Invoke(ctx, id, "see", []byte(`"v"`)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "v" || got[1] != nil {
		t.Fatalf("Call.Local of the invocations: %v; want [v <nil>]", got)
	}
}

// Spec: with WithLocalReply an invocation may answer in process
// (Call.Reply): Invoke hands the caller that value, and the answer of an
// attempt that failed never. An invocation with an idempotency key, whose
// record keeps the answer encoded, is not offered it.
func TestWithLocalReply(t *testing.T) {
	b := newListBehavior(map[string]opFunc{
		"answer": func(_ context.Context, c *actor.Call, _ *listState) ([]byte, error) {
			if c.LocalReply {
				c.Reply("in process")
				return nil, nil
			}
			return []byte(`"encoded"`), nil
		},
		"fail": func(_ context.Context, c *actor.Call, _ *listState) ([]byte, error) {
			c.Reply("lost")
			return nil, errors.New("failed")
		},
	})
	rt := newRuntime(t, actor.Config{Store: kv.NewMemDB()}, b)
	id := mustID(t, "reply")
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		op        string
		opts      []actor.InvokeOption
		wantData  string
		wantLocal any
		wantErr   bool
	}{
		{"in process", "answer", nil, "", "in process", false},
		{"with an idempotency key", "answer", []actor.InvokeOption{actor.WithIdempotencyKey("k")}, `"encoded"`, nil, false},
		{"failed", "fail", nil, "", nil, true},
	} {
		var local any
		data, err := rt.Invoke(ctx, id, tc.op, nil, append(tc.opts, actor.WithLocalReply(&local))...)
		if (err != nil) != tc.wantErr || string(data) != tc.wantData || local != tc.wantLocal {
			t.Errorf("%s: answered %q and %v (%v); want %q and %v", tc.name, data, local, err, tc.wantData, tc.wantLocal)
		}
	}
	if data, err := rt.Invoke(ctx, id, "answer", nil); err != nil || string(data) != `"encoded"` {
		t.Errorf("without WithLocalReply: answered %q (%v); want it encoded", data, err)
	}
}
