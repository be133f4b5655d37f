package memory

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

func txn(t *testing.T, db kv.Store, fn func(kv.Txn)) {
	t.Helper()
	tx, err := db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fn(tx)
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Spec: no edit makes a block hold more than its limit, and a refused
// edit changes nothing.
func TestUpdateKeepsLimit(t *testing.T) {
	db := kv.NewMemDB()
	now := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	label, value, limit := "human", "Ada", 5
	b := NewBlock("block-1", letta.CreateBlock{Label: &label, Value: &value, Limit: &limit}, now)
	txn(t, db, func(tx kv.Txn) {
		if err := schema.CreateBlock(tx, b); err != nil {
			t.Fatal(err)
		}
	})
	for _, u := range []letta.BlockUpdate{{Value: new("Ada Lovelace")}, {Limit: new(2)}} {
		txn(t, db, func(tx kv.Txn) {
			cur, err := schema.GetBlock(tx, "block-1")
			if err != nil {
				t.Fatal(err)
			}
			err = Update(tx, cur, u, now)
			if letta.KindOf(err) != letta.KindInvalid || !strings.Contains(err.Error(), "character limit") && !strings.Contains(err.Error(), "Exceeds") {
				t.Errorf("update %+v: %v", u, err)
			}
		})
	}
	txn(t, db, func(tx kv.Txn) {
		cur, err := schema.GetBlock(tx, "block-1")
		if err != nil || cur.Value != "Ada" || cur.Limit != 5 {
			t.Errorf("after refused edits: %+v, %v", cur, err)
		}
	})
}

// Spec: archival search ranks by words matched, newer first among equals,
// within tags and dates.
func TestSearchArchival(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2025, 5, d, 0, 0, 0, 0, time.UTC) }
	ps := []*schema.Passage{
		{ID: "p1", Text: "the sky is blue", Tags: []string{"sky"}, CreatedAt: day(1)},
		{ID: "p2", Text: "blue whales are big", CreatedAt: day(2)},
		{ID: "p3", Text: "the sky at night is dark blue", Tags: []string{"sky"}, CreatedAt: day(3)},
	}
	ids := func(q ArchivalQuery) string {
		var out []string
		for _, r := range SearchArchival(ps, q).Results {
			out = append(out, r.ID)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		q    ArchivalQuery
		want string
	}{
		{ArchivalQuery{Query: "blue sky"}, "p3,p1,p2"},
		{ArchivalQuery{Query: "blue", TopK: 2}, "p3,p2"},
		{ArchivalQuery{Query: "blue", Tags: []string{"sky"}}, "p3,p1"},
		{ArchivalQuery{Query: "blue", End: new(day(2))}, "p2,p1"},
		{ArchivalQuery{Query: "green"}, ""},
	}
	for _, c := range cases {
		if got := ids(c.q); got != c.want {
			t.Errorf("%+v: %s, want %s", c.q, got, c.want)
		}
	}
}

// Spec: tags match any (or, with all, every) wanted tag; none wanted
// matches everything.
func TestMatchTags(t *testing.T) {
	have := []string{"a", "b"}
	for _, c := range []struct {
		want []string
		all  bool
		ok   bool
	}{
		{nil, false, true}, {[]string{"a", "z"}, false, true}, {[]string{"a", "z"}, true, false},
		{[]string{"a", "b"}, true, true}, {[]string{"z"}, false, false},
	} {
		if got := MatchTags(have, c.want, c.all); got != c.ok {
			t.Errorf("MatchTags(%v, %v, %v) = %v", have, c.want, c.all, got)
		}
	}
}
