package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// fakeRun finishes after a random pause, so that seeds finish out of
// order; seeds divisible by 3 fail.
func fakeRun() func(context.Context, uint64) Result {
	return func(_ context.Context, seed uint64) Result {
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		r := Result{Seed: seed, Ops: 10, Faults: map[string]int{"crash": 1}, SimTime: time.Second}
		if seed%3 == 0 {
			r.Violations = []Violation{{Checker: "fake", Message: "divisible by 3"}}
		}
		return r
	}
}

// Spec: Sweep reports every seed once, in seed order, whatever order the
// runs finish in, and adds them all up.
func TestSweepReportsInSeedOrder(t *testing.T) {
	seeds := Seeds(100, 50)
	var got []uint64
	sum := Sweep(context.Background(), seeds, 4, fakeRun(), func(r Result) { got = append(got, r.Seed) })
	if fmt.Sprint(got) != fmt.Sprint(seeds) {
		t.Errorf("reported %v, want %v", got, seeds)
	}
	if sum.Seeds != 50 || len(sum.Failed) != 16 || sum.Ops != 500 || sum.Faults["crash"] != 50 || sum.SimTime != 50*time.Second {
		t.Errorf("summary %+v", sum)
	}
	for i, r := range sum.Failed {
		if r.Seed%3 != 0 || i > 0 && r.Seed <= sum.Failed[i-1].Seed {
			t.Errorf("failed runs out of order or wrong: %d at %d", r.Seed, i)
		}
	}
}

// Spec: once its context ends, Sweep starts no seed, and does not count a
// run that the context cut short.
func TestSweepStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	run := func(ctx context.Context, seed uint64) Result {
		if ctx.Err() != nil {
			return Result{Seed: seed, Error: "interrupted"}
		}
		return Result{Seed: seed}
	}
	n := 0
	sum := Sweep(ctx, Seeds(0, 1000), 2, run, func(r Result) {
		if r.Error != "" {
			t.Errorf("seed %d cut short, yet reported", r.Seed)
		}
		if n++; n == 10 {
			cancel()
		}
	})
	if n >= 20 || sum.Seeds != n {
		t.Errorf("%d seeds reported (%d counted) after cancelling at 10", n, sum.Seeds)
	}
}

// Spec: a hunt for a failure stops starting seeds once one has failed;
// the seeds already running finish and count, in seed order.
func TestHuntUntilFailure(t *testing.T) {
	// One at a time, the hunt stops at the first failure.
	sum := Hunt{First: 1, UntilFailure: true, Parallel: 1}.Run(context.Background(), fakeRun(), nil)
	if len(sum.Failed) != 1 || sum.Failed[0].Seed != 3 || sum.Seeds != 3 {
		t.Fatalf("one at a time: %d seeds, failed %v; want 3 seeds, seed 3 failed", sum.Seeds, sum.Failed)
	}
	// In parallel, seeds after the failing one run while it does (how many
	// depends on timing), and they are reported in order.
	var got []uint64
	sum = Hunt{First: 1, UntilFailure: true, Parallel: 2}.Run(context.Background(), fakeRun(), func(r Result) { got = append(got, r.Seed) })
	if len(sum.Failed) == 0 || sum.Failed[0].Seed != 3 || sum.Seeds < 3 {
		t.Fatalf("in parallel: %d seeds, first failure %v; want seed 3", sum.Seeds, sum.Failed)
	}
	for i, seed := range got {
		if seed != uint64(i+1) {
			t.Fatalf("reported %v, want consecutive seeds from 1", got)
		}
	}
}

// Spec: a hunt runs at most Count seeds, and without UntilFailure goes on
// past failures, so its summary gives their rate.
func TestHuntCount(t *testing.T) {
	sum := Hunt{First: 10, Count: 30, Parallel: 3}.Run(context.Background(), fakeRun(), nil)
	if sum.Seeds != 30 || len(sum.Failed) != 10 {
		t.Errorf("%d seeds, %d failed; want 30 and 10", sum.Seeds, len(sum.Failed))
	}
}

// Spec: a hunt with a budget of wall time ends by itself.
func TestHuntBudget(t *testing.T) {
	sum := Hunt{First: 1, Budget: 20 * time.Millisecond, Parallel: 2}.Run(context.Background(), fakeRun(), nil)
	if sum.Seeds == 0 {
		t.Errorf("no seed ran")
	}
}
