package loop

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Spec: a context read through the history cache is the context as
// stored, as window.Messages reads it: after messages are appended, after
// its start moves (a reset, a compaction), after a message of a
// transaction that failed is stored again under another id at the same
// number, and for another agent's context with the same numbers and ids;
// and it reads only the index entries added since it last read it.
func TestHistoryCacheReadsAsStored(t *testing.T) {
	ctx := context.Background()
	db := kv.NewDB(kv.NewMemEngine())
	cache := newHistoryCache()
	agents := []*schema.Agent{
		{ID: "agent-1", Context: schema.Context{Indexed: true, Start: 1}},
		{ID: "agent-2", Context: schema.Context{Indexed: true, Start: 1}},
	}
	txnDo := func(fn func(kv.Txn) error, commit bool) {
		t.Helper()
		txn, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := fn(txn); err != nil {
			t.Fatal(err)
		}
		if !commit {
			txn.Discard()
			return
		}
		if err := txn.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	appendMsg := func(txn kv.Txn, a *schema.Agent, seq uint64, id, text string) error {
		return schema.AppendMessage(txn, &schema.Message{ID: id, AgentID: a.ID, Seq: seq, Role: schema.RoleUser, Text: text})
	}
	check := func(what string, a *schema.Agent) {
		t.Helper()
		txnDo(func(txn kv.Txn) error {
			o := window.Owner{Agent: a}
			want, err := window.Messages(txn, o)
			if err != nil {
				return err
			}
			for range 2 { // the second read from the cache
				got, err := cache.messages(txn, o)
				if err != nil {
					return err
				}
				if len(got) != len(want) {
					t.Fatalf("%s, %s: %d messages, want %d", what, a.ID, len(got), len(want))
				}
				for i := range got {
					if got[i].Seq != want[i].Seq || got[i].ID != want[i].ID || got[i].Text != want[i].Text {
						t.Fatalf("%s, %s: message %d is %d %s %q, want %d %s %q", what, a.ID, i,
							got[i].Seq, got[i].ID, got[i].Text, want[i].Seq, want[i].ID, want[i].Text)
					}
				}
			}
			return nil
		}, false)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		for _, a := range agents {
			txnDo(func(txn kv.Txn) error {
				return appendMsg(txn, a, seq, fmt.Sprintf("message-%d", seq), a.ID+fmt.Sprint(seq))
			}, true)
		}
		check("appended", agents[0])
	}
	check("same ids, another agent", agents[1])

	// A turn's start read its input inside its transaction, which failed;
	// the next stores another message at that number.
	a := agents[0]
	txnDo(func(txn kv.Txn) error {
		if err := appendMsg(txn, a, 6, "message-lost", "lost"); err != nil {
			return err
		}
		_, err := cache.messages(txn, window.Owner{Agent: a})
		return err
	}, false)
	txnDo(func(txn kv.Txn) error { return appendMsg(txn, a, 6, "message-kept", "kept") }, true)
	check("a number stored again", a)

	a.Context.Start = 4
	check("start moved", a)

	// Once kept, a context's index is read from its last kept entry on.
	check("kept", a)
	txnDo(func(txn kv.Txn) error { return appendMsg(txn, a, 7, "message-7", "seven") }, true)
	txnDo(func(txn kv.Txn) error {
		ct := &countingTxn{Txn: txn, prefix: schema.ContextMessagesOf(a.ID)}
		ms, err := cache.messages(ct, window.Owner{Agent: a})
		if err == nil && (len(ms) != 4 || ms[3].ID != "message-7" || ct.read != 2) {
			t.Errorf("after one append: %d messages, %d index entries read; want 4 messages and 2 entries", len(ms), ct.read)
		}
		return err
	}, false)
	check("appended after kept", a)

	a.Context.Start = 8 // a reset: past every entry
	check("emptied", a)
}

// countingTxn counts the pairs its scans under prefix read.
type countingTxn struct {
	kv.Txn
	prefix []byte
	read   int
}

func (c *countingTxn) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	kvs, err := c.Txn.Scan(r, limit, reverse)
	if bytes.HasPrefix(r.Start, c.prefix) {
		c.read += len(kvs)
	}
	return kvs, err
}
