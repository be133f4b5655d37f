package memory

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// BenchmarkLexicalSearch measures a search by words (no embedding) of one
// agent's N passages in the in-memory store: the process's CPU time per
// query, by the word index (owners=agent: RankPassages reads the query
// words' postings) and by a scan of every passage (owners=all, the path of
// a search of every owner and, before the word index, of every search).
// Each passage holds a unique word, one of 1000 subject words and 8 words
// drawn from a Zipf distribution over 5000; queries are rare (a unique
// word and a subject word: N/1000+1 passages), common (two Zipf words:
// a large share of passages) or absent (no passage). N is 10k and 100k
// (KELPIE_BENCH_PASSAGES to choose).
//
//	go test ./agent/memory -run '^$' -bench BenchmarkLexicalSearch -benchtime 1x
func BenchmarkLexicalSearch(b *testing.B) {
	for _, n := range benchSizes(b) {
		var db kv.Store
		for _, owners := range []string{"agent", "all"} {
			for _, kind := range []string{"rare", "common", "absent"} {
				b.Run(fmt.Sprintf("passages=%d/owners=%s/query=%s", n, owners, kind), func(b *testing.B) {
					if db == nil {
						db = lexicalArchive(b, n)
					}
					var searched []string
					if owners == "agent" {
						searched = []string{"agent-1"}
					}
					lexicalQueries(b, db, n, searched, kind)
				})
			}
		}
	}
}

// lexicalQueries runs 40 searches of kind and reports the CPU time per
// query and the mean number of hits.
func lexicalQueries(b *testing.B, db kv.Store, n int, owners []string, kind string) {
	const queries = 40
	rng := rand.New(rand.NewPCG(5, 5))
	zipf := rand.NewZipf(rng, 1.1, 1, 4999)
	var cpu time.Duration
	hits := 0
	b.ResetTimer()
	for range b.N {
		for range queries {
			var q string
			switch kind {
			case "rare":
				i := rng.IntN(n)
				q = fmt.Sprintf("e%d s%d", i, i%1000)
			case "common":
				q = fmt.Sprintf("v%d v%d", zipf.Uint64(), zipf.Uint64())
			default:
				q = "zzz-no-word-matches"
			}
			runtime.GC() // so that a query pays for its own garbage only
			start := processCPU(b)
			tx, err := db.Begin(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			got, _, err := RankPassages(tx, owners, ArchivalQuery{Query: q, TopK: 10})
			tx.Discard()
			if err != nil {
				b.Fatal(err)
			}
			cpu += processCPU(b) - start
			hits += len(got)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(queries*b.N), "cpu-ms/query")
	b.ReportMetric(float64(hits)/float64(queries*b.N), "hits/query")
	b.ReportMetric(0, "ns/op")
}

// lexicalArchive stores n passages of words (no embedding) for agent-1.
func lexicalArchive(b *testing.B, n int) kv.Store {
	rng := rand.New(rand.NewPCG(4, 4))
	zipf := rand.NewZipf(rng, 1.1, 1, 4999)
	return storeBatched(b, n, func(i int) (string, *Embedded) {
		words := []string{fmt.Sprintf("entry e%d on subject s%d:", i, i%1000)}
		for range 8 {
			words = append(words, fmt.Sprintf("v%d", zipf.Uint64()))
		}
		return strings.Join(words, " "), nil
	})
}
