// Package wasmhost runs the simulation, built for GOOS=wasip1 GOARCH=wasm,
// under the wazero runtime so that a seed replays a run exactly.
//
// A Go program compiled to wasm runs on one thread: the Go scheduler still
// multiplexes goroutines, but only at points the program itself reaches
// (channel operations, locks, sleeps, calls into the runtime), never because
// an OS thread was preempted. Everything else a run could depend on comes
// through the few WASI functions the Go runtime imports, and the host
// answers each of them from the seed alone:
//
//   - random_get (the runtime's map hash seeds, select order, scheduler
//     randomness, math/rand's default source, crypto/rand) reads a ChaCha8
//     stream keyed by the seed;
//   - clock_time_get (time.Now, time.Since, timers) reads a simulated clock
//     that starts at a fixed epoch and stands still while the program computes;
//   - poll_oneoff, which the Go runtime calls when every goroutine is blocked
//     and the earliest timer is d away, "sleeps" by advancing that clock by d
//     at once, so simulated hours take milliseconds;
//   - sched_yield does nothing; arguments and environment are exactly what the
//     caller passes, and no file system is mounted.
//
// Given the same module bytes, arguments and seed, a run therefore makes the
// same goroutine interleaving, map iteration order, random draws and
// timestamps, and prints the same output, on any machine.
package wasmhost

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Epoch is the wall-clock time at which every guest starts.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// monotonicStart is the guest's first reading of the monotonic clock. It is
// not zero because zero is a sentinel in places inside the Go runtime.
const monotonicStart = int64(time.Second)

// Host holds a compiled guest module; it runs it any number of times, from
// any number of goroutines at once, each run in a fresh instance.
type Host struct {
	rt  wazero.Runtime
	mod wazero.CompiledModule
}

// Options configures New.
type Options struct {
	// CacheDir, if set, keeps wazero's machine-code translation of modules
	// there, so a module is compiled once per machine rather than per
	// process. Only the most recently compiled modules are kept.
	CacheDir string
	// CompileWorkers is how many goroutines compile the module when it is
	// not cached (runtime.NumCPU() if 0).
	CompileWorkers int
}

// New compiles the wasm module (a GOOS=wasip1 GOARCH=wasm executable).
func New(ctx context.Context, wasm []byte, opts Options) (*Host, error) {
	// Not WithCloseOnContextDone: its checks make the guest 2.5 times
	// slower. Run stops a guest through its clock instead. No DWARF: the
	// guest is built without it, and Go prints its own stack traces.
	cfg := wazero.NewRuntimeConfig().WithDebugInfoEnabled(false)
	if opts.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasmhost: compilation cache: %w", err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: WASI: %w", err)
	}
	workers := opts.CompileWorkers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	if opts.CacheDir != "" {
		// Processes started together (go test runs packages in parallel)
		// compile a module once: the others wait and load it from the cache.
		sum := sha256.Sum256(wasm)
		if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
			rt.Close(ctx)
			return nil, err
		}
		unlock, err := lockFile(ctx, filepath.Join(opts.CacheDir, fmt.Sprintf("compile-%x.lock", sum[:8])))
		if err != nil {
			rt.Close(ctx)
			return nil, err
		}
		defer unlock()
	}
	mod, err := rt.CompileModule(experimental.WithCompilationWorkers(ctx, workers), wasm)
	if err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("wasmhost: compile module: %w", err)
	}
	if opts.CacheDir != "" {
		pruneCompiled(opts.CacheDir, 2)
	}
	return &Host{rt: rt, mod: mod}, nil
}

// Close releases the runtime and the compiled module.
func (h *Host) Close(ctx context.Context) error { return h.rt.Close(ctx) }

// Run is one execution of the guest.
type Run struct {
	// Seed keys the guest's only source of randomness.
	Seed uint64
	// Args are the program's arguments after argv[0].
	Args []string
	// Env holds "KEY=VALUE" entries: the guest's whole environment.
	Env []string
	// Stdout and Stderr receive the guest's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Outcome is how a run ended.
type Outcome struct {
	// ExitCode is the guest's exit status (0 when main returned).
	ExitCode uint32
	// SimTime is how far the guest's clock advanced: the time it slept.
	SimTime time.Duration
}

// Run executes the guest to completion in a fresh instance. The error is
// non-nil only if the guest did not exit (a trap, or ctx ended); a non-zero
// exit status is reported in the Outcome.
func (h *Host) Run(ctx context.Context, r Run) (Outcome, error) {
	if err := ctx.Err(); err != nil {
		return Outcome{}, fmt.Errorf("wasmhost: guest not started: %w", context.Cause(ctx))
	}
	clk := &simClock{mono: monotonicStart}
	defer context.AfterFunc(ctx, func() { clk.stop.Store(true) })()
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: instances may run side by side
		WithArgs(append([]string{"kelpie-simguest"}, r.Args...)...).
		WithRandSource(newRandSource(r.Seed)).
		WithWalltime(clk.walltime, 1).
		WithNanotime(clk.nanotime, 1).
		WithNanosleep(clk.nanosleep).
		WithOsyield(func() {})
	for _, kv := range r.Env {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}
	if r.Stdout != nil {
		cfg = cfg.WithStdout(r.Stdout)
	}
	if r.Stderr != nil {
		cfg = cfg.WithStderr(r.Stderr)
	}
	ictx := experimental.WithMemoryAllocator(context.WithoutCancel(ctx), memoryAllocator)
	mod, err := h.rt.InstantiateModule(ictx, h.mod, cfg)
	if mod != nil {
		defer mod.Close(ctx)
	}
	out := Outcome{SimTime: time.Duration(clk.mono - monotonicStart)}
	var exit *sys.ExitError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &exit) && ctx.Err() == nil:
		out.ExitCode = exit.ExitCode()
		return out, nil
	case ctx.Err() != nil:
		return out, fmt.Errorf("wasmhost: guest stopped: %w", context.Cause(ctx))
	}
	return out, fmt.Errorf("wasmhost: guest failed: %w", err)
}

// simClock is one guest's clock. A guest runs on one goroutine, so mono
// needs no lock.
//
// The clock also stops the guest when its run's context ends: the Go
// runtime reads the clock at every goroutine switch, so a guest that is not
// stuck in a loop without calls soon panics out of a clock reading, which
// wazero turns into an error from the call that started the guest.
type simClock struct {
	mono int64
	stop atomic.Bool
}

// errStopped is the panic that stops a guest.
var errStopped = errors.New("wasmhost: run stopped")

func (c *simClock) check() {
	if c.stop.Load() {
		panic(errStopped)
	}
}

func (c *simClock) nanotime() int64 {
	c.check()
	return c.mono
}

func (c *simClock) walltime() (int64, int32) {
	c.check()
	t := Epoch.Add(time.Duration(c.mono - monotonicStart))
	return t.Unix(), int32(t.Nanosecond())
}

func (c *simClock) nanosleep(ns int64) {
	c.check()
	if ns > 0 {
		c.mono += ns
	}
}

// newRandSource returns the byte stream a guest with this seed reads from
// random_get.
func newRandSource(seed uint64) io.Reader {
	return rand.NewChaCha8(sha256.Sum256(binary.LittleEndian.AppendUint64([]byte("kelpie wasmhost random_get "), seed)))
}

// pruneCompiled keeps the keep newest files of each of wazero's cache
// directories under dir: every build of the guest compiles to a new entry
// of a few hundred megabytes.
func pruneCompiled(dir string, keep int) {
	subdirs, _ := filepath.Glob(filepath.Join(dir, "wazero-*"))
	for _, sub := range subdirs {
		entries, _ := os.ReadDir(sub)
		type file struct {
			path string
			mod  time.Time
		}
		var files []file
		for _, e := range entries {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
				files = append(files, file{filepath.Join(sub, e.Name()), fi.ModTime()})
			}
		}
		if len(files) <= keep {
			continue
		}
		sort.Slice(files, func(i, j int) bool { return files[i].mod.After(files[j].mod) })
		for _, f := range files[keep:] {
			os.Remove(f.path)
		}
	}
}
