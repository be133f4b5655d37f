package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Spec: kelpie load against an in-process server seeds the agents asked
// for, runs every operation of the mix without errors (turns answered by
// the built-in model double), shows progress on stderr and reports each
// operation's count and latency quantiles, as JSON with --json.
func TestLoadInProcess(t *testing.T) {
	// kelpie load points the in-process server at its double through the
	// environment; restore it after.
	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_API_KEY", "")
	var out, errOut bytes.Buffer
	args := []string{"load", "--json", "--clients", "4", "--duration", "1500ms", "--agents", "10", "--data-dir", t.TempDir(),
		"--mix", "create=1,edit=1,get=1,list=1,count=1,count-tag=1,turn=1"}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("kelpie load exited %d: %s", code, errOut.String())
	}
	var rep loadReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out.String())
	}
	if rep.Seeded != 10 || rep.Clients != 4 || rep.Seconds < 1.5 || rep.PerSecond <= 0 {
		t.Errorf("report: %+v", rep)
	}
	seen := map[string]bool{}
	for _, o := range rep.Ops {
		seen[o.Op] = true
		if o.Count == 0 || len(o.Errors) > 0 {
			t.Errorf("%s: %d ok, errors %v", o.Op, o.Count, o.Errors)
		}
		if !(o.P50ms > 0 && o.P50ms <= o.P99ms && o.P99ms <= o.P999ms && o.P999ms <= o.MaxMs) {
			t.Errorf("%s: quantiles out of order: %+v", o.Op, o)
		}
	}
	for _, op := range loadOps {
		if !seen[op] {
			t.Errorf("no %s in the report", op)
		}
	}
	if !strings.Contains(errOut.String(), "seeded 10 agents") || !strings.Contains(errOut.String(), " ok ") {
		t.Errorf("no progress on stderr:\n%s", errOut.String())
	}
	out.Reset()
	if code := run([]string{"load", "--mix", "create=1,fly=2"}, &out, &errOut); code != 2 {
		t.Errorf("an unknown operation in --mix exited %d, want 2", code)
	}
}

// Spec: the latency histogram's quantiles are within its 2% buckets.
func TestLoadHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.99: 990 * time.Millisecond, 0.999: 999 * time.Millisecond} {
		got := h.quantile(q)
		if got < want || float64(got) > float64(want)*1.021 {
			t.Errorf("quantile %v = %v, want %v within 2%%", q, got, want)
		}
	}
	if h.quantile(1) != time.Second || h.max != time.Second {
		t.Errorf("max = %v, quantile(1) = %v; want 1s", h.max, h.quantile(1))
	}
}
