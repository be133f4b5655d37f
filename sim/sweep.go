package sim

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Summary adds up a sweep.
type Summary struct {
	Seeds      int // runs counted
	Ops        int
	Faults     map[string]int
	Violations int
	SimTime    time.Duration
	// Wall is the wall time of the runs, added up.
	Wall    time.Duration
	Checked map[string]int
	// Failed are the runs that failed (Result.Failed), in the order added.
	Failed []Result
}

// NewSummary returns an empty summary.
func NewSummary() *Summary {
	return &Summary{Faults: map[string]int{}, Checked: map[string]int{}}
}

// Add counts r.
func (s *Summary) Add(r Result) {
	s.Seeds++
	s.Ops += r.Ops
	s.Violations += len(r.Violations)
	s.SimTime += r.SimTime
	s.Wall += r.Wall
	for k, n := range r.Faults {
		s.Faults[k] += n
	}
	for k, n := range r.Checked {
		s.Checked[k] += n
	}
	if r.Failed() {
		s.Failed = append(s.Failed, r)
	}
}

// Sweep runs the seeds, parallel at a time (at least one), and adds up
// their results. It calls report (if not nil) with each result in seed
// order, as soon as every earlier seed has been reported, one call at a
// time. Once ctx ends no seed starts, and a run it cut short (one that
// returns with Error set after ctx ended) is neither reported nor counted.
func Sweep(ctx context.Context, seeds []uint64, parallel int, run func(context.Context, uint64) Result, report func(Result)) Summary {
	src := &seedSource{at: func(i int) uint64 { return seeds[i] }, count: len(seeds)}
	return sweep(ctx, src, max(1, min(parallel, len(seeds))), run, report)
}

// Hunt is a sweep of consecutive seeds that may have no set length: it
// ends after Count seeds, once Budget has passed, or at the first failure,
// whichever comes first. A hunt for a rare failure runs until one turns
// up, or for as long as one can wait, and its summary gives the rate.
type Hunt struct {
	First uint64
	// Count is how many seeds to run at most; 0 means no bound.
	Count int
	// Budget is the wall time after which no seed starts (those running
	// finish and count); 0 means no bound.
	Budget time.Duration
	// UntilFailure: once a seed has failed, no seed starts.
	UntilFailure bool
	// Parallel is how many seeds run at once (at least one).
	Parallel int
}

// Run runs the hunt as Sweep runs its seeds.
func (h Hunt) Run(ctx context.Context, run func(context.Context, uint64) Result, report func(Result)) Summary {
	src := &seedSource{at: func(i int) uint64 { return h.First + uint64(i) }, count: -1, untilFailure: h.UntilFailure}
	if h.Count > 0 {
		src.count = h.Count
	}
	if h.Budget > 0 {
		src.deadline = time.Now().Add(h.Budget)
	}
	parallel := max(1, h.Parallel)
	if h.Count > 0 {
		parallel = min(parallel, h.Count)
	}
	return sweep(ctx, src, parallel, run, report)
}

// seedSource hands out the seeds of a sweep, by index, until it is done.
type seedSource struct {
	at           func(i int) uint64
	count        int       // negative: no bound
	deadline     time.Time // zero: none
	untilFailure bool
	failed       atomic.Bool // a seed has failed
}

// more reports whether seed i is to run.
func (s *seedSource) more(i int) bool {
	switch {
	case s.count >= 0 && i >= s.count:
		return false
	case !s.deadline.IsZero() && !time.Now().Before(s.deadline):
		return false
	}
	return !(s.untilFailure && s.failed.Load())
}

func sweep(ctx context.Context, src *seedSource, parallel int, run func(context.Context, uint64) Result, report func(Result)) Summary {
	type indexed struct {
		i int
		r Result
	}
	// Workers take the next seed when they are free, so that a seed is
	// started only if the source still wants it then (not after a failure
	// that came while the worker was busy).
	var (
		mu   sync.Mutex
		upTo int // seeds handed out
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil || !src.more(upTo) {
			return 0, false
		}
		upTo++
		return upTo - 1, true
	}
	done := make(chan indexed)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for i, ok := take(); ok; i, ok = take() {
				start := time.Now()
				seed := src.at(i)
				r := run(ctx, seed)
				r.Seed, r.Wall = seed, time.Since(start)
				if r.Failed() && (r.Error == "" || ctx.Err() == nil) {
					src.failed.Store(true)
				}
				done <- indexed{i, r}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	sum := NewSummary()
	// Results wait here until every earlier seed has been reported. After
	// ctx ends, a seed that never ran leaves a gap: the rest are reported
	// once all have come back.
	pending := map[int]Result{}
	want := 0
	emit := func(r Result) {
		if r.Error != "" && ctx.Err() != nil {
			return // cut short by ctx: not a result
		}
		sum.Add(r)
		if report != nil {
			report(r)
		}
	}
	for d := range done {
		pending[d.i] = d.r
		for ; ; want++ {
			r, ok := pending[want]
			if !ok {
				break
			}
			delete(pending, want)
			emit(r)
		}
	}
	for _, i := range slices.Sorted(maps.Keys(pending)) {
		emit(pending[i])
	}
	return *sum
}

// Runner returns a run function for Sweep that runs cfg, with each seed, in
// this process.
func Runner(cfg Config) func(context.Context, uint64) Result {
	return func(_ context.Context, seed uint64) Result {
		c := cfg
		c.Seed = seed
		return Run(c)
	}
}

// Hung is the result of a run of seed that had not finished after limit of
// wall time: a liveness violation. (A run that is stuck without sleeping
// never reaches the simulated clock's RunTimeout: under wasm the clock
// moves only when the program sleeps.)
func Hung(seed uint64, profile string, limit time.Duration) Result {
	return Result{Seed: seed, Profile: profile, Violations: []Violation{{Checker: "liveness",
		Message: fmt.Sprintf("the run had not finished after %s of wall time: it is stuck (replay the seed to see where)", limit)}}}
}

// Seeds returns n consecutive seeds from first.
func Seeds(first uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}
