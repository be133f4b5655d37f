package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// BenchmarkForwardedEdit measures what forwarding adds to a request: block
// edits of one agent sent, one at a time, to the node that owns it
// (direct) and to another node, which forwards them (forwarded); two
// 'kelpie serve' on one Postgres. It reports each path's p50 and p99.
//
//	go test ./cmd/kelpie -run '^$' -bench BenchmarkForwardedEdit -benchtime 500x
func BenchmarkForwardedEdit(b *testing.B) {
	db := pgtest.NewServer(b)
	pgURL, err := db.CreateDatabase("kelpie")
	if err != nil {
		b.Fatal(err)
	}
	secret := filepath.Join(b.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("a benchmark's cluster secret"), 0o600); err != nil {
		b.Fatal(err)
	}
	urls := startNodes(b, kelpietest.Build(b), pgURL, secret, 2, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	var a agentJSON
	if _, err := call(client, "POST", urls[0]+"/v1/agents", map[string]any{
		"name": "bench", "memory_blocks": []map[string]any{{"label": "human", "value": "x"}},
	}, &a); err != nil {
		b.Fatal(err)
	}
	for _, path := range []struct {
		name string
		base string
	}{{"direct", urls[0]}, {"forwarded", urls[1]}} {
		b.Run(path.name, func(b *testing.B) {
			ds := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if _, err := call(client, "PATCH", path.base+"/v1/agents/"+a.ID+"/core-memory/blocks/human",
					map[string]any{"value": fmt.Sprintf("v%d", i)}, nil); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			slices.Sort(ds)
			b.ReportMetric(percentile(ds, 50), "p50-ms")
			b.ReportMetric(percentile(ds, 99), "p99-ms")
		})
	}
}

// startNodes starts n 'kelpie serve' nodes of a cluster on the database at
// pgURL and returns their base URLs; n = 0 starts one server alone (no
// cluster flags).
func startNodes(b *testing.B, bin, pgURL, secret string, n int, env []string) []string {
	var urls []string
	for i := range max(n, 1) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		args := []string{"--addr", addr, "--storage", "postgres", "--default-model", "openai/gpt-4o-mini"}
		if n > 0 {
			args = append(args, "--node-id", fmt.Sprintf("n%d", i+1), "--advertise-addr", addr, "--cluster-secret-file", secret)
		}
		kelpietest.Start(b, bin, append(env, "KELPIE_POSTGRES_URL="+pgURL), args...)
		urls = append(urls, "http://"+addr)
	}
	return urls
}

// clusterBenchClients is how many clients BenchmarkClusterThroughput runs.
const clusterBenchClients = 16

// BenchmarkClusterThroughput measures creates/s and turns/s of 1, 2 and 3
// nodes on one Postgres (all on this machine, sharing its CPUs and disk),
// and of one server alone on it (nodes=0: no claims, no routing),
// with clusterBenchClients clients sending each request to a random node:
// with several nodes most turns are forwarded to their agent's owner.
// Turns are answered by the model double at once.
//
//	go test ./cmd/kelpie -run '^$' -bench BenchmarkClusterThroughput -benchtime 400x
func BenchmarkClusterThroughput(b *testing.B) {
	db := pgtest.NewServer(b)
	secret := filepath.Join(b.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("a benchmark's cluster secret"), 0o600); err != nil {
		b.Fatal(err)
	}
	double := llmtest.NewServer(b)
	double.SetDefault(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "noted"} })
	env := []string{"OPENAI_BASE_URL=" + double.OpenAIBaseURL(), "OPENAI_API_KEY=sk-llmtest"}
	bin := kelpietest.Build(b)
	for nodes := 0; nodes <= 3; nodes++ {
		pgURL, err := db.CreateDatabase(fmt.Sprintf("kelpie_%d", nodes))
		if err != nil {
			b.Fatal(err)
		}
		urls := startNodes(b, bin, pgURL, secret, nodes, env)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clusterBenchClients}}
		var agents []string
		b.Run(fmt.Sprintf("nodes=%d/op=create", nodes), func(b *testing.B) {
			agents = clusterBenchRun(b, client, urls, func(base string, _ int) (string, error) {
				var a agentJSON
				_, err := call(client, "POST", base+"/v1/agents", map[string]any{"name": "bench"}, &a)
				return a.ID, err
			})
		})
		b.Run(fmt.Sprintf("nodes=%d/op=turn", nodes), func(b *testing.B) {
			clusterBenchRun(b, client, urls, func(base string, i int) (string, error) {
				_, err := call(client, "POST", base+"/v1/agents/"+agents[i%len(agents)]+"/messages",
					map[string]any{"messages": []map[string]any{{"role": "user", "content": "hi"}}}, nil)
				return "", err
			})
		})
	}
}

// clusterBenchRun runs b.N calls of op from clusterBenchClients clients,
// each to a random node, reports them per second and returns what they
// returned.
func clusterBenchRun(b *testing.B, client *http.Client, urls []string, op func(base string, i int) (string, error)) []string {
	var (
		next atomic.Int64
		mu   sync.Mutex
		out  []string
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for c := range clusterBenchClients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 1))
			for i := int(next.Add(1)); i <= b.N; i = int(next.Add(1)) {
				got, err := op(urls[r.IntN(len(urls))], i)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				out = append(out, got)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	return out
}
