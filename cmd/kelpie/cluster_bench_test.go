package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
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
	bin := kelpietest.Build(b)
	var urls []string
	for i := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		kelpietest.Start(b, bin, []string{"KELPIE_POSTGRES_URL=" + pgURL}, "--addr", addr, "--storage", "postgres",
			"--node-id", fmt.Sprintf("n%d", i+1), "--advertise-addr", addr, "--cluster-secret-file", secret)
		urls = append(urls, "http://"+addr)
	}
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
