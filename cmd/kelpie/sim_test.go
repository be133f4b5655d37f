package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/sim"
)

// resultLine is the line each seed's output ends with.
var resultLine = regexp.MustCompile(`^seed=(\d+) trace=([0-9a-f]+) ops=(\d+) violations=(\d+)( |$)`)

// checkSimOutput checks the per-seed lines of a run of the given seeds and
// returns the result lines.
func checkSimOutput(t *testing.T, code int, stdout, stderr string, seeds ...uint64) []string {
	t.Helper()
	var results []string
	failed := false
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if m := resultLine.FindStringSubmatch(l); m != nil {
			results = append(results, l)
			failed = failed || m[4] != "0"
		}
	}
	if len(results) != len(seeds) {
		t.Fatalf("want %d result lines, got %d:\n%s\nstderr:\n%s", len(seeds), len(results), stdout, stderr)
	}
	for i, l := range results {
		if want := fmt.Sprintf("seed=%d ", seeds[i]); !strings.HasPrefix(l, want) {
			t.Errorf("line %d is %q, want it to start with %q", i, l, want)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(stdout), results[len(results)-1]) {
		t.Errorf("stdout does not end with the last seed's result line:\n%s", stdout)
	}
	if failed != (code != 0) {
		t.Errorf("exit status %d with results:\n%s", code, stdout)
	}
	if failed && !strings.Contains(stdout, "replay: go run ./cmd/kelpie sim --seed ") {
		t.Errorf("a failing run prints no replay command:\n%s", stdout)
	}
	for _, want := range []string{"seeds run", "operations", "faults injected", "violations", "simulated time", "wall time"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
	return results
}

func TestSimNativeOutput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "--native", "--seed", "1", "--faults", "all"}, &stdout, &stderr)
	checkSimOutput(t, code, stdout.String(), stderr.String(), 1)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
}

func TestSimSeedFromEnvironment(t *testing.T) {
	t.Setenv("DST_SEED", "3")
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "--native", "--faults", "none"}, &stdout, &stderr)
	checkSimOutput(t, code, stdout.String(), stderr.String(), 3)
}

// TestSimWasmReplay runs a sweep of two seeds under wasm, then the second
// seed alone, and expects the same result line for it: a seed's run does not
// depend on what else ran in the process. (sim/wasmhost's
// TestSimDeterminism runs more seeds twice each.)
func TestSimWasmReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wasm simulation")
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "--seed", "7", "--seeds", "2", "--faults", "all"}, &stdout, &stderr)
	sweep := checkSimOutput(t, code, stdout.String(), stderr.String(), 7, 8)
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"sim", "--seed", "8", "--faults", "all"}, &stdout, &stderr)
	alone := checkSimOutput(t, code, stdout.String(), stderr.String(), 8)
	if sweep[1] != alone[0] {
		t.Errorf("seed 8 in a sweep and alone differ:\n%s\n%s", sweep[1], alone[0])
	}
	t.Log(alone[0])
}

func TestSimBadInvocations(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "--seeds", "0"},
		{"sim", "--seed", "-1"},
		{"sim", "--faults", "gremlins"},
		{"sim", "--parallel", "0"},
		{"sim", "--native", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("kelpie %q: exit %d, stderr %q; want 2 and a reason", args, code, stderr.String())
		}
	}
	t.Setenv("DST_SEED", "soon")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sim", "--native"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "DST_SEED") {
		t.Errorf("bad DST_SEED: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"sim", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "-seeds") {
		t.Errorf("kelpie sim --help: exit %d, %q", code, stderr.String())
	}
}

func TestSimSummary(t *testing.T) {
	sum := sim.NewSummary()
	for seed := uint64(100); seed < 150; seed++ {
		r := sim.Result{Seed: seed, Ops: 10, Faults: map[string]int{"crash": 1}, SimTime: time.Second}
		if seed%3 == 0 {
			r.Violations = []sim.Violation{{Checker: "fake", Message: "divisible by 3"}}
		}
		sum.Add(r)
	}
	var b bytes.Buffer
	printSummary(&b, *sum, simOptions{faults: "crash"}, 4, 50, time.Minute, nil)
	for _, want := range []string{"50, 34 passed, 16 failed", "crash", "--seed 102 --faults crash", "operations       500"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// TestSimHungSeed: a native run that does not return is given up on after
// the timeout and reported as a liveness violation of its seed.
func TestSimHungSeed(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	r := bounded(context.Background(), 5, "crash", time.Millisecond, func() sim.Result {
		<-stuck
		return sim.Result{}
	})
	if r.Seed != 5 || len(r.Violations) != 1 || r.Violations[0].Checker != "liveness" {
		t.Fatalf("hung run reported as %+v", r)
	}
	var b bytes.Buffer
	printSeed(&b, r, simOptions{faults: "crash"}, false, "")
	if !strings.Contains(b.String(), "replay: go run ./cmd/kelpie sim --seed 5 --faults crash") {
		t.Errorf("no replay command for a hung seed:\n%s", b.String())
	}
}

func TestSimReplayCommand(t *testing.T) {
	o := simOptions{faults: "crash,storage", ops: 50, native: true}
	got := replayCommand(42, o)
	want := "go run ./cmd/kelpie sim --seed 42 --faults crash,storage --ops 50 --native"
	if got != want {
		t.Errorf("replay command %q, want %q", got, want)
	}
	r := sim.Result{Seed: 9, Error: "wasmhost: guest failed"}
	if l := r.Line(); !strings.HasPrefix(l, "seed=9 trace=- ops=0 violations=0 error=") {
		t.Errorf("error line %q", l)
	}
}

// TestSimHunt: --until-failure runs seeds without a set number; --seeds
// still bounds it, and the summary gives the failure rate.
func TestSimHunt(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"sim", "--native", "--seed", "1", "--seeds", "2", "--until-failure", "--faults", "none"}, &stdout, &stderr)
	checkSimOutput(t, code, stdout.String(), stderr.String(), 1, 2)
	for _, want := range []string{"until one fails or 2 have run", "failure rate", "0 of 2 seeds"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestSimFailureRate(t *testing.T) {
	sum := sim.NewSummary()
	for seed := uint64(1); seed <= 400; seed++ {
		r := sim.Result{Seed: seed}
		if seed%200 == 0 {
			r.Violations = []sim.Violation{{Checker: "unexpected-error", Message: "m"}}
		}
		sum.Add(r)
	}
	replays := map[uint64]string{200: "go run ./cmd/kelpie sim --seed 200 --faults llm --native   # native only: passes under wasm"}
	var b bytes.Buffer
	printSummary(&b, *sum, simOptions{faults: "llm", native: true, untilFailure: true}, 2, 0, time.Minute, replays)
	for _, want := range []string{"2 of 400 seeds (0.5%, one in 200), by checker unexpected-error:2", "# native only", "--seed 400 --faults llm --native"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// TestSimReplayLine: a failed seed's replay line is the one given, which
// says which mode reproduces it.
func TestSimReplayLine(t *testing.T) {
	r := sim.Result{Seed: 4, Violations: []sim.Violation{{Checker: "liveness", Message: "stuck"}}}
	var b bytes.Buffer
	line := "go run ./cmd/kelpie sim --seed 4 --faults all   # reproduces under wasm, exactly (liveness)"
	printSeed(&b, r, simOptions{faults: "all", native: true}, false, line)
	if !strings.Contains(b.String(), "replay: "+line+"\n") {
		t.Errorf("replay line missing:\n%s", b.String())
	}
}
