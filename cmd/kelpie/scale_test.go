package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

// BenchmarkAgentsAtScale measures a kelpie process (the real binary, on
// Pebble, over loopback HTTP) holding many agents: how fast they are
// created, what counts and filtered listings cost, the process's memory
// once they exist, once their actors are evicted, and after a restart, and
// how long the restart takes. The setup and memory figures are logged; each
// query is a sub-benchmark (ns/op is one request's latency).
//
//	KELPIE_SCALE_AGENTS  how many agents (default 10000)
//	KELPIE_SCALE_BIN     a kelpie binary to measure (default: built from this tree)
//	KELPIE_SCALE_ARGS    extra serve flags, space-separated (such as --memory-limit 512MiB)
//
// Every agent has the tag "all", one of 100 tags t0..t99 (1% of agents
// each) and one of 1000 tags u0..u999 (0.1%), and a unique name.
func BenchmarkAgentsAtScale(b *testing.B) {
	n := 10_000
	if v := os.Getenv("KELPIE_SCALE_AGENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			b.Fatalf("KELPIE_SCALE_AGENTS=%q: want a number of agents, at least 1000", v)
		}
	}
	bin := os.Getenv("KELPIE_SCALE_BIN")
	if bin == "" {
		bin = kelpietest.Build(b)
	}
	const idle = 10 * time.Second
	args := append([]string{"--data-dir", b.TempDir(), "--idle-timeout", idle.String()}, strings.Fields(os.Getenv("KELPIE_SCALE_ARGS"))...)
	srv := kelpietest.Start(b, bin, nil, args...)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				body := fmt.Sprintf(`{"name":"agent-%d","model":"openai/gpt-4o-mini","tags":["all","t%d","u%d"],"memory_blocks":[{"label":"human","value":"Name: %d"}]}`, i, i%100, i%1000, i)
				if status, out := scaleDo(client, "POST", srv.URL+"/v1/agents/", body); status != 200 {
					b.Errorf("create agent %d: %d %s", i, status, out)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	created := time.Since(start)
	b.Logf("%d agents created in %v (%.0f creates/s, 64 clients); RSS %s", n, created.Round(time.Millisecond), float64(n)/created.Seconds(), rss(b, srv))
	time.Sleep(3 * time.Second) // the counts' deltas are folded every second

	queries := []struct {
		name, path string
		want       int // items (or the count) the query returns
	}{
		{"count", "/v1/agents/count", n},
		{"page", "/v1/agents?limit=50", 50},
		{"tag-1%", "/v1/agents?tags=t7&limit=50", 50},
		{"tag-0.1%", "/v1/agents?tags=u7&limit=50", n / 1000},
		{"tags-any", "/v1/agents?tags=u7&tags=u8&limit=50", 2 * n / 1000},
		{"tags-all", "/v1/agents?tags=t7&tags=u107&match_all_tags=true&limit=50", n / 1000},
		{"name", "/v1/agents?name=agent-" + strconv.Itoa(n/2), 1},
		{"count-tag-1%", "/v1/agents/count?tags=t7", n / 100},
		{"query-text", "/v1/agents?query_text=agent-" + strconv.Itoa(n/2) + "&limit=50", 1},
	}
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				status, out := scaleDo(client, "GET", srv.URL+q.path, "")
				if status != 200 {
					b.Fatalf("GET %s: %d %s", q.path, status, out)
				}
				if got := scaleItems(out); got != min(q.want, 50) && !strings.Contains(q.path, "count") || strings.Contains(q.path, "count") && got != q.want {
					b.Fatalf("GET %s: %d items or count; want %d", q.path, got, q.want)
				}
			}
		})
	}

	time.Sleep(idle + 3*memoryCheckInterval) // eviction, then a memory release (memory.go)
	b.Logf("after idle eviction (%v): RSS %s", idle, rss(b, srv))
	if err := srv.Stop(b); err != nil {
		b.Fatalf("stop: %v", err)
	}
	start = time.Now()
	srv = kelpietest.Start(b, bin, nil, args...)
	b.Logf("restart to healthy: %v; RSS %s", time.Since(start).Round(time.Millisecond), rss(b, srv))
	if status, out := scaleDo(client, "GET", srv.URL+"/v1/agents/count", ""); status != 200 || scaleItems(out) != n {
		b.Fatalf("count after restart: %d %s", status, out)
	}
	b.Logf("after restart and a count: RSS %s", rss(b, srv))
	if err := srv.Stop(b); err != nil {
		b.Fatalf("stop: %v", err)
	}
}

func scaleDo(client *http.Client, method, url, body string) (int, []byte) {
	req, err := http.NewRequest(method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, []byte(err.Error())
	}
	return resp.StatusCode, out
}

// scaleItems is the length of a JSON array, or a JSON number.
func scaleItems(body []byte) int {
	var items []json.RawMessage
	if json.Unmarshal(body, &items) == nil {
		return len(items)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(body)))
	if err != nil {
		return -1
	}
	return n
}

// rss is the resident memory of the server process, from /proc.
func rss(b *testing.B, srv *kelpietest.Server) string {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.Cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
