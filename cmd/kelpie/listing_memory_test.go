package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

// BenchmarkListingPeakMemory measures what one listing of agents costs the
// server at most: the real binary (KELPIE_SCALE_BIN, or built from this
// tree) holds 200 agents sharing one block of the largest value allowed
// (1,000,000 characters), and each iteration lists them
// (GET /v1/agents?limit=200, blocks included as Letta's legacy shape has
// them: under memory.blocks and blocks). Reported: the rise of the
// process's peak resident memory during the request over its resident
// memory before it (the peak is reset first, /proc/PID/clear_refs, after
// the idle server returned its free memory to the OS), the peak itself, the
// answer's size and its number of agents (the listing stops at
// agent.MaxResponseBytes and the client pages on).
func BenchmarkListingPeakMemory(b *testing.B) {
	bin := os.Getenv("KELPIE_SCALE_BIN")
	if bin == "" {
		bin = kelpietest.Build(b)
	}
	srv := kelpietest.Start(b, bin, nil, "--data-dir", b.TempDir())
	defer srv.Stop(b)
	client := &http.Client{}
	const agents, chars = 200, 1_000_000
	value := strings.Repeat("A line of memory, with \"quotes\" & <tags>.\n", chars/42+1)[:chars]
	body, _ := json.Marshal(map[string]any{"label": "shared", "value": value, "limit": chars})
	status, out := scaleDo(client, "POST", srv.URL+"/v1/blocks", string(body))
	if status != 200 {
		b.Fatalf("create block: %d %s", status, out)
	}
	var block struct{ ID string }
	if err := json.Unmarshal(out, &block); err != nil {
		b.Fatal(err)
	}
	for i := range agents {
		body := fmt.Sprintf(`{"name":"agent-%d","model":"openai/gpt-4o-mini","block_ids":[%q]}`, i, block.ID)
		if status, out := scaleDo(client, "POST", srv.URL+"/v1/agents", body); status != 200 {
			b.Fatalf("create agent %d: %d %s", i, status, out)
		}
	}
	pid := srv.Cmd.Process.Pid
	var rise, peak, size, items int
	for b.Loop() {
		// The server returns its free memory to the OS once requests stop
		// (memory.go): the request starts from a settled process.
		b.StopTimer()
		time.Sleep(2 * memoryCheckInterval)
		b.StartTimer()
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			b.Fatalf("reset the peak RSS: %v", err)
		}
		before := procKB(b, pid, "VmRSS:")
		status, out := scaleDo(client, "GET", srv.URL+"/v1/agents?limit=200", "")
		if status != 200 {
			b.Fatalf("list: %d %s", status, clip(string(out), 200))
		}
		hwm := procKB(b, pid, "VmHWM:")
		rise, peak = max(rise, hwm-before), max(peak, hwm)
		size, items = len(out), scaleItems(out)
	}
	b.ReportMetric(float64(rise)/1024, "rise-MiB")
	b.ReportMetric(float64(peak)/1024, "peak-MiB")
	b.ReportMetric(float64(size)/(1<<20), "answer-MiB")
	b.ReportMetric(float64(items), "agents")
}

// procKB reads a field of /proc/PID/status, in kB.
func procKB(b *testing.B, pid int, field string) int {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				b.Fatalf("%s %q: %v", field, v, err)
			}
			return n
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
