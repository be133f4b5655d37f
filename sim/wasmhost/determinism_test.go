package wasmhost

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// testLog sends build messages to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// TestSimDeterminism is the exact-replay check: it builds the simulation
// (./sim/wasmguest) for wasip1 as 'kelpie sim' does, runs several seeds
// twice each under wazero, two runs at a time, and fails if the two runs of
// a seed differ in any byte of output — trace hash, operation and fault
// counts, violations, simulated time — or if two seeds share a trace.
func TestSimDeterminism(t *testing.T) {
	ctx := context.Background()
	h := guestHost(t)

	const seeds = 5
	type run struct {
		stdout, stderr string
		exit           uint32
		wall           time.Duration
		err            error
	}
	runs := make([][2]run, seeds)
	jobs := make(chan [2]int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				seed := uint64(j[0] + 1)
				var stdout, stderr bytes.Buffer
				t0 := time.Now()
				o, err := h.Run(ctx, Run{Seed: seed, Stdout: &stdout, Stderr: &stderr,
					Args: []string{"-json", "-seed", strconv.FormatUint(seed, 10), "-faults", "all"}})
				runs[j[0]][j[1]] = run{stdout.String(), stderr.String(), o.ExitCode, time.Since(t0), err}
			}
		}()
	}
	for k := range 2 {
		for i := range seeds {
			jobs <- [2]int{i, k}
		}
	}
	close(jobs)
	wg.Wait()

	traces := map[string]int{}
	for i, pair := range runs {
		seed := i + 1
		a, b := pair[0], pair[1]
		if a.err != nil || b.err != nil {
			t.Fatalf("seed %d: %v / %v", seed, a.err, b.err)
		}
		var res struct {
			Trace      [32]byte
			Ops        int
			Violations []struct{ Checker, Message string }
			SimTime    time.Duration
		}
		if err := json.Unmarshal([]byte(a.stdout), &res); err != nil {
			t.Fatalf("seed %d: exit %d, no result: %v\nstdout: %s\nstderr: %s", seed, a.exit, err, a.stdout, a.stderr)
		}
		trace := hex.EncodeToString(res.Trace[:])
		t.Logf("seed %d: trace=%s ops=%d violations=%d simtime=%v wall=%v,%v",
			seed, trace, res.Ops, len(res.Violations), res.SimTime,
			a.wall.Round(time.Millisecond), b.wall.Round(time.Millisecond))
		if a.stdout != b.stdout || a.stderr != b.stderr || a.exit != b.exit {
			t.Errorf("seed %d: two runs differ:\nexit %d, stdout %s\nstderr %s\nexit %d, stdout %s\nstderr %s",
				seed, a.exit, a.stdout, a.stderr, b.exit, b.stdout, b.stderr)
		}
		if other, ok := traces[trace]; ok {
			t.Errorf("seeds %d and %d have the same trace %s", other, seed, trace)
		}
		traces[trace] = seed
	}
}

// guestHost builds the simulation for wasm and loads it, or skips under
// -short: on a machine whose Go build cache has no wasip1 builds yet (a
// fresh CI machine), building the guest takes about two minutes.
func guestHost(t *testing.T) *Host {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the simulation for wasm: minutes on a cold build cache")
	}
	ctx := context.Background()
	cacheDir, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	path, err := BuildGuest(ctx, Build{Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(ctx, wasm, Options{CacheDir: filepath.Join(cacheDir, "wazero")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	t.Logf("guest %s (%d MB) ready in %v", filepath.Base(path), len(wasm)>>20, time.Since(start).Round(time.Millisecond))
	return h
}

// TestSeedsThatFailed replays, exactly, seeds that once found a bug, each
// with what it found: they keep the paths they reached covered as the code
// changes (a change to the simulation or the system may lead a seed
// elsewhere; the sweeps then look for new ones).
func TestSeedsThatFailed(t *testing.T) {
	h := guestHost(t)
	for _, c := range []struct {
		seed    uint64
		profile string
		found   string
	}{
		{413003672, "all", "a turn's compaction commit failed with its outcome unknown but had been applied: the live stream lacked the summary message that the retried turn's replay showed"},
	} {
		var stdout, stderr bytes.Buffer
		seed := strconv.FormatUint(c.seed, 10)
		out, err := h.Run(context.Background(), Run{Seed: c.seed, Stdout: &stdout, Stderr: &stderr,
			Args: []string{"-seed", seed, "-faults", c.profile}})
		if err != nil {
			t.Fatalf("seed %d: %v", c.seed, err)
		}
		if out.ExitCode != 0 {
			t.Errorf("seed %d (faults %s) once found: %s\nexit %d\n%s%s", c.seed, c.profile, c.found, out.ExitCode, stdout.String(), stderr.String())
		}
	}
}
