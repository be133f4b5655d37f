package vecindex_test

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent/vecindex"
	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

const (
	owner = "agent-1"
	model = "openai/text-embedding-3-small"
)

// index is a store holding passages of owner with their vectors, indexed.
type index struct {
	t    *testing.T
	db   kv.Store
	vecs map[string][]float32 // passage key -> vector
	seq  uint64
}

func newIndex(t *testing.T) *index {
	return &index{t: t, db: kv.NewMemDB(), vecs: map[string][]float32{}}
}

// update runs fn in one committed transaction.
func (x *index) update(fn func(kv.Txn) error) {
	x.t.Helper()
	ctx := context.Background()
	txn, err := x.db.Begin(ctx)
	if err != nil {
		x.t.Fatal(err)
	}
	if err := fn(txn); err != nil {
		x.t.Fatal(err)
	}
	if err := txn.Commit(ctx); err != nil {
		x.t.Fatal(err)
	}
}

// put stores a passage with vector v and indexes it (legacy: as a store
// written before the index did, with a scan vector instead).
func (x *index) put(txn kv.Txn, v []float32, legacy bool) error {
	x.seq++
	p := &schema.Passage{ID: fmt.Sprintf("passage-%d", x.seq), AgentID: owner, Seq: x.seq, Text: "text", Tags: []string{},
		Embedding: model, CreatedAt: time.Unix(int64(x.seq), 0).UTC(), UpdatedAt: time.Unix(int64(x.seq), 0).UTC()}
	if err := schema.PutPassage(txn, p); err != nil {
		return err
	}
	if err := schema.PutPassageVector(txn, p, v); err != nil {
		return err
	}
	k := schema.PassageKey(owner, p.Seq, p.ID)
	x.vecs[string(k)] = v
	if legacy {
		scan := binary.LittleEndian.AppendUint32(nil, schema.EmbeddingModelHash(model))
		return txn.Set(schema.PassageScanVectorFor(k), append(scan, embedding.Quantize(v)...))
	}
	return vecindex.Add(txn, owner, schema.EmbeddingModelHash(model), k, v)
}

// remove deletes a passage as the service does.
func (x *index) remove(txn kv.Txn, key string) error {
	data, err := txn.Get([]byte(key))
	if err != nil {
		return err
	}
	p, err := schema.DecodePassage(data)
	if err != nil {
		return err
	}
	if err := schema.IndexPassage(txn, p, -1); err != nil {
		return err
	}
	if err := txn.Delete([]byte(key)); err != nil {
		return err
	}
	if err := txn.Delete(schema.PassageIDKey(schema.LastPart([]byte(key)))); err != nil {
		return err
	}
	if err := schema.DeletePassageVectors(txn, []byte(key)); err != nil {
		return err
	}
	delete(x.vecs, key)
	return vecindex.Remove(txn, owner, []byte(key))
}

// scan returns the passage keys a search for q reads, with probe.
func (x *index) scan(q []float32, probe int) []string {
	x.t.Helper()
	var out []string
	x.update(func(txn kv.Txn) error {
		return vecindex.Scan(txn, owner, schema.EmbeddingModelHash(model), q, probe, func(pk, quantized []byte) error {
			if embedding.QuantizedDim(quantized) != len(q) {
				return fmt.Errorf("%q: %d dimensions", pk, embedding.QuantizedDim(quantized))
			}
			out = append(out, string(pk))
			return nil
		})
	})
	return out
}

// entries returns every stored entry; check fails t on a broken rule.
func (x *index) entries() []schema.Entry {
	x.t.Helper()
	var es []schema.Entry
	x.update(func(txn kv.Txn) error {
		kvs, err := txn.Scan(kv.Range{Start: []byte{0}}, 0, false)
		for _, p := range kvs {
			es = append(es, schema.Entry{Key: p.Key, Value: p.Value})
		}
		return err
	})
	return es
}

func (x *index) check() {
	x.t.Helper()
	for _, p := range schema.Check(x.entries()).Problems {
		if !strings.Contains(p.Message, "agent "+owner+" has no record") {
			x.t.Errorf("schema.Check: %s", p.Message)
		}
	}
}

// lists returns the sizes of the index's lists.
func (x *index) lists() []uint32 {
	var out []uint32
	for _, e := range x.entries() {
		if strings.HasPrefix(string(e.Key), schema.VectorCentroids.Prefix) {
			size, _ := schema.DecodeCentroid(e.Value)
			out = append(out, size)
		}
	}
	return out
}

// clustered draws vectors near one of topics random directions.
type clustered struct {
	rng    *rand.Rand
	topics [][]float32
}

func newClustered(seed uint64, topics, dim int) *clustered {
	c := &clustered{rng: rand.New(rand.NewPCG(seed, seed))}
	for range topics {
		c.topics = append(c.topics, unit(c.rng, dim))
	}
	return c
}

func (c *clustered) next() []float32 {
	t := c.topics[c.rng.IntN(len(c.topics))]
	v := unit(c.rng, len(t))
	for i := range v {
		v[i] = t[i] + 0.8*v[i]
	}
	return embedding.Normalize(v)
}

func unit(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return embedding.Normalize(v)
}

// fill stores n vectors of gen, 100 per transaction.
func (x *index) fill(n int, gen func() []float32) {
	for start := 0; start < n; start += 100 {
		x.update(func(txn kv.Txn) error {
			for range min(100, n-start) {
				if err := x.put(txn, gen(), false); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

// Spec: a space of at most ProbeVectors vectors is searched whole, every
// vector once (exact search for small sets).
func TestSmallSpaceIsSearchedWhole(t *testing.T) {
	x := newIndex(t)
	rng := rand.New(rand.NewPCG(1, 2))
	x.fill(3*vecindex.MaxListVectors, func() []float32 { return unit(rng, 16) })
	if n := len(x.lists()); n < 3 {
		t.Fatalf("%d lists after %d inserts; want the lists split (at most %d each)", n, 3*vecindex.MaxListVectors, vecindex.MaxListVectors)
	}
	got := x.scan(unit(rng, 16), vecindex.ProbeVectors)
	slices.Sort(got)
	want := slices.Sorted(maps.Keys(x.vecs))
	if !slices.Equal(got, want) {
		t.Fatalf("search read %d vectors (%d distinct); want all %d once", len(got), len(slices.Compact(got)), len(want))
	}
	x.check()
}

// Spec: lists never hold more than MaxListVectors; a large space is
// probed (not read whole), and the probe finds the true nearest
// neighbours of clustered data; schema.Check holds after every batch.
func TestLargeSpaceIsProbed(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 12k vectors")
	}
	x := newIndex(t)
	gen := newClustered(3, 200, 64)
	x.fill(3*vecindex.ProbeVectors, gen.next)
	for _, size := range x.lists() {
		if size > vecindex.MaxListVectors || size == 0 {
			t.Fatalf("a list of %d postings; want 1 to %d", size, vecindex.MaxListVectors)
		}
	}
	x.check()
	found, wanted := 0, 0
	for range 20 {
		q := gen.next()
		read := x.scan(q, vecindex.ProbeVectors)
		if len(read) >= len(x.vecs) {
			t.Fatalf("a probe read %d of %d vectors", len(read), len(x.vecs))
		}
		for _, k := range x.exactTop(q, 10) {
			wanted++
			if slices.Contains(read, k) {
				found++
			}
		}
	}
	if recall := float64(found) / float64(wanted); recall < 0.9 {
		t.Fatalf("the probed lists hold %.2f of the exact top 10s; want at least 0.9", recall)
	}
}

func (x *index) exactTop(q []float32, k int) []string {
	keys := slices.Collect(maps.Keys(x.vecs))
	score := map[string]float32{}
	for _, k := range keys {
		score[k] = embedding.Dot(q, x.vecs[k])
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(score[b], score[a]), strings.Compare(a, b)) })
	return keys[:min(k, len(keys))]
}

// Spec: deletes keep the index consistent: a deleted passage is never
// read again, emptied lists are deleted, and what remains is read whole.
func TestDeletesMaintainTheIndex(t *testing.T) {
	x := newIndex(t)
	rng := rand.New(rand.NewPCG(5, 6))
	x.fill(2*vecindex.MaxListVectors+10, func() []float32 { return unit(rng, 8) })
	keys := slices.Sorted(maps.Keys(x.vecs))
	x.update(func(txn kv.Txn) error {
		for i, k := range keys {
			if i%3 != 0 {
				if err := x.remove(txn, k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	x.check()
	got := x.scan(unit(rng, 8), 0)
	slices.Sort(got)
	if want := slices.Sorted(maps.Keys(x.vecs)); !slices.Equal(got, want) {
		t.Fatalf("after deletes the search read %d vectors; want the %d left", len(got), len(want))
	}
	x.update(func(txn kv.Txn) error {
		for k := range x.vecs {
			if err := x.remove(txn, k); err != nil {
				return err
			}
		}
		return nil
	})
	if n := len(x.lists()); n != 0 {
		t.Fatalf("%d lists left with no vectors", n)
	}
	x.check()
}

// Spec: vectors stored before the index existed (scan vectors) are read by
// a search, and the first insert into their space moves them all into the
// index, split into lists.
func TestScanVectorsAreAdopted(t *testing.T) {
	x := newIndex(t)
	rng := rand.New(rand.NewPCG(7, 8))
	x.update(func(txn kv.Txn) error {
		for range 2*vecindex.MaxListVectors + 1 {
			if err := x.put(txn, unit(rng, 8), true); err != nil {
				return err
			}
		}
		return nil
	})
	x.check()
	if got := x.scan(unit(rng, 8), vecindex.ProbeVectors); len(got) != len(x.vecs) {
		t.Fatalf("search read %d legacy vectors; want %d", len(got), len(x.vecs))
	}
	x.update(func(txn kv.Txn) error { return x.put(txn, unit(rng, 8), false) })
	for _, e := range x.entries() {
		if strings.HasPrefix(string(e.Key), schema.PassageScanVectors.Prefix) {
			t.Fatalf("scan vector %q left after the first insert", e.Key)
		}
	}
	if n := len(x.lists()); n < 3 {
		t.Fatalf("%d lists after adopting %d vectors", n, len(x.vecs))
	}
	x.check()
	got := x.scan(unit(rng, 8), 0)
	if len(got) != len(x.vecs) {
		t.Fatalf("search read %d vectors; want %d", len(got), len(x.vecs))
	}
}

// Spec: the same inserts in the same order build the same index, byte for
// byte (no randomness, no clock: the simulator replays it).
func TestIndexIsDeterministic(t *testing.T) {
	build := func() []schema.Entry {
		x := newIndex(t)
		gen := newClustered(9, 20, 16)
		x.fill(3*vecindex.MaxListVectors, gen.next)
		return x.entries()
	}
	a, b := build(), build()
	if !slices.EqualFunc(a, b, func(x, y schema.Entry) bool {
		return string(x.Key) == string(y.Key) && string(x.Value) == string(y.Value)
	}) {
		t.Fatal("two builds from the same inserts differ")
	}
}
