package wasmhost

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildToy builds testdata/toyguest for wasip1 into a temporary directory.
func buildToy(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "toy.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", out, "./testdata/toyguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// TestHostIsDeterministic runs a program full of goroutines, timers, random
// draws and map iteration twice per seed, concurrently, and expects the same
// output from both runs of a seed and different output across seeds.
func TestHostIsDeterministic(t *testing.T) {
	ctx := context.Background()
	h, err := New(ctx, buildToy(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)

	seeds := []uint64{1, 2, 3}
	outs := make([][2]string, len(seeds))
	simTimes := make([][2]time.Duration, len(seeds))
	var wg sync.WaitGroup
	for i, seed := range seeds {
		for k := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var stdout, stderr bytes.Buffer
				o, err := h.Run(ctx, Run{Seed: seed, Stdout: &stdout, Stderr: &stderr})
				if err != nil || o.ExitCode != 0 {
					t.Errorf("seed %d: exit %d, %v\n%s", seed, o.ExitCode, err, stderr.Bytes())
				}
				outs[i][k], simTimes[i][k] = stdout.String(), o.SimTime
			}()
		}
	}
	wg.Wait()
	seen := map[string]uint64{}
	for i, seed := range seeds {
		a, b := outs[i][0], outs[i][1]
		t.Logf("seed %d: %s", seed, strings.TrimSpace(a))
		if a != b {
			t.Errorf("seed %d: runs differ:\n%s\n%s", seed, a, b)
		}
		if simTimes[i][0] != simTimes[i][1] || simTimes[i][0] <= 0 {
			t.Errorf("seed %d: simulated times %v", seed, simTimes[i])
		}
		if !strings.Contains(a, "now="+Epoch.Format("2006-01-02T")) {
			t.Errorf("seed %d: guest clock does not start at %v: %s", seed, Epoch, a)
		}
		if other, ok := seen[a]; ok {
			t.Errorf("seeds %d and %d give the same output %s", other, seed, a)
		}
		seen[a] = seed
	}
}

func TestHostReportsExitAndArgs(t *testing.T) {
	ctx := context.Background()
	h, err := New(ctx, buildToy(t), Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	var stdout bytes.Buffer
	// The toy guest takes its worker count as argument; 0 workers still
	// finishes, with fewer events.
	if _, err := h.Run(ctx, Run{Seed: 1, Args: []string{"0"}, Stdout: &stdout}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout.String(), "events=0 ") {
		t.Errorf("args not passed: %s", stdout.String())
	}
	// An expired context stops the guest with an error, not an exit code.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Run(cctx, Run{Seed: 1}); err == nil {
		t.Error("run under a cancelled context succeeded")
	}
	// A context that ends mid-run stops the guest.
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	o, err := h.Run(tctx, Run{Seed: 1, Args: []string{"forever"}})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("guest that runs forever: %+v, %v", o, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("guest stopped only after %v", d)
	}
	t.Logf("stopped after %v wall, %v simulated: %v", time.Since(start).Round(time.Millisecond), o.SimTime, err)
}
