package memory

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm/llmtest"
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

// storePassages inserts passages (agent "agent-1", ids p<first>, ...) at
// the given days, each embedded with the double's embedding under handle
// when handle is not "".
func storePassages(t *testing.T, db kv.Store, handle string, first int, ps []testPassage) {
	t.Helper()
	for i, p := range ps {
		var emb *Embedded
		if handle != "" {
			emb = &Embedded{Handle: handle, Vector: llmtest.Embed(p.text, 64)}
		}
		txn(t, db, func(tx kv.Txn) {
			at := time.Date(2025, 5, p.day, 0, 0, 0, 0, time.UTC)
			if _, err := InsertPassage(tx, "agent-1", fmt.Sprintf("p%d", first+i), p.text, p.tags, emb, at); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type testPassage struct {
	text string
	tags []string
	day  int
}

func searchIDs(t *testing.T, db kv.Store, q ArchivalQuery) (string, *letta.ArchivalSearchResponse) {
	t.Helper()
	var out []string
	var res *letta.ArchivalSearchResponse
	txn(t, db, func(tx kv.Txn) {
		var err error
		if res, err = SearchArchival(tx, "agent-1", q); err != nil {
			t.Fatal(err)
		}
	})
	for _, r := range res.Results {
		out = append(out, r.ID)
	}
	return strings.Join(out, ","), res
}

// Spec: without a query embedding, archival search ranks by how many of
// the query's words a passage holds (whole words, whatever their case),
// newer first among equals, within tags and dates, and says it searched by
// words and why.
func TestSearchArchivalLexical(t *testing.T) {
	db := kv.NewMemDB()
	storePassages(t, db, "", 1, []testPassage{
		{"the sky is blue", []string{"sky"}, 1}, {"blue whales are big", nil, 2}, {"the sky at night is dark blue", []string{"sky"}, 3},
		{"if a<b then cédille", nil, 4}, {"300 Kelvin, İstanbul", nil, 5},
	})
	day := func(d int) time.Time { return time.Date(2025, 5, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		q    ArchivalQuery
		want string
	}{
		{ArchivalQuery{Query: "blue sky"}, "p3,p1,p2"},
		{ArchivalQuery{Query: "blue", TopK: 2}, "p3,p2"},
		{ArchivalQuery{Query: "blue", Tags: []string{"sky"}}, "p3,p1"},
		{ArchivalQuery{Query: "blue", End: new(day(2))}, "p2,p1"},
		{ArchivalQuery{Query: "green"}, ""},
		{ArchivalQuery{Query: "blu"}, ""}, // a part of a word is not the word
		{ArchivalQuery{Query: ""}, "p5,p4,p3,p2,p1"},
		// Non-ASCII letters whose lower case is ASCII (the Kelvin sign, a
		// dotted capital I) still match an ASCII word.
		{ArchivalQuery{Query: "kelvin"}, "p5"},
		{ArchivalQuery{Query: "istanbul"}, "p5"},
		// Words are runs of letters and digits: "A<B" is "a" and "b".
		{ArchivalQuery{Query: "A<B"}, "p4"},
		{ArchivalQuery{Query: "CÉDILLE"}, "p4"},
	}
	for _, c := range cases {
		c.q.NoVector = "no provider"
		got, res := searchIDs(t, db, c.q)
		if got != c.want || res.SearchMode != ModeLexical || res.Note != "no provider" {
			t.Errorf("%+v: %s (%s, %q), want %s (lexical)", c.q, got, res.SearchMode, res.Note, c.want)
		}
	}
}

// Spec: with a query embedding, passages embedded by the same model are
// ranked by similarity too: a passage sharing no word with the query but
// near it in meaning is found, and one embedded by another model is ranked
// by words only; filters still apply.
func TestSearchArchivalHybrid(t *testing.T) {
	db := kv.NewMemDB()
	storePassages(t, db, "test/model", 1, []testPassage{
		{"dogs bark loudly at night", []string{"pets"}, 1},
		{"the stock market fell sharply", nil, 2},
		{"cats sleep all day", []string{"pets"}, 3},
	})
	storePassages(t, db, "other/model", 4, []testPassage{{"dogs bark loudly at night", nil, 4}})
	q := func(text string) ArchivalQuery {
		return ArchivalQuery{Query: text, Embedded: &Embedded{Handle: "test/model", Vector: llmtest.Embed(text, 64)}}
	}
	// "Dogs, bark!" holds the words "dogs" and "bark": p1 and p4 hold
	// them, and p1's vector is nearest the query's (two of p1's five
	// words). p4, the same text embedded by another model, is found by its
	// words only: its vector is not compared with the query's.
	vq := q("Dogs, bark!")
	if got, res := searchIDs(t, db, vq); !strings.HasPrefix(got, "p1,p4") || res.SearchMode != ModeHybrid || res.Note != "" {
		t.Errorf("hybrid search: %s (%s %q), want p1 then p4", got, res.SearchMode, res.Note)
	}
	var hits []Ranked
	txn(t, db, func(tx kv.Txn) {
		var err error
		if hits, _, err = RankPassages(tx, []string{"agent-1"}, vq); err != nil {
			t.Fatal(err)
		}
	})
	for _, h := range hits {
		if h.Passage.Embedding == "other/model" && (h.VectorRank != 0 || h.LexicalRank == 0) {
			t.Errorf("passage of another model: %+v, want ranked by words only", h)
		}
		if want := float32(2 / math.Sqrt(10)); h.Passage.ID == "p1" && (h.VectorRank != 1 || math.Abs(float64(h.VectorScore-want)) > 1e-5) {
			t.Errorf("p1: vector rank %d score %v, want 1 and %v", h.VectorRank, h.VectorScore, want)
		}
	}
	tagged := q("market")
	tagged.Tags = []string{"pets"}
	if got, _ := searchIDs(t, db, tagged); strings.Contains(got, "p2") {
		t.Errorf("tag filter: %s holds p2", got)
	}
}

// Spec: the vector ranking is exact: its top k are the k passages of
// highest cosine similarity, as a brute-force sort finds them.
func TestVectorRankingIsExact(t *testing.T) {
	db := kv.NewMemDB()
	rng := rand.New(rand.NewPCG(1, 2))
	const n, dim, k = 300, 16, 10
	vecs := make([][]float32, n)
	for i := range vecs {
		v := make([]float32, dim)
		for j := range v {
			v[j] = float32(rng.NormFloat64())
		}
		vecs[i] = embedding.Normalize(v)
		txn(t, db, func(tx kv.Txn) {
			if _, err := InsertPassage(tx, "agent-1", fmt.Sprintf("p%d", i), "x", nil, &Embedded{Handle: "h/m", Vector: vecs[i]}, time.Unix(int64(i), 0)); err != nil {
				t.Fatal(err)
			}
		})
	}
	query := vecs[7]
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	slices.SortFunc(want, func(a, b int) int { return cmp.Compare(embedding.Dot(query, vecs[b]), embedding.Dot(query, vecs[a])) })
	var hits []Ranked
	txn(t, db, func(tx kv.Txn) {
		var err error
		hits, _, err = RankPassages(tx, []string{"agent-1"}, ArchivalQuery{Query: "zzz", TopK: k, Embedded: &Embedded{Handle: "h/m", Vector: query}})
		if err != nil {
			t.Fatal(err)
		}
	})
	if len(hits) != k {
		t.Fatalf("%d hits, want %d", len(hits), k)
	}
	for i, h := range hits {
		if w := fmt.Sprintf("p%d", want[i]); h.Passage.ID != w {
			t.Errorf("hit %d: %s, want %s", i, h.Passage.ID, w)
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
