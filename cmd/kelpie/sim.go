package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kelpie/kelpie/sim"
	"github.com/kelpie/kelpie/sim/wasmhost"
)

const simUsage = `Usage: kelpie sim [flags]

Runs the deterministic simulation: the actor runtime, agent service and HTTP
API driven by simulated clients against simulated storage, clock and faults,
all chosen from a seed, with checkers for every guarantee.

  kelpie sim --seed 42                 run one seed (or DST_SEED=42 kelpie sim)
  kelpie sim --seeds 1000              sweep 1000 seeds on every core
  kelpie sim --seeds 200 --faults crash,storage

By default the simulation runs as a GOOS=wasip1 GOARCH=wasm program under the
wazero runtime, with a seeded random source and a clock that advances only
when the program sleeps, so a seed replays its run exactly: the same
goroutine interleaving, faults, ids, timestamps and outcome. That program is
built from the source tree with the local Go toolchain on first use and
cached (in $KELPIE_SIM_CACHE, else the user cache directory). --native runs
the same simulation in this process instead: faster and usable with -race,
but not reproducible.

Each seed's output ends with the line "seed=N trace=HEX ops=N violations=N
..."; a failing seed is reported first with its violations and the command
that replays it. A summary goes to stderr. The exit status is 1 if any seed
failed.

Flags:
`

// simOptions are the flags of 'kelpie sim'.
type simOptions struct {
	seed           uint64
	seedSet        bool
	seeds          int
	faults         string
	clients        int
	ops            int
	maxActivations int
	idleTimeout    time.Duration
	parallel       int
	native         bool
	wasm           string
	progress       bool
	timeout        time.Duration
}

// seedFlag is --seed: a uint64 that remembers whether it was given.
type seedFlag struct{ o *simOptions }

func (f seedFlag) String() string {
	if f.o == nil || !f.o.seedSet {
		return ""
	}
	return strconv.FormatUint(f.o.seed, 10)
}

func (f seedFlag) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("want a non-negative integer")
	}
	f.o.seed, f.o.seedSet = n, true
	return nil
}

func simFlags(fs *flag.FlagSet, o *simOptions) {
	fs.Var(seedFlag{o}, "seed", "run this seed; with --seeds, the first of the sweep (env DST_SEED; default random)")
	fs.IntVar(&o.seeds, "seeds", 1, "number of seeds to run: more than one sweeps seed, seed+1, ...")
	fs.StringVar(&o.faults, "faults", simEnv("DST_FAULTS", "all"),
		"fault profile: none, storage, crash, clock, all, or a comma-separated list (env DST_FAULTS)")
	fs.IntVar(&o.clients, "clients", 0, "concurrent simulated clients (0: the simulation's default)")
	fs.IntVar(&o.ops, "ops", 0, "operations per seed (0: the simulation's default)")
	fs.IntVar(&o.maxActivations, "max-activations", 0, "actor activation cap (0: the simulation's default)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 0, "actor idle timeout (0: the simulation's default)")
	fs.IntVar(&o.parallel, "parallel", runtime.NumCPU(), "seeds run at once")
	fs.BoolVar(&o.native, "native", false, "run in this process, not under wasm: faster, -race-able, not reproducible")
	fs.StringVar(&o.wasm, "wasm", simEnv("KELPIE_SIM_WASM", ""),
		"run this build of ./sim/wasmguest (GOOS=wasip1 GOARCH=wasm) instead of building one (env KELPIE_SIM_WASM)")
	fs.BoolVar(&o.progress, "progress", false, "draw a progress bar even when stderr is not a terminal")
	fs.DurationVar(&o.timeout, "timeout", 0, "fail a seed that runs longer than this wall time (0: no limit; wasm only)")
}

func simEnv(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func simCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o simOptions
	simFlags(fs, &o)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), simUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // the usage went to stderr, as for 'kelpie serve'
		}
		return 2
	}
	if !o.seedSet {
		if v := os.Getenv("DST_SEED"); v != "" {
			if err := (seedFlag{&o}).Set(v); err != nil {
				fmt.Fprintf(stderr, "kelpie sim: DST_SEED=%q: %v\n", v, err)
				return 2
			}
		}
	}
	usageErr := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "kelpie sim: "+format+"\n", args...)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case o.seeds < 1:
		return usageErr("--seeds must be at least 1")
	case o.parallel < 1:
		return usageErr("--parallel must be at least 1")
	case o.clients < 0 || o.ops < 0 || o.maxActivations < 0 || o.idleTimeout < 0:
		return usageErr("--clients, --ops, --max-activations and --idle-timeout cannot be negative")
	}
	profile, err := sim.ParseProfile(o.faults)
	if err != nil {
		return usageErr("--faults: %v", err)
	}
	o.faults = profile.String() // canonical: what replay commands show
	if !o.seedSet {
		o.seed = rand.Uint64N(1_000_000_000) + 1
	}
	seeds := make([]uint64, o.seeds)
	for i := range seeds {
		seeds[i] = o.seed + uint64(i)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	context.AfterFunc(ctx, stop) // a second interrupt kills the process

	var runner seedRunner
	if o.native {
		cfg := sim.Config{Faults: profile, Clients: o.clients, Ops: o.ops,
			MaxActivations: o.maxActivations, IdleTimeout: o.idleTimeout}
		runner = nativeRunner{cfg}
	} else {
		w, err := newWasmRunner(ctx, o, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "kelpie sim: %v\n", err)
			return 1
		}
		defer w.close()
		runner = w
	}
	parallel := min(o.parallel, len(seeds))
	mode := "wasm, exact replay"
	if o.native {
		mode = "native, not reproducible"
	}
	if len(seeds) == 1 {
		fmt.Fprintf(stderr, "kelpie sim: seed %d, faults %s (%s)\n", seeds[0], o.faults, mode)
	} else {
		fmt.Fprintf(stderr, "kelpie sim: seeds %d..%d, faults %s, %d at a time (%s)\n",
			seeds[0], seeds[len(seeds)-1], o.faults, parallel, mode)
	}

	start := time.Now()
	sum := newSimSummary()
	bar := newProgress(stderr, len(seeds), o.progress)
	single := len(seeds) == 1
	sweep(ctx, runner, seeds, parallel, func(r seedResult) {
		bar.clear()
		printSeed(stdout, r, o, single)
		sum.add(r)
		bar.update(sum)
	})
	bar.clear()
	sum.wall = time.Since(start)
	sum.interrupted = ctx.Err() != nil
	sum.print(stderr, o, parallel, len(seeds))
	if sum.failed > 0 || sum.interrupted {
		return 1
	}
	return 0
}

// seedRunner runs one seed.
type seedRunner interface {
	run(ctx context.Context, seed uint64) seedResult
}

// seedResult is one seed's outcome. A run that crashed (a panic, a guest
// that exited abnormally) is reported as a violation by the "crash"
// checker, with a trace hash of its output; err is set only when the run
// could not complete (interrupted, timed out, host failure).
type seedResult struct {
	seed uint64
	res  sim.Result
	err  error
	wall time.Duration
}

func (r seedResult) failed() bool { return r.err != nil || len(r.res.Violations) > 0 }

func (r seedResult) line() string {
	if r.err != nil {
		return fmt.Sprintf("seed=%d trace=- ops=0 violations=0 error=%q", r.seed, r.err.Error())
	}
	return r.res.Line()
}

// sweep runs the seeds on parallel workers and calls report for each
// result in seed order, as soon as all earlier seeds have reported. After
// ctx ends no new seed starts.
func sweep(ctx context.Context, runner seedRunner, seeds []uint64, parallel int, report func(seedResult)) {
	type indexed struct {
		i int
		r seedResult
	}
	next := make(chan int)
	done := make(chan indexed)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				start := time.Now()
				r := runner.run(ctx, seeds[i])
				r.seed, r.wall = seeds[i], time.Since(start)
				done <- indexed{i, r}
			}
		}()
	}
	go func() {
		defer close(next)
		for i := range seeds {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(done) }()
	pending := map[int]seedResult{}
	want := 0
	for d := range done {
		pending[d.i] = d.r
		for {
			r, ok := pending[want]
			if !ok {
				break
			}
			delete(pending, want)
			want++
			if r.err != nil && ctx.Err() != nil {
				continue // cut short by the interrupt: not a result
			}
			report(r)
		}
	}
	// After an interrupt, seeds past a gap may have finished: report them too.
	rest := make([]int, 0, len(pending))
	for i := range pending {
		rest = append(rest, i)
	}
	sort.Ints(rest)
	for _, i := range rest {
		if r := pending[i]; r.err == nil || ctx.Err() == nil {
			report(r)
		}
	}
}

// nativeRunner runs seeds in this process.
type nativeRunner struct{ cfg sim.Config }

func (n nativeRunner) run(_ context.Context, seed uint64) (out seedResult) {
	defer func() {
		if p := recover(); p != nil {
			msg := fmt.Sprint(p)
			out.res = crashResult(seed, "sim.Run panicked: "+msg, string(debug.Stack()), []byte(msg))
		}
	}()
	cfg := n.cfg
	cfg.Seed = seed
	return seedResult{res: sim.Run(cfg)}
}

// crashResult reports a run that did not finish normally as a violation.
func crashResult(seed uint64, message, history string, output []byte) sim.Result {
	return sim.Result{
		Seed:       seed,
		Trace:      sha256.Sum256(output),
		Violations: []sim.Violation{{Checker: "crash", Message: message, History: history}},
	}
}

// wasmRunner runs seeds in fresh instances of the wasm guest.
type wasmRunner struct {
	host    *wasmhost.Host
	args    []string // guest arguments other than the seed
	timeout time.Duration
}

func newWasmRunner(ctx context.Context, o simOptions, log io.Writer) (*wasmRunner, error) {
	cacheDir, err := wasmhost.CacheDir()
	if err != nil {
		return nil, err
	}
	path, err := guestPath(ctx, o.wasm, cacheDir, log)
	if err != nil {
		return nil, err
	}
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	h, err := wasmhost.New(ctx, wasm, wasmhost.Options{CacheDir: filepath.Join(cacheDir, "wazero")})
	if err != nil {
		return nil, err
	}
	if d := time.Since(start); d > 2*time.Second {
		fmt.Fprintf(log, "compiled %s in %v (cached for next time)\n", filepath.Base(path), d.Round(time.Millisecond))
	}
	return &wasmRunner{host: h, args: guestArgs(o), timeout: o.timeout}, nil
}

// guestPath finds the wasm guest: the one named by --wasm, else a build of
// the current source tree (made now if not cached), else kelpie-sim.wasm
// beside this executable.
func guestPath(ctx context.Context, flagPath, cacheDir string, log io.Writer) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	path, err := wasmhost.BuildGuest(ctx, wasmhost.Build{CacheDir: cacheDir, Log: log})
	if err == nil {
		return path, nil
	}
	if !errors.Is(err, wasmhost.ErrNoSource) {
		return "", err
	}
	if exe, xerr := os.Executable(); xerr == nil {
		beside := filepath.Join(filepath.Dir(exe), "kelpie-sim.wasm")
		if _, serr := os.Stat(beside); serr == nil {
			return beside, nil
		}
	}
	return "", fmt.Errorf("%v, so the simulation cannot be built for wasm.\n"+
		"Run kelpie sim from a clone (go run ./cmd/kelpie sim ...), or pass --wasm FILE with a build made by\n"+
		"  GOOS=wasip1 GOARCH=wasm go build -o kelpie-sim.wasm ./sim/wasmguest\n"+
		"(a kelpie-sim.wasm beside the kelpie binary is found by itself), or use --native", err)
}

// guestArgs turns the options into the guest's flags, less the seed.
func guestArgs(o simOptions) []string {
	args := []string{"-json", "-faults", o.faults}
	if o.clients > 0 {
		args = append(args, "-clients", strconv.Itoa(o.clients))
	}
	if o.ops > 0 {
		args = append(args, "-ops", strconv.Itoa(o.ops))
	}
	if o.maxActivations > 0 {
		args = append(args, "-max-activations", strconv.Itoa(o.maxActivations))
	}
	if o.idleTimeout > 0 {
		args = append(args, "-idle-timeout", o.idleTimeout.String())
	}
	return args
}

func (w *wasmRunner) close() { w.host.Close(context.Background()) }

func (w *wasmRunner) run(ctx context.Context, seed uint64) seedResult {
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, w.timeout, fmt.Errorf("timed out after %v", w.timeout))
		defer cancel()
	}
	var stdout, stderr bytes.Buffer
	args := append([]string{"-seed", strconv.FormatUint(seed, 10)}, w.args...)
	out, err := w.host.Run(ctx, wasmhost.Run{Seed: seed, Args: args, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return seedResult{err: err}
	}
	var res sim.Result
	if out.ExitCode <= 1 {
		if err := json.Unmarshal(stdout.Bytes(), &res); err == nil {
			return seedResult{res: res}
		}
	}
	// The guest crashed (a panic exits 2) or printed no result. Its output
	// is as deterministic as a result, so its hash serves as the trace.
	output := append(stdout.Bytes(), stderr.Bytes()...)
	return seedResult{res: crashResult(seed,
		fmt.Sprintf("the simulation exited with status %d without a result", out.ExitCode),
		string(output), output)}
}

// printSeed writes a seed's report: for a failure, its violations and the
// replay command; then its result line.
func printSeed(w io.Writer, r seedResult, o simOptions, full bool) {
	if r.failed() {
		fmt.Fprintf(w, "--- FAIL: seed %d", r.seed)
		if r.err != nil {
			fmt.Fprintf(w, ": %v\n", r.err)
		} else {
			fmt.Fprintf(w, ": %d violation(s)\n", len(r.res.Violations))
		}
		for _, v := range r.res.Violations {
			fmt.Fprintf(w, "%s: %s\n", v.Checker, v.Message)
			if v.History != "" {
				fmt.Fprintf(w, "history:\n%s", excerpt(v.History, full))
			}
		}
		fmt.Fprintf(w, "replay: %s\n", replayCommand(r.seed, o))
	}
	fmt.Fprintln(w, r.line())
}

// excerpt indents a history and, unless full, keeps its last lines: the
// ones that lead up to the violation.
func excerpt(history string, full bool) string {
	const keep = 60
	lines := strings.Split(strings.TrimRight(history, "\n"), "\n")
	var b strings.Builder
	if !full && len(lines) > keep {
		fmt.Fprintf(&b, "  ... %d earlier lines (replay the seed to see all)\n", len(lines)-keep)
		lines = lines[len(lines)-keep:]
	}
	for _, l := range lines {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// replayCommand is the command that runs one seed again with the same
// options.
func replayCommand(seed uint64, o simOptions) string {
	cmd := sim.ReplayCommand(seed, o.faults)
	if o.clients > 0 {
		cmd += fmt.Sprintf(" --clients %d", o.clients)
	}
	if o.ops > 0 {
		cmd += fmt.Sprintf(" --ops %d", o.ops)
	}
	if o.maxActivations > 0 {
		cmd += fmt.Sprintf(" --max-activations %d", o.maxActivations)
	}
	if o.idleTimeout > 0 {
		cmd += fmt.Sprintf(" --idle-timeout %v", o.idleTimeout)
	}
	if o.native {
		cmd += " --native"
	}
	if o.wasm != "" {
		cmd += " --wasm " + o.wasm
	}
	return cmd
}

// restartKey is the entry of sim.Result.Faults that counts the simulated
// process's restarts (after crashes), rather than a fault.
const restartKey = "restart"

// simSummary adds up a sweep.
type simSummary struct {
	seeds, failed, ops, violations int
	faults                         map[string]int
	simTime, wall, seedWall        time.Duration
	failures                       []uint64
	interrupted                    bool
}

func newSimSummary() *simSummary { return &simSummary{faults: map[string]int{}} }

func (s *simSummary) add(r seedResult) {
	s.seeds++
	s.seedWall += r.wall
	s.ops += r.res.Ops
	s.violations += len(r.res.Violations)
	s.simTime += r.res.SimTime
	for k, n := range r.res.Faults {
		s.faults[k] += n
	}
	if r.failed() {
		s.failed++
		s.failures = append(s.failures, r.seed)
	}
}

func (s *simSummary) print(w io.Writer, o simOptions, parallel, planned int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nsummary")
	run := fmt.Sprintf("%d", s.seeds)
	if s.seeds < planned {
		run = fmt.Sprintf("%d of %d (interrupted)", s.seeds, planned)
	}
	fmt.Fprintf(tw, "  seeds run\t%s, %d passed, %d failed\n", run, s.seeds-s.failed, s.failed)
	fmt.Fprintf(tw, "  operations\t%d\n", s.ops)
	total := 0
	kinds := make([]string, 0, len(s.faults))
	for k, n := range s.faults {
		if k != restartKey {
			kinds = append(kinds, k)
			total += n
		}
	}
	sort.Strings(kinds)
	fmt.Fprintf(tw, "  faults injected\t%d\n", total)
	for _, k := range kinds {
		fmt.Fprintf(tw, "    %s\t%d\n", k, s.faults[k])
	}
	if n, ok := s.faults[restartKey]; ok {
		fmt.Fprintf(tw, "  restarts\t%d\n", n)
	}
	fmt.Fprintf(tw, "  violations\t%d\n", s.violations)
	fmt.Fprintf(tw, "  simulated time\t%v\n", s.simTime.Round(time.Millisecond))
	wall := fmt.Sprintf("%v", s.wall.Round(time.Millisecond))
	if s.seeds > 0 && s.wall > 0 {
		workers := "workers"
		if parallel == 1 {
			workers = "worker"
		}
		wall += fmt.Sprintf(" (%v per seed, %.1f seeds/min on %d %s)",
			(s.seedWall / time.Duration(s.seeds)).Round(time.Millisecond),
			float64(s.seeds)/s.wall.Minutes(), parallel, workers)
	}
	fmt.Fprintf(tw, "  wall time\t%s\n", wall)
	tw.Flush()
	if len(s.failures) > 0 {
		fmt.Fprintf(w, "\nFAILED seeds (%d):\n", len(s.failures))
		for i, seed := range s.failures {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more\n", len(s.failures)-i)
				break
			}
			fmt.Fprintf(w, "  %s\n", replayCommand(seed, o))
		}
	}
}

// progress shows a sweep's progress on stderr: a bar redrawn in place on a
// terminal, else (in CI) a plain line every few seconds.
type progress struct {
	w        io.Writer
	total    int
	bar      bool // redraw in place
	plain    bool // periodic lines
	start    time.Time
	last     time.Time
	drawn    bool
	interval time.Duration // between plain lines
}

func newProgress(w io.Writer, total int, force bool) *progress {
	p := &progress{w: w, total: total, start: time.Now(), last: time.Now()}
	if total > 1 {
		p.bar = force || isTerminal(w)
		p.plain = !p.bar
	}
	p.interval = 10 * time.Second
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) update(s *simSummary) {
	now := time.Now()
	if p.plain && (now.Sub(p.last) < p.interval || s.seeds == p.total) {
		return // a line every interval; the summary follows the last seed
	}
	if !p.bar && !p.plain {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	rate := float64(s.seeds) / elapsed.Seconds()
	eta := ""
	if rate > 0 && s.seeds < p.total {
		eta = fmt.Sprintf(", ETA %v", (time.Duration(float64(p.total-s.seeds) / rate * float64(time.Second))).Round(time.Second))
	}
	status := fmt.Sprintf("%d/%d seeds, %d failed, %d ops, %.1f seeds/s%s",
		s.seeds, p.total, s.failed, s.ops, rate, eta)
	if p.plain {
		fmt.Fprintf(p.w, "progress: %s\n", status)
		return
	}
	const width = 30
	filled := width * s.seeds / p.total
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), status)
	p.drawn = true
}

// clear erases the bar so that other output can be written.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
