package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"text/tabwriter"
	"time"
)

// A latency histogram with buckets growing by histGrowth from histMin:
// quantiles within 2%, in constant memory however long the run.
const (
	histMin     = time.Microsecond
	histGrowth  = 1.02
	histBuckets = 1100 // 1µs * 1.02^1100 ≈ 50 minutes
)

type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

func (h *histogram) add(d time.Duration) {
	i := 0
	if d > histMin {
		i = min(int(math.Log(float64(d)/float64(histMin))/math.Log(histGrowth))+1, histBuckets-1)
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
}

// quantile returns the upper bound of the bucket holding quantile q.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(time.Duration(float64(histMin)*math.Pow(histGrowth, float64(i))), h.max)
		}
	}
	return h.max
}

// opStats are one operation's figures.
type opStats struct {
	hist   histogram // of successful calls
	errors map[string]int
}

// loadStats collects every client's calls.
type loadStats struct {
	mu  sync.Mutex
	ops map[string]*opStats
}

func newLoadStats() *loadStats { return &loadStats{ops: map[string]*opStats{}} }

func (s *loadStats) record(op string, d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.ops[op]
	if st == nil {
		st = &opStats{errors: map[string]int{}}
		s.ops[op] = st
	}
	if err != nil {
		st.errors[errorClass(err)]++
		return
	}
	st.hist.add(d)
}

// totals returns the successful and failed calls so far.
func (s *loadStats) totals() (ok, failed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.ops {
		ok += st.hist.n
		for _, n := range st.errors {
			failed += uint64(n)
		}
	}
	return ok, failed
}

// opReport is one operation's line of the report.
type opReport struct {
	Op        string         `json:"op"`
	Count     uint64         `json:"count"`
	Errors    map[string]int `json:"errors,omitempty"`
	PerSecond float64        `json:"per_second"`
	P50ms     float64        `json:"p50_ms"`
	P99ms     float64        `json:"p99_ms"`
	P999ms    float64        `json:"p999_ms"`
	MaxMs     float64        `json:"max_ms"`
}

// loadReport is what kelpie load prints at the end.
type loadReport struct {
	Target    string     `json:"target"`
	Clients   int        `json:"clients"`
	Seconds   float64    `json:"seconds"`
	Seeded    int        `json:"seeded_agents"`
	PerSecond float64    `json:"per_second"`
	Ops       []opReport `json:"ops"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *loadStats) report(target string, clients, seeded int, elapsed time.Duration) loadReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := loadReport{Target: target, Clients: clients, Seconds: elapsed.Seconds(), Seeded: seeded}
	var total uint64
	for _, op := range slices.Sorted(maps.Keys(s.ops)) {
		st := s.ops[op]
		h := &st.hist
		total += h.n
		r.Ops = append(r.Ops, opReport{Op: op, Count: h.n, Errors: st.errors, PerSecond: float64(h.n) / elapsed.Seconds(),
			P50ms: ms(h.quantile(0.5)), P99ms: ms(h.quantile(0.99)), P999ms: ms(h.quantile(0.999)), MaxMs: ms(h.max)})
	}
	r.PerSecond = float64(total) / elapsed.Seconds()
	return r
}

func (r loadReport) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(w, "%s: %d clients for %.1fs (%d agents seeded): %.0f ops/s\n", r.Target, r.Clients, r.Seconds, r.Seeded, r.PerSecond)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tok\terrors\tper s\tp50 ms\tp99 ms\tp999 ms\tmax ms\t")
	for _, o := range r.Ops {
		errs := 0
		for _, n := range o.Errors {
			errs += n
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", o.Op, o.Count, errs, o.PerSecond, o.P50ms, o.P99ms, o.P999ms, o.MaxMs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range r.Ops {
		for class, n := range o.Errors {
			fmt.Fprintf(w, "  %s errors: %d × %s\n", o.Op, n, class)
		}
	}
	return nil
}
