package memory

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/vecindex"
	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of archival search.
const (
	// FusionK is the k of reciprocal rank fusion: a passage ranked r-th
	// (from 1) by one ranking scores 1/(FusionK+r) from it (60, as in
	// Cormack et al. and most hybrid search engines).
	FusionK = 60
	// MinFusionCandidates is the fewest candidates each ranking offers
	// to the fusion (more when top_k asks for more).
	MinFusionCandidates = 100
	// RerankFactor is how many more candidates than it offers the vector
	// ranking takes from the quantized scan, to rank them exactly.
	RerankFactor = 4
)

// Search modes a search reports.
const (
	ModeHybrid  = "hybrid"  // vector similarity fused with word matches
	ModeLexical = "lexical" // word matches only
)

// ArchivalQuery is a search of archival memory.
type ArchivalQuery struct {
	Query       string
	Tags        []string
	TagMatchAll bool
	TopK        int // 0: DefaultArchivalTopK
	Start, End  *time.Time
	Timezone    string // of the times shown
	// Embedded is the query's embedding; nil searches by words only, and
	// NoVector says why (shown to the caller).
	Embedded *Embedded
	NoVector string
	// Exact ranks by every vector of the query's model instead of those of
	// the index's lists nearest the query (vecindex.ProbeVectors).
	Exact bool
}

// Ranked is a passage a search found, with its fused score and its place
// in each ranking (0: not ranked by it).
type Ranked struct {
	Passage     *schema.Passage
	Score       float64
	VectorRank  int
	VectorScore float32
	LexicalRank int
}

// RankPassages searches the passages of owners (agent or archive ids;
// nil: all): those the filters keep are ranked by how many of the query's
// words (schema.Words) they hold and, with a query embedding, by
// similarity to the vectors made by the same model, the two rankings fused
// (reciprocal rank fusion); best first, at most q.TopK. An empty query
// ranks by recency. It reports the mode it used.
//
// Without tag or date filters, a search of owners reads the postings of
// its words in the word index (schema.PassageTerms), not the passages, and
// decodes only the passages it returns. Filtered searches, searches of
// every owner and empty queries scan the passages, decoding only those
// that may hold a query word (their stored bytes are tested first) or
// that the filters must see.
func RankPassages(txn kv.Txn, owners []string, q ArchivalQuery) ([]Ranked, string, error) {
	topK := q.TopK
	if topK == 0 {
		topK = DefaultArchivalTopK
	}
	mode := ModeLexical
	if q.Embedded != nil {
		mode = ModeHybrid
	}
	empty := strings.TrimSpace(q.Query) == ""
	filtered := q.Start != nil || q.End != nil || len(q.Tags) > 0
	words := schema.Words(q.Query)
	pool := max(MinFusionCandidates, 2*topK)
	cs := &candidates{txn: txn, byKey: map[string]int{}}
	lex := embedding.NewTopK(pool)
	var err error
	if owners != nil && !filtered && !empty {
		err = lexicalByIndex(cs, lex, owners, words)
	} else {
		err = lexicalByScan(cs, lex, owners, q, words, filtered || empty)
	}
	if err != nil {
		return nil, "", err
	}
	if empty {
		return newest(cs.recs, topK), mode, nil
	}
	var vec []embedding.Hit
	if q.Embedded != nil {
		var err error
		if vec, err = vectorRanking(cs, owners, filtered, filtered || q.Exact, q.Embedded, pool); err != nil {
			return nil, "", err
		}
	}
	out, err := fuse(cs, lex.Best(), vec, topK)
	return out, mode, err
}

// lexicalByScan offers to lex every passage of owners (nil: all) the query
// keeps, scored by the words it holds. Those holding none become
// candidates only when all must (all: for filters, or an empty query).
func lexicalByScan(cs *candidates, lex *embedding.TopK, owners []string, q ArchivalQuery, words []string, all bool) error {
	for _, prefix := range prefixes(owners, schema.PassagesOf, schema.Passages) {
		err := kv.ScanEach(cs.txn, kv.PrefixRange(prefix), false, func(kvp kv.KeyValue) (bool, error) {
			if !all && !mayContainAny(kvp.Value, words) {
				return true, nil
			}
			p, err := schema.DecodePassage(kvp.Value)
			if err != nil {
				return false, fmt.Errorf("passage %q: %w", kvp.Key, err)
			}
			if !q.keeps(p) {
				return true, nil
			}
			n := schema.CountWords(p.Text, words)
			if n == 0 && !all {
				return true, nil
			}
			i := cs.add(string(kvp.Key), p)
			if n > 0 {
				lex.Offer(i, float32(n))
			}
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// lexicalByIndex offers to lex the passages of owners that hold any of
// words, scored by how many: it reads the postings of each word, and the
// passages indexed as having too many words to index (OverflowTerm),
// which it tests one by one. Candidates are added in passage order, as a
// scan meets them, so that ties rank alike.
func lexicalByIndex(cs *candidates, lex *embedding.TopK, owners []string, words []string) error {
	if len(words) == 0 {
		return nil
	}
	for _, o := range owners {
		held := map[string]int{}
		recs := map[string]*schema.Passage{}
		for _, w := range words {
			err := kv.ScanEach(cs.txn, kv.PrefixRange(schema.PassageTermsOf(o, w)), false, func(kvp kv.KeyValue) (bool, error) {
				held[string(schema.PassageOfTerm(o, kvp.Key))]++
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		err := kv.ScanEach(cs.txn, kv.PrefixRange(schema.PassageTermsOf(o, schema.OverflowTerm)), false, func(kvp kv.KeyValue) (bool, error) {
			k := string(schema.PassageOfTerm(o, kvp.Key))
			p, err := readPassage(cs.txn, k)
			if err != nil {
				return false, err
			}
			if n := schema.CountWords(p.Text, words); n > 0 {
				held[k], recs[k] = n, p
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(held)) {
			lex.Offer(cs.add(k, recs[k]), float32(held[k]))
		}
	}
	return nil
}

// candidates are the passages a search considers, by index (in the order
// met): their keys, and their records once read.
type candidates struct {
	txn   kv.Txn
	keys  []string
	recs  []*schema.Passage // nil: not read yet
	byKey map[string]int
}

// add returns the index of the passage at key, adding it (p may be nil).
func (c *candidates) add(key string, p *schema.Passage) int {
	if i, ok := c.byKey[key]; ok {
		return i
	}
	c.byKey[key] = len(c.keys)
	c.keys, c.recs = append(c.keys, key), append(c.recs, p)
	return len(c.keys) - 1
}

// passage returns candidate i's record, reading it if need be.
func (c *candidates) passage(i int) (*schema.Passage, error) {
	if c.recs[i] != nil {
		return c.recs[i], nil
	}
	p, err := readPassage(c.txn, c.keys[i])
	c.recs[i] = p
	return p, err
}

// readPassage reads the passage at key, which an index names.
func readPassage(txn kv.Txn, key string) (*schema.Passage, error) {
	data, err := txn.Get([]byte(key))
	if err != nil {
		return nil, schema.Dangling(err, "indexed passage %q", key)
	}
	p, err := schema.DecodePassage(data)
	if err != nil {
		return nil, fmt.Errorf("passage %q: %w", key, err)
	}
	return p, nil
}

// mayContainAny reports whether a stored passage (its JSON) may contain
// one of words (lower case): false only if it surely does not. A word with
// a character JSON escapes cannot be tested on the bytes, so it may.
func mayContainAny(raw []byte, words []string) bool {
	var lower []byte
	for _, w := range words {
		if strings.ContainsFunc(w, func(r rune) bool {
			return r < 0x20 || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029'
		}) {
			return true
		}
		if isASCII(w) && !bytes.Contains(raw, kelvinSign) && !bytes.Contains(raw, dottedCapitalI) {
			if containsASCIIFold(raw, w) {
				return true
			}
			continue
		}
		if lower == nil {
			lower = bytes.ToLower(raw)
		}
		if bytes.Contains(lower, []byte(w)) {
			return true
		}
	}
	return false
}

// The only characters outside ASCII whose lower case holds an ASCII
// letter (k; i and a combining dot): where they occur, an ASCII word is
// tested on the lower-cased bytes.
var kelvinSign, dottedCapitalI = []byte("\u212A"), []byte("\u0130")

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// containsASCIIFold reports whether raw contains w (lower-case ASCII),
// ignoring the case of ASCII letters, without copying raw.
func containsASCIIFold(raw []byte, w string) bool {
	if w == "" {
		return true
	}
	first, upper := w[0], w[0]
	if 'a' <= first && first <= 'z' {
		upper = first - 'a' + 'A'
	}
	for i := 0; i+len(w) <= len(raw); i++ {
		if raw[i] != first && raw[i] != upper {
			continue
		}
		j := 1
		for ; j < len(w); j++ {
			c := raw[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// prefixes are the key prefixes of owners in a family (of), or the whole
// family f when owners is nil.
func prefixes(owners []string, of func(string) []byte, f *schema.Family) [][]byte {
	if owners == nil {
		return [][]byte{[]byte(f.Prefix)}
	}
	out := make([][]byte, len(owners))
	for i, o := range owners {
		out[i] = of(o)
	}
	return out
}

// keeps reports whether p passes the query's tag and date filters.
func (q *ArchivalQuery) keeps(p *schema.Passage) bool {
	if q.Start != nil && p.CreatedAt.Before(*q.Start) || q.End != nil && p.CreatedAt.After(*q.End) {
		return false
	}
	return MatchTags(p.Tags, q.Tags, q.TagMatchAll)
}

// newest is the topK newest of cands (which are oldest first per owner).
func newest(cands []*schema.Passage, topK int) []Ranked {
	sorted := slices.Clone(cands)
	slices.SortStableFunc(sorted, func(a, b *schema.Passage) int { return b.CreatedAt.Compare(a.CreatedAt) })
	out := []Ranked{}
	for _, p := range sorted[:min(len(sorted), topK)] {
		out = append(out, Ranked{Passage: p})
	}
	return out
}

// vectorRanking ranks the passages embedded by the query's model by
// cosine similarity to it; the best pool. It reads the quantized vectors
// of each owner that the vector index offers (those of the lists nearest
// the query; all of them with filters, or for a search of every owner),
// scored where they lie, keeps the RerankFactor·pool best estimates, and
// ranks those by their exact vectors. With filters, only the candidates
// read are ranked; with whole, every vector is read.
func vectorRanking(cs *candidates, owners []string, filtered, whole bool, q *Embedded, pool int) ([]embedding.Hit, error) {
	approx := embedding.NewTopK(RerankFactor * pool)
	model := schema.EmbeddingModelHash(q.Handle)
	offer := func(passageKey, quantized []byte) error {
		key := string(passageKey)
		i, read := cs.byKey[key]
		if filtered && !read {
			return nil // filtered out
		}
		score := embedding.DotQuantized(q.Vector, quantized)
		if !read && !approx.Accepts(score) {
			return nil
		}
		if !read {
			i = cs.add(key, nil)
		}
		approx.Offer(i, score)
		return nil
	}
	if owners == nil {
		if err := vecindex.ScanAll(cs.txn, model, len(q.Vector), offer); err != nil {
			return nil, err
		}
	}
	probe := vecindex.ProbeVectors
	if whole {
		probe = 0
	}
	for _, o := range owners {
		if err := vecindex.Scan(cs.txn, o, model, q.Vector, probe, offer); err != nil {
			return nil, err
		}
	}
	exact := embedding.NewTopK(pool)
	for _, h := range approx.Best() {
		enc, err := cs.txn.Get(schema.PassageVectorFor([]byte(cs.keys[h.Index])))
		if err != nil {
			return nil, schema.Dangling(err, "indexed vector of passage %q", cs.keys[h.Index])
		}
		if len(enc) != 4*len(q.Vector) {
			return nil, fmt.Errorf("passage %q: its vector has %d bytes but its indexed vector %d dimensions", cs.keys[h.Index], len(enc), len(q.Vector))
		}
		exact.Offer(h.Index, embedding.DotEncoded(q.Vector, enc))
	}
	return exact.Best(), nil
}

// fuse merges the rankings by reciprocal rank fusion: best first, newer
// first among equal scores; at most topK.
func fuse(cs *candidates, lex, vec []embedding.Hit, topK int) ([]Ranked, error) {
	byIndex := map[int]*Ranked{}
	var order []int
	add := func(hits []embedding.Hit, set func(r *Ranked, rank int, h embedding.Hit)) {
		for rank, h := range hits {
			r := byIndex[h.Index]
			if r == nil {
				r = &Ranked{}
				byIndex[h.Index] = r
				order = append(order, h.Index)
			}
			r.Score += 1 / float64(FusionK+rank+1)
			set(r, rank+1, h)
		}
	}
	add(vec, func(r *Ranked, rank int, h embedding.Hit) { r.VectorRank, r.VectorScore = rank, h.Score })
	add(lex, func(r *Ranked, rank int, _ embedding.Hit) { r.LexicalRank = rank })
	slices.SortFunc(order, func(a, b int) int {
		if sa, sb := byIndex[a].Score, byIndex[b].Score; sa != sb {
			if sa > sb {
				return -1
			}
			return 1
		}
		return b - a
	})
	out := make([]Ranked, 0, min(len(order), topK))
	for _, i := range order[:min(len(order), topK)] {
		p, err := cs.passage(i)
		if err != nil {
			return nil, err
		}
		r := *byIndex[i]
		r.Passage = p
		out = append(out, r)
	}
	return out, nil
}

// SearchArchival searches an agent's archival memory, its own passages and
// those of the archives attached to it (RankPassages), and
// answers as the archival search route and tool do, saying which mode it
// used and, for lexical search, why.
func SearchArchival(txn kv.Txn, agentID string, q ArchivalQuery) (*letta.ArchivalSearchResponse, error) {
	archives, err := schema.AgentArchiveIDs(txn, agentID)
	if err != nil {
		return nil, err
	}
	hits, mode, err := RankPassages(txn, append([]string{agentID}, archives...), q)
	if err != nil {
		return nil, err
	}
	out := &letta.ArchivalSearchResponse{Results: []letta.ArchivalResult{}, SearchMode: mode}
	if mode == ModeLexical {
		out.Note = q.NoVector
	}
	for _, h := range hits {
		tags := h.Passage.Tags
		if tags == nil {
			tags = []string{}
		}
		out.Results = append(out.Results, letta.ArchivalResult{
			ID: h.Passage.ID, Timestamp: prompt.Clock(h.Passage.CreatedAt, q.Timezone), Content: h.Passage.Text, Tags: tags,
		})
	}
	out.Count = len(out.Results)
	return out, nil
}

// scored is a search hit with its score.
type scored[T any] struct {
	item  T
	score int
}

// wordsIn counts how many of words (lower case) occur in text, ignoring
// case.
func wordsIn(text string, words []string) int {
	lower := strings.ToLower(text)
	n := 0
	for _, w := range words {
		if strings.Contains(lower, w) {
			n++
		}
	}
	return n
}
