package sim

import (
	"sort"
	"sync"
	"time"
)

// Run runs one simulation: it starts the service over a simulated disk,
// lets cfg.Clients clients issue cfg.Ops operations in all while faults are
// injected, then checks the recorded history. A violation found during the
// run stops it early.
func Run(cfg Config) Result {
	r, _, _ := run(cfg)
	return r
}

// run is Run, also returning the system and what the clients learnt, for
// tests that look inside.
func run(cfg Config) (Result, *system, *world) {
	cfg = cfg.withDefaults()
	s := newSystem(cfg)
	base := s.clock.base
	started := base.Now()
	s.rec.event("run seed=%d faults=%s clients=%d ops=%d", cfg.Seed, cfg.Faults, cfg.Clients, cfg.Ops)

	s.mu.Lock()
	inc, err := s.start()
	s.cur = inc
	s.mu.Unlock()
	if err != nil {
		s.violation("liveness", "", "the service did not start: %v", err)
		return s.result(nil, base.Now().Sub(started)), s, nil
	}

	w := newWorld(s)
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		n := cfg.Ops / cfg.Clients
		if i < cfg.Ops%cfg.Clients {
			n++
		}
		c := &client{n: i, sys: s, w: w, rng: newRand(cfg.Seed, streamClient+uint64(i)), ops: n}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run()
		}()
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-base.After(cfg.RunTimeout):
		s.violation("liveness", "", "the clients did not finish within %s: an operation is stuck", cfg.RunTimeout)
		// Crash the process: that ends every call in flight.
		s.crash(s.current(), "liveness")
		select {
		case <-finished:
		case <-base.After(cfg.RunTimeout):
			return s.result(nil, base.Now().Sub(started)), s, w
		}
	}

	// A clean shutdown of the last incarnation; wait for the crashed ones
	// to let go too, so that nothing of this run outlives it.
	s.mu.Lock()
	s.closing = true
	last := s.cur
	all := append([]*incarnation(nil), s.all...)
	s.mu.Unlock()
	last.shutdown(cfg.OpTimeout)
	last.end()
	for _, inc := range all {
		if inc != last {
			<-inc.stopped
			inc.shutdown(cfg.OpTimeout)
		}
	}
	rep := s.checkInvariants("at the end of the run")
	s.final = s.runAudit(w)
	s.checkFamiliesSeen(rep, s.final)
	return s.result(w, base.Now().Sub(started)), s, w
}

// result runs the history checkers and sums the run up.
func (s *system) result(w *world, elapsed time.Duration) Result {
	var violations []Violation
	if w != nil {
		s.vmu.Lock()
		online := s.online
		s.vmu.Unlock()
		s.online = online
		violations = s.check(w)
	} else {
		for _, v := range s.online {
			violations = append(violations, Violation{Checker: v.checker, Message: v.msg})
		}
	}
	for _, v := range violations {
		s.rec.event("violation %s: %s", v.Checker, v.Message)
	}
	s.rec.mu.Lock()
	ops := len(s.rec.ops)
	s.rec.mu.Unlock()
	return Result{
		Seed:       s.cfg.Seed,
		Profile:    s.cfg.Faults.String(),
		Trace:      s.rec.trace(),
		Ops:        ops,
		Faults:     s.inj.snapshotCounts(),
		Violations: violations,
		SimTime:    elapsed,
		Checked:    s.checked,
	}
}

// Sweep runs cfg once per seed, parallel runs at a time (at least one),
// calling progress (if not nil) after each run, one call at a time.
func Sweep(cfg Config, seeds []uint64, parallel int, progress func(Result)) Summary {
	parallel = max(1, parallel)
	sum := Summary{Faults: map[string]int{}, Checked: map[string]int{}}
	var mu sync.Mutex
	next := make(chan uint64)
	var wg sync.WaitGroup
	for range min(parallel, max(1, len(seeds))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range next {
				c := cfg
				c.Seed = seed
				r := Run(c)
				mu.Lock()
				sum.Seeds++
				sum.Ops += r.Ops
				for k, v := range r.Faults {
					sum.Faults[k] += v
				}
				sum.Violations += len(r.Violations)
				for k, v := range r.Checked {
					sum.Checked[k] += v
				}
				sum.SimTime += r.SimTime
				if len(r.Violations) > 0 {
					sum.Failed = append(sum.Failed, r)
				}
				if progress != nil {
					progress(r)
				}
				mu.Unlock()
			}
		}()
	}
	for _, seed := range seeds {
		next <- seed
	}
	close(next)
	wg.Wait()
	sort.Slice(sum.Failed, func(i, j int) bool { return sum.Failed[i].Seed < sum.Failed[j].Seed })
	return sum
}

// Seeds returns n consecutive seeds from first.
func Seeds(first uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}
