package sim

import (
	"fmt"
	"strings"
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
	if !s.runClients(w) {
		return s.result(nil, base.Now().Sub(started)), s, w
	}
	s.awaitSettled()
	s.stopAll()
	rep := s.checkInvariants("at the end of the run")
	s.final = s.runAudit(w)
	s.checkFamiliesSeen(rep, s.final)
	return s.result(w, base.Now().Sub(started)), s, w
}

// hangGrace bounds, in simulated time, how long clients that did not finish
// within the run timeout may take to return once their process is crashed.
const hangGrace = 10 * time.Second

// runClients runs the clients until they have issued every operation. It
// reports false if they did not finish: then the run ends with a liveness
// violation and without the audit.
func (s *system) runClients(w *world) bool {
	cfg := s.cfg
	clients := make([]*client, cfg.Clients)
	var wg sync.WaitGroup
	for i := range clients {
		n := cfg.Ops / cfg.Clients
		if i < cfg.Ops%cfg.Clients {
			n++
		}
		c := &client{n: i, sys: s, w: w, rng: newRand(cfg.Seed, streamClient+uint64(i)), ops: n}
		clients[i] = c
		wg.Go(c.run)
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		return true
	case <-s.clock.base.After(cfg.RunTimeout):
	}
	s.violation("liveness", "", "the clients did not finish within %s: %s", cfg.RunTimeout, inFlight(clients))
	// Crash the process: that ends every call in flight.
	s.crash(s.current(), "liveness")
	select {
	case <-finished:
		return true
	case <-s.clock.base.After(hangGrace):
		return false
	}
}

// inFlight says which clients are in the middle of which operation.
func inFlight(clients []*client) string {
	var parts []string
	for _, c := range clients {
		if op := c.busy.Load(); op != nil {
			parts = append(parts, fmt.Sprintf("client %d is in op #%d %s %s, called at %d", c.n, op.ID, op.Method, op.Path, op.Call))
		}
	}
	if len(parts) == 0 {
		return "no operation is in flight"
	}
	return strings.Join(parts, "; ")
}

// settlePoll is how often, in simulated time, awaitSettled asks the
// services what they hold.
const settlePoll = time.Millisecond

// awaitSettled waits, up to the settle timeout of simulated time, until the
// services of the current incarnation have no turn running, no turn lock
// held and no request waiting for one: every turn the clients started has
// ended. (A client that gave up on a send leaves its turn running.)
func (s *system) awaitSettled() {
	deadline := s.clock.base.After(s.cfg.SettleTimeout)
	for {
		held := s.current().held()
		if held == "" {
			return
		}
		select {
		case <-deadline:
			s.violation("liveness", "", "%s, %s after the clients had finished: a turn, turn lock or wait was left behind", held, s.cfg.SettleTimeout)
			return
		case <-s.clock.base.After(settlePoll):
		}
	}
}

// stopAll shuts the last incarnation down cleanly, and waits for the
// crashed ones to let go too, so that nothing of this run outlives it.
func (s *system) stopAll() {
	s.mu.Lock()
	s.closing = true
	last := s.cur
	all := append([]*incarnation(nil), s.all...)
	s.mu.Unlock()
	last.shutdown(s.cfg.OpTimeout)
	last.end()
	for _, inc := range all {
		if inc != last {
			<-inc.stopped
			inc.shutdown(s.cfg.OpTimeout)
		}
	}
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
