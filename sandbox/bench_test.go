package sandbox_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/sandbox"
)

// BenchmarkTrivialTool measures a call's overhead, from Run to its
// result, for a tool that only adds two numbers: starting bubblewrap and
// Python dominates. It reports the median and 99th percentile.
//
//	go test ./sandbox/ -run '^$' -bench TrivialTool -benchtime 200x
func BenchmarkTrivialTool(b *testing.B) {
	s := newSandbox(b, sandbox.Config{})
	job := tool.Job{Source: "def add(a: int, b: int):\n    return a + b\n", Name: "add", Args: json.RawMessage(`{"a":1,"b":2}`)}
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if out := s.Run(context.Background(), job); !out.OK || out.Result != "3" {
			b.Fatalf("got %+v", out)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	pct := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
