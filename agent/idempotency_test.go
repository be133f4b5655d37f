package agent_test

import (
	"testing"

	"github.com/kelpie/kelpie/agent"
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
