package sim

import (
	"context"
	"regexp"
	"runtime"
	"testing"
	"time"
)

// TestSweep runs the real system under every named profile: no seed may
// report a violation.
func TestSweep(t *testing.T) {
	seeds := 50
	switch {
	case testing.Short() && raceEnabled:
		seeds = 3
	case testing.Short():
		seeds = 10
	}
	for _, name := range ProfileNames {
		t.Run(name, func(t *testing.T) {
			seeds := seeds
			if isCluster(MustProfile(name)) {
				// Its leases lapse in real time: seconds a seed. The
				// sweeps of kelpie sim cover more.
				seeds = max(2, seeds/5)
			}
			start := time.Now()
			sum := Sweep(context.Background(), Seeds(1, seeds), runtime.GOMAXPROCS(0), Runner(Config{Faults: MustProfile(name)}), nil)
			t.Logf("%d seeds, %d ops, faults %s, %s", sum.Seeds, sum.Ops, formatCounts(sum.Faults), time.Since(start).Round(time.Millisecond))
			t.Logf("checked %s", formatCounts(sum.Checked))
			if sum.Seeds != seeds || sum.Ops != seeds*DefaultOps && len(sum.Failed) == 0 {
				t.Errorf("ran %d seeds and %d ops, want %d and %d", sum.Seeds, sum.Ops, seeds, seeds*DefaultOps)
			}
			if name != "none" && len(sum.Faults) == 0 {
				t.Errorf("profile %s injected no fault", name)
			}
			for _, r := range sum.Failed {
				t.Errorf("%s", r.Report())
			}
		})
	}
}

func TestResultLine(t *testing.T) {
	r := Result{Seed: 42, Ops: 300, Trace: [32]byte{0xab, 0x01}, SimTime: 1500 * time.Millisecond}
	want := "seed=42 trace=ab01000000000000000000000000000000000000000000000000000000000000 ops=300 violations=0 sim_time=1.5s"
	if got := r.Line(); got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	r.Faults = map[string]int{"write_fail": 2, "restart": 1}
	r.Violations = []Violation{{Checker: "durability"}}
	want = "seed=42 trace=ab01000000000000000000000000000000000000000000000000000000000000 ops=300 violations=1 faults=restart:1,write_fail:2 sim_time=1.5s"
	if got := r.Line(); got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	// A real run's line has the same shape.
	line := Run(Config{Seed: 7, Ops: 40, Faults: MustProfile("all")}).Line()
	shape := regexp.MustCompile(`^seed=7 trace=[0-9a-f]{64} ops=40 violations=0( faults=[a-z_]+:\d+(,[a-z_]+:\d+)*)? sim_time=\S+$`)
	if !shape.MatchString(line) {
		t.Errorf("Line() = %q, does not match %s", line, shape)
	}
}

func TestReport(t *testing.T) {
	r := Result{Seed: 9, Profile: "crash,storage", Violations: []Violation{{Checker: "durability", Message: "lost", History: "#1 ...\n#2 ..."}}}
	got := r.Report()
	for _, want := range []string{"seed 9", "checker durability: lost", "    #1 ...", "replay: go run ./cmd/kelpie sim --seed 9 --faults crash,storage"} {
		if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(got) {
			t.Errorf("Report() lacks %q:\n%s", want, got)
		}
	}
	if (Result{}).Report() != "" {
		t.Error("the report of a passing run is not empty")
	}
}

func TestParseProfile(t *testing.T) {
	for _, s := range []string{"none", "storage", "crash", "clock", "llm", "all", "crash,storage,clock", "write_fail=0.5:key=block/:op=write:after=3:max=2,clock",
		"llm,llm_error=0.3:key=agent-:op=stream:max=5"} {
		p, err := ParseProfile(s)
		if err != nil {
			t.Fatalf("ParseProfile(%q): %v", s, err)
		}
		if p.String() != s {
			t.Errorf("ParseProfile(%q).String() = %q", s, p.String())
		}
		q, err := ParseProfile(p.String())
		if err != nil || len(q.Faults) != len(p.Faults) {
			t.Errorf("round trip of %q: %v, %d faults, want %d", s, err, len(q.Faults), len(p.Faults))
		}
	}
	p := MustProfile("all,write_fail=0.5:max=1")
	// Every fault but the cluster's (whose runs are clusters).
	if want := len(faultDefaults) - len(groups["cluster"]); len(p.Faults) != want {
		t.Errorf("all has %d faults, want %d", len(p.Faults), want)
	}
	for _, f := range p.Faults {
		if f.Kind == WriteFail && (f.Prob != 0.5 || f.Max != 1) {
			t.Errorf("override: %+v", f)
		}
	}
	if n := len(MustProfile("none").Faults); n != 0 {
		t.Errorf("none has %d faults", n)
	}
	if got := MustProfile("").String(); got != "none" {
		t.Errorf(`empty profile is %q, want "none"`, got)
	}
	if n := len(MustProfile("llm").Faults); n != 4 {
		t.Errorf("llm has %d faults, want 4", n)
	}
	for _, bad := range []string{"bogus", "write_fail=2", "write_fail:op=sideways", "latency:max=-1", "latency:color=red",
		"llm_timeout:op=read", "write_fail:op=stream"} {
		if _, err := ParseProfile(bad); err == nil {
			t.Errorf("ParseProfile(%q) succeeded", bad)
		}
	}
	built := Profile{Faults: []Fault{{Kind: ReadFail, Prob: 0.1, Key: "index/", Max: 3}}}
	q, err := ParseProfile(built.String())
	if err != nil || len(q.Faults) != 1 || q.Faults[0] != built.Faults[0] {
		t.Errorf("round trip of a built profile %q: %+v, %v", built.String(), q.Faults, err)
	}
}
