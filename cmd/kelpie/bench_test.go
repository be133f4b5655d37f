package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkHTTPCreateAgent measures durable agent creates through the HTTP
// API on the Pebble engine (every create is one synced commit) at several
// client counts. Compare with BenchmarkPebbleSyncedCommit in kv/pebble, the
// raw synced-commit rate of the same disk.
func BenchmarkHTTPCreateAgent(b *testing.B) {
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			ready := make(chan string, 1)
			done := make(chan error, 1)
			cfg := serveConfig{addr: "127.0.0.1:0", storage: "pebble", dataDir: b.TempDir(),
				idleTimeout: time.Minute, maxActivations: 100_000}
			go func() { done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
			base := "http://" + <-ready
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			body := []byte(`{"name":"bench","model":"openai/gpt-4o-mini","memory_blocks":[{"label":"human","value":"Name: Ada"},{"label":"persona","value":"helpful"}]}`)

			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range clients {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						resp, err := client.Post(base+"/v1/agents/", "application/json", bytes.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 {
							b.Errorf("create: %d", resp.StatusCode)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "creates/s")
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
