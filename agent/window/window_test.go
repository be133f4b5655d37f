package window

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Spec: Messages returns an indexed context's messages, oldest first, and
// only those its index names, whether they lie close together (read in one
// scan) or far apart (read one by one); at most MaxMessages, the newest; a
// message its index names but storage lacks is an error.
func TestIndexedMessages(t *testing.T) {
	ctx := context.Background()
	db := kv.NewDB(kv.NewMemEngine())
	a := &schema.Agent{ID: "agent-1", Context: schema.Context{Indexed: true, Start: 1}}
	o := Owner{Agent: a}
	write := func(seq uint64, inContext bool) {
		t.Helper()
		txn, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := &schema.Message{ID: fmt.Sprintf("message-%d", seq), AgentID: a.ID, Seq: seq, Role: schema.RoleUser, Text: fmt.Sprint(seq)}
		if inContext {
			err = schema.AppendMessage(txn, m)
		} else {
			m.ConversationID = "conv-1" // another context's
			err = schema.PutMessage(txn, m)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string, want []uint64) {
		t.Helper()
		txn, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer txn.Discard()
		got, err := Messages(txn, o)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
		}
		for i, m := range got {
			if m.Seq != want[i] || m.Text != fmt.Sprint(want[i]) {
				t.Fatalf("%s: message %d is %d (%q), want %d", what, i, m.Seq, m.Text, want[i])
			}
		}
	}
	// Dense: 1..10 in context with 3 and 7 another conversation's.
	var want []uint64
	for seq := uint64(1); seq <= 10; seq++ {
		in := seq != 3 && seq != 7
		write(seq, in)
		if in {
			want = append(want, seq)
		}
	}
	check("dense", want)
	// Sparse: 30 more of another conversation, then one in context.
	for seq := uint64(11); seq <= 40; seq++ {
		write(seq, false)
	}
	write(41, true)
	check("sparse", append(want, 41))

	// More than MaxMessages: the newest only.
	for seq := uint64(42); seq < 42+MaxMessages; seq++ {
		write(seq, true)
	}
	var newest []uint64
	for seq := uint64(42 + MaxMessages - 1); len(newest) < MaxMessages; seq-- {
		if seq != 3 && seq != 7 && (seq <= 10 || seq >= 41) {
			newest = append([]uint64{seq}, newest...)
		}
	}
	check("over the limit", newest)

	// An index entry whose message is gone.
	txn, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := txn.Delete(schema.MessageKey(a.ID, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := Messages(txn, o); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("a missing message: got %v, want not found", err)
	}
	txn.Discard()
}
