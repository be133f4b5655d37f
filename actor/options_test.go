package actor_test

import (
	"context"
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
