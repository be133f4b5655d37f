package memory

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm/llmtest"
	"github.com/kelpie/kelpie/schema"
)

// Spec: a search of owners ranks, through the word index, exactly as a
// scan of every passage does (the search of all owners scans), and its
// ranking by words is the brute-force one: most query words held first,
// the later passage first among equals. It holds after inserts and
// deletes, for passages with too many words to index, and for words that
// change under lower-casing; the index and the counts keep every
// schema.Check rule.
func TestLexicalIndexMatchesAFullScan(t *testing.T) {
	db := kv.NewMemDB()
	rng := rand.New(rand.NewPCG(11, 12))
	vocab := []string{"sky", "Blue", "blue", "whale", "Kelvin", "\u212Aelvin", "İstanbul", "istanbul", "night", "dark",
		"café", "CAFÉ", "a<b", "x-ray", "ray", "42", "cat", "concatenate", "日本語", "the"}
	owners := []string{"agent-1", "archive-1"} // in key order, as a scan of all meets them
	type live struct{ owner, id, text string }
	var alive []live
	long := func() string { // more words than the index takes
		var b strings.Builder
		for i := range schema.MaxPassageTerms + 1 {
			fmt.Fprintf(&b, "w%d ", i)
		}
		return b.String() + vocab[rng.IntN(len(vocab))]
	}
	for i := range 300 {
		if len(alive) > 0 && rng.IntN(5) == 0 {
			j := rng.IntN(len(alive))
			p := alive[j]
			txn(t, db, func(tx kv.Txn) {
				if err := DeletePassage(tx, p.owner, p.id); err != nil {
					t.Fatal(err)
				}
			})
			alive = slices.Delete(alive, j, j+1)
			continue
		}
		var words []string
		for range 1 + rng.IntN(6) {
			words = append(words, vocab[rng.IntN(len(vocab))])
		}
		text := strings.Join(words, []string{" ", ", ", "! "}[rng.IntN(3)])
		if rng.IntN(40) == 0 {
			text = long()
		}
		p := live{owners[rng.IntN(2)], fmt.Sprintf("passage-%d", i), text}
		emb := &Embedded{Handle: "h/m", Vector: llmtest.Embed(text, 16)}
		txn(t, db, func(tx kv.Txn) {
			rec := &schema.Passage{ID: p.id, Text: text, Tags: []string{vocab[rng.IntN(3)]}, CreatedAt: time.Unix(int64(i), 0).UTC()}
			if p.owner == "agent-1" {
				rec.AgentID = p.owner
			} else {
				rec.ArchiveID = p.owner
			}
			if _, err := InsertPassageRecord(tx, rec, emb); err != nil {
				t.Fatal(err)
			}
		})
		alive = append(alive, p)
	}
	checkStore(t, db)
	if !slices.ContainsFunc(alive, func(p live) bool { return len(schema.Words(p.text)) > schema.MaxPassageTerms }) {
		t.Fatal("no passage has more words than the index takes")
	}
	rank := func(owners []string, q ArchivalQuery) []Ranked {
		var hits []Ranked
		txn(t, db, func(tx kv.Txn) {
			var err error
			if hits, _, err = RankPassages(tx, owners, q); err != nil {
				t.Fatal(err)
			}
		})
		return hits
	}
	show := func(hits []Ranked) string {
		var out []string
		for _, h := range hits {
			out = append(out, fmt.Sprintf("%s(l%d v%d %.5f)", h.Passage.ID, h.LexicalRank, h.VectorRank, h.Score))
		}
		return strings.Join(out, " ")
	}
	for i := range 120 {
		var words []string
		for range 1 + rng.IntN(3) {
			words = append(words, vocab[rng.IntN(len(vocab))])
		}
		if rng.IntN(4) == 0 {
			words = append(words, "absent", "w7")
		}
		q := ArchivalQuery{Query: strings.Join(words, " "), TopK: 1 + rng.IntN(30)}
		if i%2 == 1 {
			q.Embedded = &Embedded{Handle: "h/m", Vector: llmtest.Embed(q.Query, 16)}
		}
		indexed, scanned := rank(owners, q), rank(nil, q)
		if show(indexed) != show(scanned) {
			t.Fatalf("%q: the index ranks\n%s\nbut a scan\n%s", q.Query, show(indexed), show(scanned))
		}
		if q.Embedded != nil {
			continue
		}
		// The brute-force ranking by words, over the live passages in
		// the order a scan meets them.
		slices.SortStableFunc(alive, func(a, b live) int { return strings.Compare(a.owner, b.owner) })
		qw := schema.Words(q.Query)
		type hit struct {
			id    string
			score int
			at    int
		}
		var want []hit
		for j, p := range alive {
			n := 0
			for _, w := range schema.Words(p.text) {
				if slices.Contains(qw, w) {
					n++
				}
			}
			if n > 0 {
				want = append(want, hit{p.id, n, j})
			}
		}
		slices.SortFunc(want, func(a, b hit) int {
			if a.score != b.score {
				return b.score - a.score
			}
			return b.at - a.at
		})
		var wantIDs, gotIDs []string
		for _, h := range want[:min(len(want), q.TopK)] {
			wantIDs = append(wantIDs, h.id)
		}
		for _, h := range indexed {
			gotIDs = append(gotIDs, h.Passage.ID)
		}
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("%q (top %d): %v, want %v", q.Query, q.TopK, gotIDs, wantIDs)
		}
	}
}

// checkStore fails t on a broken schema.Check rule, but for the agent and
// archive records these tests do not write.
func checkStore(t *testing.T, db kv.Store) {
	t.Helper()
	var es []schema.Entry
	txn(t, db, func(tx kv.Txn) {
		kvs, err := tx.Scan(kv.Range{Start: []byte{0}}, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range kvs {
			es = append(es, schema.Entry{Key: p.Key, Value: p.Value})
		}
	})
	for _, p := range schema.Check(es).Problems {
		if !strings.Contains(p.Message, "has no record") {
			t.Errorf("schema.Check: %s: %s", p.Object, p.Message)
		}
	}
}
