package memory

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/kv"
)

// BenchmarkArchivalSearch measures a hybrid archival search (a query
// vector of 1536 dimensions, fused with word matches) over one agent's N
// passages in the in-memory store: p50 and p99 latency over 40 queries and
// recall@10 of the search against a brute-force exact top 10 computed
// apart; by the index (search=index) and by every vector (search=exact,
// as before the index). N is 10k and 100k (KELPIE_BENCH_PASSAGES=10000,100000 to
// choose). Two kinds of data: "clustered" (passages and queries near one
// of N/50 topics, as texts on shared subjects are: the vector index's
// case) and "random" (uniform on the sphere, every vector about as far
// from the query as any other: the index's worst case).
//
//	go test ./agent/memory -run '^$' -bench BenchmarkArchivalSearch -benchtime 1x
func BenchmarkArchivalSearch(b *testing.B) {
	for _, data := range []string{"clustered", "random"} {
		for _, n := range benchSizes(b) {
			gen := newBenchData(data, n, 1536)
			var db kv.Store
			var vecs [][]float32
			for _, exact := range []bool{true, false} {
				name := fmt.Sprintf("data=%s/passages=%d/search=index", data, n)
				if exact {
					name = fmt.Sprintf("data=%s/passages=%d/search=exact", data, n)
				}
				b.Run(name, func(b *testing.B) {
					if db == nil {
						db, vecs = benchArchive(b, n, gen)
					}
					benchQueries(b, db, vecs, gen, exact)
				})
			}
		}
	}
}

// benchQueries runs 40 searches of random queries and reports their
// latency, the process's CPU time per query and recall@10.
func benchQueries(b *testing.B, db kv.Store, vecs [][]float32, gen *benchData, exact bool) {
	const queries, k = 40, 10
	var lat []time.Duration
	found, wanted := 0, 0
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		lat = lat[:0]
		for range queries {
			q := gen.query()
			want := exactTop(vecs, q, k)
			runtime.GC() // so that a query pays for its own garbage only
			start, startCPU := time.Now(), processCPU(b)
			hits := benchSearch(b, db, q, k, exact)
			lat = append(lat, time.Since(start))
			cpu += processCPU(b) - startCPU
			for _, h := range hits {
				i, _ := strconv.Atoi(h.Passage.ID[1:])
				if slices.Contains(want, i) {
					found++
				}
			}
			wanted += k
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)*b.N), "cpu-ms/query")
	b.ReportMetric(float64(found)/float64(wanted), "recall@10")
	b.ReportMetric(0, "ns/op")
}

// processCPU is the CPU time the process has used: on a shared machine
// it measures a search's work where wall-clock latency also measures the
// other processes' load.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchData makes the vectors of a benchmark: uniform on the sphere, or
// near one of n/benchTopicSize random topics.
type benchData struct {
	rng    *rand.Rand
	dim    int
	topics [][]float32 // nil: uniform
}

// benchTopicSize is how many passages a topic of clustered data has on
// average; benchSpread is how far a vector lies from its topic (cosine
// about 1/sqrt(1+spread²): 0.64, and 0.41 between two of one topic).
const (
	benchTopicSize = 50
	benchSpread    = 1.2
)

func newBenchData(kind string, n, dim int) *benchData {
	d := &benchData{rng: rand.New(rand.NewPCG(1, 1)), dim: dim}
	if kind == "clustered" {
		for range max(1, n/benchTopicSize) {
			d.topics = append(d.topics, randomUnit(d.rng, dim))
		}
	}
	return d
}

// vector is a passage's vector; query a query's (drawn the same way).
func (d *benchData) vector() []float32 {
	v := randomUnit(d.rng, d.dim)
	if d.topics == nil {
		return v
	}
	t := d.topics[d.rng.IntN(len(d.topics))]
	for i := range v {
		v[i] = t[i] + benchSpread*v[i]
	}
	return embedding.Normalize(v)
}

func (d *benchData) query() []float32 { return d.vector() }

// BenchmarkArchivalInsert measures inserting passages with 1536-dimension
// vectors, one committed transaction each, into the in-memory store (the
// embedding call, made before the transaction, is not included).
//
//	go test ./agent/memory -run '^$' -bench BenchmarkArchivalInsert -benchtime 5000x
func BenchmarkArchivalInsert(b *testing.B) {
	db := kv.NewMemDB()
	rng := rand.New(rand.NewPCG(3, 3))
	vecs := make([][]float32, 256)
	for i := range vecs {
		vecs[i] = randomUnit(rng, 1536)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		tx, err := db.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := InsertPassage(tx, "agent-1", fmt.Sprintf("p%d", i), benchText(i), nil, &Embedded{Handle: "openai/text-embedding-3-small", Vector: vecs[i%len(vecs)]}, time.Unix(int64(i), 0)); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}

func benchSizes(b *testing.B) []int {
	s := os.Getenv("KELPIE_BENCH_PASSAGES")
	if s == "" {
		return []int{10_000, 100_000}
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(f)
		if err != nil {
			b.Fatalf("KELPIE_BENCH_PASSAGES: %v", err)
		}
		out = append(out, n)
	}
	return out
}

// benchArchive stores n passages of gen's vectors, benchBatch per
// transaction, and returns the vectors by passage number.
func benchArchive(b *testing.B, n int, gen *benchData) (kv.Store, [][]float32) {
	vecs := make([][]float32, n)
	db := storeBatched(b, n, func(i int) (string, *Embedded) {
		vecs[i] = gen.vector()
		return benchText(i), &Embedded{Handle: "openai/text-embedding-3-small", Vector: vecs[i]}
	})
	return db, vecs
}

// storeBatched stores n passages p<i> of agent-1 in a new in-memory store,
// benchBatch per transaction, each with the text and embedding of
// passage(i).
func storeBatched(b *testing.B, n int, passage func(i int) (string, *Embedded)) kv.Store {
	db := kv.NewMemDB()
	ctx := context.Background()
	for start := 0; start < n; start += benchBatch {
		tx, err := db.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for i := start; i < min(n, start+benchBatch); i++ {
			text, emb := passage(i)
			if _, err := InsertPassage(tx, "agent-1", fmt.Sprintf("p%d", i), text, nil, emb, time.Unix(int64(i), 0)); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// benchBatch is how many passages one transaction of benchArchive stores
// (a transaction's scans walk its own writes, so a large one is slow).
const benchBatch = 100

func benchText(i int) string {
	return fmt.Sprintf("note %d about topic %d, written for the benchmark", i, i%97)
}

func benchSearch(b *testing.B, db kv.Store, q []float32, k int, exact bool) []Ranked {
	tx, err := db.Begin(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Discard()
	hits, _, err := RankPassages(tx, []string{"agent-1"}, ArchivalQuery{Query: "zzz-no-word-matches", TopK: k,
		Embedded: &Embedded{Handle: "openai/text-embedding-3-small", Vector: q}, Exact: exact})
	if err != nil {
		b.Fatal(err)
	}
	return hits
}

// exactTop is the brute-force top k of vecs by cosine similarity to q.
func exactTop(vecs [][]float32, q []float32, k int) []int {
	idx := make([]int, len(vecs))
	score := make([]float32, len(vecs))
	for i := range idx {
		idx[i], score[i] = i, embedding.Dot(q, vecs[i])
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(score[b], score[a]) })
	return idx[:k]
}

func randomUnit(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return embedding.Normalize(v)
}
