package loop

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Spec: lastSeqFrom is schema.LastSeq of an agent whose message known is
// stored, whether or not messages follow it (another agent's do not
// count), and a transaction that read it conflicts with a commit that
// appends the agent's next message.
func TestLastSeqFrom(t *testing.T) {
	ctx := context.Background()
	db := kv.NewDB(kv.NewMemEngine())
	appendMsgs := func(agentID string, from, to uint64) {
		t.Helper()
		txn, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := from; seq <= to; seq++ {
			m := &schema.Message{ID: fmt.Sprintf("message-%s-%d", agentID, seq), AgentID: agentID, Seq: seq, Role: schema.RoleUser}
			if err := schema.AppendMessage(txn, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	appendMsgs("agent-1", 1, 5)
	appendMsgs("agent-10", 1, 9)
	txn, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		agent string
		known uint64
	}{{"agent-1", 5}, {"agent-1", 3}, {"agent-1", 0}, {"agent-2", 0}, {"agent-10", 9}} {
		want, err := schema.LastSeq(txn, c.agent)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := lastSeqFrom(txn, c.agent, c.known); err != nil || got != want {
			t.Errorf("lastSeqFrom(%s, %d) = %d, %v; want %d", c.agent, c.known, got, err, want)
		}
	}
	txn.Discard()

	txn, err = db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lastSeqFrom(txn, "agent-1", 5); err != nil {
		t.Fatal(err)
	}
	appendMsgs("agent-1", 6, 6)
	if err := txn.Set([]byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(ctx); !errors.Is(err, kv.ErrConflict) {
		t.Errorf("commit after another appended the next message: %v, want a conflict", err)
	}
}
