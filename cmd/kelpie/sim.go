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
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
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
  kelpie sim --native --until-failure --faults llm   hunt a rare failure
  kelpie sim --native --budget 30m --faults llm      its rate, in 30 minutes

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
that replays it. A seed that fails natively is run again under wasm at once,
and its replay line says which mode reproduces it. A summary, with the rate
of failures, goes to stderr. The exit status is 1 if any seed failed.

--until-failure and --budget hunt: they run seeds from --seed on, without a
set number (--seeds, if given, still bounds it), until a seed fails or the
budget of wall time is spent.

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
	seedsSet       bool // --seeds was given
	untilFailure   bool
	budget         time.Duration
	wasmReplay     bool // replay a native failure under wasm
}

// hunting reports whether the seeds have no set number.
func (o simOptions) hunting() bool { return o.untilFailure || o.budget > 0 }

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

// defaultSeedTimeout bounds the wall time of one seed: a run stuck in a way
// the simulated clock cannot see (computing without sleeping, which under
// wasm stops that clock) still ends, as a liveness violation. A seed takes
// a second or so; the bound is well past the simulation's own RunTimeout.
const defaultSeedTimeout = 5 * time.Minute

func simFlags(fs *flag.FlagSet, o *simOptions) {
	fs.Var(seedFlag{o}, "seed", "run this seed; with --seeds, the first of the sweep (env DST_SEED; default random)")
	fs.IntVar(&o.seeds, "seeds", 1, "number of seeds to run: more than one sweeps seed, seed+1, ...")
	fs.StringVar(&o.faults, "faults", env("DST_FAULTS", "all"),
		"fault profile: none, storage, crash, clock, llm, tools, network, cluster (3 nodes on one shared database), all, or a comma-separated list (env DST_FAULTS)")
	fs.IntVar(&o.clients, "clients", 0, "concurrent simulated clients (0: the simulation's default)")
	fs.IntVar(&o.ops, "ops", 0, "operations per seed (0: the simulation's default)")
	fs.IntVar(&o.maxActivations, "max-activations", 0, "actor activation cap (0: the simulation's default)")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 0, "actor idle timeout (0: the simulation's default)")
	fs.IntVar(&o.parallel, "parallel", runtime.NumCPU(), "seeds run at once")
	fs.BoolVar(&o.native, "native", false, "run in this process, not under wasm: faster, -race-able, not reproducible")
	fs.StringVar(&o.wasm, "wasm", env("KELPIE_SIM_WASM", ""),
		"run this build of ./sim/wasmguest (GOOS=wasip1 GOARCH=wasm) instead of building one (env KELPIE_SIM_WASM)")
	fs.BoolVar(&o.progress, "progress", false, "draw a progress bar even when stderr is not a terminal")
	fs.DurationVar(&o.timeout, "timeout", defaultSeedTimeout,
		"fail a seed that runs longer than this wall time, as a liveness violation (0: no limit)")
	fs.BoolVar(&o.untilFailure, "until-failure", false, "run seeds from --seed on until one fails (with --seeds: at most that many)")
	fs.DurationVar(&o.budget, "budget", 0, "run seeds from --seed on until this much wall time has passed (0: no budget)")
	fs.BoolVar(&o.wasmReplay, "wasm-replay", true, "run a seed that fails natively again under wasm, to tell whether it replays")
}

func simCommand(args []string, stdout, stderr io.Writer) int {
	o, code := parseSimOptions(args, stderr)
	if code >= 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	context.AfterFunc(ctx, stop) // a second interrupt kills the process

	run, closeRunner, err := newRunner(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kelpie sim: %v\n", err)
		return 1
	}
	defer closeRunner()
	planned, parallel := o.seeds, min(o.parallel, o.seeds)
	if o.hunting() {
		planned, parallel = 0, o.parallel
		if o.seedsSet {
			planned, parallel = o.seeds, min(o.parallel, o.seeds)
		}
	}
	printHeader(stderr, o, planned, parallel)

	start := time.Now()
	bar := newProgress(stderr, planned, o.progress, o.budget)
	running := sim.NewSummary()
	replays := newReplayer(ctx, o, stderr)
	defer replays.close()
	report := func(r sim.Result) {
		bar.clear()
		printSeed(stdout, r, o, planned == 1, replays.check(r))
		running.Add(r)
		bar.update(running)
	}
	var sum sim.Summary
	if o.hunting() {
		h := sim.Hunt{First: o.seed, Budget: o.budget, UntilFailure: o.untilFailure, Parallel: o.parallel}
		if o.seedsSet {
			h.Count = o.seeds
		}
		sum = h.Run(ctx, run, report)
	} else {
		sum = sim.Sweep(ctx, sim.Seeds(o.seed, o.seeds), parallel, run, report)
	}
	bar.clear()
	interrupted := ctx.Err() != nil
	printSummary(stderr, sum, o, parallel, planned, time.Since(start), replays.lines)
	if len(sum.Failed) > 0 || interrupted {
		return 1
	}
	return 0
}

// printHeader says what is about to run.
func printHeader(w io.Writer, o simOptions, planned, parallel int) {
	mode := "wasm, exact replay"
	if o.native {
		mode = "native, not reproducible"
	}
	switch {
	case planned == 1:
		fmt.Fprintf(w, "kelpie sim: seed %d, faults %s (%s)\n", o.seed, o.faults, mode)
	case planned > 1 && !o.hunting():
		fmt.Fprintf(w, "kelpie sim: seeds %d..%d, faults %s, %d at a time (%s)\n",
			o.seed, o.seed+uint64(planned)-1, o.faults, parallel, mode)
	default:
		var until []string
		if o.untilFailure {
			until = append(until, "one fails")
		}
		if o.budget > 0 {
			until = append(until, o.budget.String()+" have passed")
		}
		if planned > 0 {
			until = append(until, fmt.Sprintf("%d have run", planned))
		}
		fmt.Fprintf(w, "kelpie sim: seeds from %d until %s, faults %s, %d at a time (%s)\n",
			o.seed, strings.Join(until, " or "), o.faults, parallel, mode)
	}
}

// parseSimOptions reads the flags and DST_SEED. It returns the exit status
// to end with (an error, or --help), or -1 to go on.
func parseSimOptions(args []string, stderr io.Writer) (simOptions, int) {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o simOptions
	simFlags(fs, &o)
	if code, ok := parseFlags(fs, simUsage, args); !ok {
		return o, code // after --help the usage went to stderr, as for 'kelpie serve'
	}
	fs.Visit(func(f *flag.Flag) { o.seedsSet = o.seedsSet || f.Name == "seeds" })
	usageErr := func(format string, args ...any) (simOptions, int) {
		fmt.Fprintf(stderr, "kelpie sim: "+format+"\n", args...)
		return o, 2
	}
	if v := os.Getenv("DST_SEED"); !o.seedSet && v != "" {
		if err := (seedFlag{&o}).Set(v); err != nil {
			return usageErr("DST_SEED=%q: %v", v, err)
		}
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected argument %q", fs.Arg(0))
	case o.seeds < 1:
		return usageErr("--seeds must be at least 1")
	case o.parallel < 1:
		return usageErr("--parallel must be at least 1")
	case o.clients < 0 || o.ops < 0 || o.maxActivations < 0 || o.idleTimeout < 0 || o.timeout < 0 || o.budget < 0:
		return usageErr("--clients, --ops, --max-activations, --idle-timeout, --timeout and --budget cannot be negative")
	}
	profile, err := sim.ParseProfile(o.faults)
	if err != nil {
		return usageErr("--faults: %v", err)
	}
	o.faults = profile.String() // canonical: what replay commands show
	if !o.seedSet {
		o.seed = rand.Uint64N(1_000_000_000) + 1
	}
	return o, -1
}

// newRunner returns what runs one seed, natively or under wasm, and what
// releases it.
func newRunner(ctx context.Context, o simOptions, log io.Writer) (func(context.Context, uint64) sim.Result, func(), error) {
	if o.native {
		profile, _ := sim.ParseProfile(o.faults) // checked by parseSimOptions
		cfg := sim.Config{Faults: profile, Clients: o.clients, Ops: o.ops,
			MaxActivations: o.maxActivations, IdleTimeout: o.idleTimeout}
		return nativeRunner{cfg: cfg, timeout: o.timeout}.run, func() {}, nil
	}
	w, err := newWasmRunner(ctx, o, log)
	if err != nil {
		return nil, nil, err
	}
	return w.run, w.close, nil
}

// nativeRunner runs seeds in this process.
type nativeRunner struct {
	cfg     sim.Config
	timeout time.Duration // of wall time; 0: none
}

func (n nativeRunner) run(ctx context.Context, seed uint64) sim.Result {
	return bounded(ctx, seed, n.cfg.Faults.String(), n.timeout, func() sim.Result { return n.runSeed(seed) })
}

// bounded calls run, giving up on it after timeout of wall time (0: never),
// or once ctx ends. A run in this process cannot be stopped: one given up
// on is left behind.
func bounded(ctx context.Context, seed uint64, profile string, timeout time.Duration, run func() sim.Result) sim.Result {
	done := make(chan sim.Result, 1)
	go func() { done <- run() }()
	var limit <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		limit = t.C
	}
	select {
	case r := <-done:
		return r
	case <-limit:
		return sim.Hung(seed, profile, timeout)
	case <-ctx.Done():
		return sim.Result{Seed: seed, Profile: profile, Error: "interrupted"}
	}
}

// runSeed runs one seed, reporting a panic as a violation.
func (n nativeRunner) runSeed(seed uint64) (out sim.Result) {
	defer func() {
		if p := recover(); p != nil {
			msg := fmt.Sprint(p)
			out = crashResult(seed, "sim.Run panicked: "+msg, string(debug.Stack()), []byte(msg))
		}
	}()
	cfg := n.cfg
	cfg.Seed = seed
	return sim.Run(cfg)
}

// crashResult reports a run that did not finish normally (a panic, a guest
// that exited abnormally) as a violation of the "crash" checker, with a
// hash of its output as its trace.
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
	faults  string
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
	return &wasmRunner{host: h, args: guestArgs(o), faults: o.faults, timeout: o.timeout}, nil
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

func (w *wasmRunner) run(ctx context.Context, seed uint64) sim.Result {
	runCtx := ctx
	if w.timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, w.timeout)
		defer cancel()
	}
	var stdout, stderr bytes.Buffer
	args := append([]string{"-seed", strconv.FormatUint(seed, 10)}, w.args...)
	out, err := w.host.Run(runCtx, wasmhost.Run{Seed: seed, Args: args, Stdout: &stdout, Stderr: &stderr})
	switch {
	case err != nil && ctx.Err() == nil && runCtx.Err() != nil:
		return sim.Hung(seed, w.faults, w.timeout)
	case err != nil:
		return sim.Result{Seed: seed, Profile: w.faults, Error: err.Error()}
	}
	var res sim.Result
	if out.ExitCode <= 1 {
		if err := json.Unmarshal(stdout.Bytes(), &res); err == nil {
			return res
		}
	}
	// The guest crashed (a panic exits 2) or printed no result. Its output
	// is as deterministic as a result, so its hash serves as the trace.
	output := append(stdout.Bytes(), stderr.Bytes()...)
	return crashResult(seed,
		fmt.Sprintf("the simulation exited with status %d without a result", out.ExitCode),
		string(output), output)
}

// printSeed writes a seed's report: for a failure, its violations and the
// replay line (the command, and which mode reproduces the failure when that
// was tried); then its result line.
func printSeed(w io.Writer, r sim.Result, o simOptions, full bool, replay string) {
	if r.Failed() {
		fmt.Fprintf(w, "--- FAIL: seed %d", r.Seed)
		if r.Error != "" {
			fmt.Fprintf(w, ": %s\n", r.Error)
		} else {
			fmt.Fprintf(w, ": %d violation(s)\n", len(r.Violations))
		}
		for _, v := range r.Violations {
			fmt.Fprintf(w, "%s: %s\n", v.Checker, v.Message)
			if v.History != "" {
				fmt.Fprintf(w, "history:\n%s", excerpt(v.History, full))
			}
		}
		if replay == "" {
			replay = replayCommand(r.Seed, o)
		}
		fmt.Fprintf(w, "replay: %s\n", replay)
	}
	fmt.Fprintln(w, r.Line())
}

// replayer runs a seed that failed natively again under wasm, where a run
// replays exactly, and says which mode reproduces the failure: a native
// failure that wasm does not reproduce can only be hunted again.
type replayer struct {
	ctx   context.Context
	o     simOptions
	log   io.Writer
	wasm  *wasmRunner // made at the first native failure
	err   error       // why it could not be made
	lines map[uint64]string
}

func newReplayer(ctx context.Context, o simOptions, log io.Writer) *replayer {
	return &replayer{ctx: ctx, o: o, log: log, lines: map[uint64]string{}}
}

func (p *replayer) close() {
	if p.wasm != nil {
		p.wasm.close()
	}
}

// check returns the replay line of a failed result ("" for one that
// passed), trying a native failure under wasm first.
func (p *replayer) check(r sim.Result) string {
	if !r.Failed() {
		return ""
	}
	line := replayCommand(r.Seed, p.o)
	if p.o.native && p.o.wasmReplay && r.Error == "" && p.ctx.Err() == nil {
		line = p.underWasm(r)
	}
	p.lines[r.Seed] = line
	return line
}

// underWasm runs r's seed under wasm and returns the replay line that
// follows.
func (p *replayer) underWasm(r sim.Result) string {
	native := replayCommand(r.Seed, p.o)
	if p.wasm == nil && p.err == nil {
		fmt.Fprintf(p.log, "kelpie sim: seed %d failed natively; running it under wasm to see whether it replays\n", r.Seed)
		p.wasm, p.err = newWasmRunner(p.ctx, p.o, p.log)
	}
	if p.err != nil {
		return native + "   # not tried under wasm (" + p.err.Error() + ")"
	}
	w := p.o
	w.native = false
	exact := replayCommand(r.Seed, w)
	again := p.wasm.run(p.ctx, r.Seed)
	first := r.Violations[0].Checker
	switch {
	case again.Error != "":
		return native + "   # not tried under wasm (" + again.Error + ")"
	case slices.ContainsFunc(again.Violations, func(v sim.Violation) bool { return v.Checker == first }):
		return exact + "   # reproduces under wasm, exactly (" + first + ")"
	case again.Failed():
		v := again.Violations[0]
		return exact + "   # fails under wasm too, differently (" + v.Checker + ": " + clip(v.Message, 160) + "); natively: " + native
	}
	return native + "   # native only: passes under wasm, so no exact replay; hunt it with --until-failure"
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
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

// printSummary writes the summary of a sweep of planned seeds (0: no set
// number) that took wall; replays are the replay lines of failed seeds
// that differ from the plain command.
func printSummary(w io.Writer, s sim.Summary, o simOptions, parallel, planned int, wall time.Duration, replays map[uint64]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "\nsummary")
	run := fmt.Sprintf("%d", s.Seeds)
	if s.Seeds < planned && !o.hunting() {
		run = fmt.Sprintf("%d of %d (interrupted)", s.Seeds, planned)
	}
	fmt.Fprintf(tw, "  seeds run\t%s, %d passed, %d failed\n", run, s.Seeds-len(s.Failed), len(s.Failed))
	if s.Seeds > 1 || o.hunting() {
		fmt.Fprintf(tw, "  failure rate\t%s\n", failureRate(s))
	}
	fmt.Fprintf(tw, "  operations\t%d\n", s.Ops)
	total := 0
	kinds := make([]string, 0, len(s.Faults))
	for k, n := range s.Faults {
		if k != restartKey {
			kinds = append(kinds, k)
			total += n
		}
	}
	sort.Strings(kinds)
	fmt.Fprintf(tw, "  faults injected\t%d\n", total)
	for _, k := range kinds {
		fmt.Fprintf(tw, "    %s\t%d\n", k, s.Faults[k])
	}
	if n, ok := s.Faults[restartKey]; ok {
		fmt.Fprintf(tw, "  restarts\t%d\n", n)
	}
	fmt.Fprintf(tw, "  calls failed\t%s\n", failedCalls(s))
	fmt.Fprintf(tw, "  violations\t%d\n", s.Violations)
	fmt.Fprintf(tw, "  simulated time\t%v\n", s.SimTime.Round(time.Millisecond))
	fmt.Fprintf(tw, "  wall time\t%s\n", wallLine(s, parallel, wall))
	tw.Flush()
	if len(s.Failed) > 0 {
		fmt.Fprintf(w, "\nFAILED seeds (%d):\n", len(s.Failed))
		for i, r := range s.Failed {
			if i == 20 {
				fmt.Fprintf(w, "  ... and %d more\n", len(s.Failed)-i)
				break
			}
			line := replays[r.Seed]
			if line == "" {
				line = replayCommand(r.Seed, o)
			}
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

// failedCalls counts the calls that failed, by kind (an error status's,
// or a turn's stop reason): each was excused by a fault on its path or a
// crash, or it is a violation.
func failedCalls(s sim.Summary) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.Checked)) {
		if kind, ok := strings.CutPrefix(k, "failed "); ok {
			parts = append(parts, fmt.Sprintf("%s:%d", kind, s.Checked[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// failureRate is how often seeds failed, and by which checker (the first
// violation's) or error.
func failureRate(s sim.Summary) string {
	if s.Seeds == 0 {
		return "no seed run"
	}
	n := len(s.Failed)
	line := fmt.Sprintf("%d of %d seeds (%.3g%%", n, s.Seeds, 100*float64(n)/float64(s.Seeds))
	if n > 0 {
		line += fmt.Sprintf(", one in %.0f", float64(s.Seeds)/float64(n))
	}
	line += ")"
	by := map[string]int{}
	for _, r := range s.Failed {
		if r.Error != "" {
			by["error"]++
		} else {
			by[r.Violations[0].Checker]++
		}
	}
	if len(by) > 0 {
		kinds := slices.Sorted(maps.Keys(by))
		parts := make([]string, len(kinds))
		for i, k := range kinds {
			parts[i] = fmt.Sprintf("%s:%d", k, by[k])
		}
		line += ", by checker " + strings.Join(parts, ",")
	}
	return line
}

// wallLine is the summary's wall time, with the time per seed and the rate.
func wallLine(s sim.Summary, parallel int, wall time.Duration) string {
	line := fmt.Sprintf("%v", wall.Round(time.Millisecond))
	if s.Seeds == 0 || wall <= 0 {
		return line
	}
	workers := "workers"
	if parallel == 1 {
		workers = "worker"
	}
	return line + fmt.Sprintf(" (%v per seed, %.1f seeds/min on %d %s)",
		(s.Wall/time.Duration(s.Seeds)).Round(time.Millisecond),
		float64(s.Seeds)/wall.Minutes(), parallel, workers)
}

// progress shows a sweep's progress on stderr: a bar redrawn in place on a
// terminal, else (in CI) a plain line every few seconds. A hunt (no set
// number of seeds) shows a count, and the time left of its budget.
type progress struct {
	w        io.Writer
	total    int // 0: no set number
	budget   time.Duration
	bar      bool // redraw in place
	plain    bool // periodic lines
	start    time.Time
	last     time.Time
	drawn    bool
	interval time.Duration // between plain lines
}

func newProgress(w io.Writer, total int, force bool, budget time.Duration) *progress {
	p := &progress{w: w, total: total, budget: budget, start: time.Now(), last: time.Now()}
	if total != 1 {
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

func (p *progress) update(s *sim.Summary) {
	now := time.Now()
	if p.plain && (now.Sub(p.last) < p.interval || s.Seeds == p.total) {
		return // a line every interval; the summary follows the last seed
	}
	if !p.bar && !p.plain {
		return
	}
	p.last = now
	status := p.status(s, now.Sub(p.start))
	if p.plain {
		fmt.Fprintf(p.w, "progress: %s\n", status)
		return
	}
	if p.total == 0 {
		fmt.Fprintf(p.w, "\r\033[K%s", status)
	} else {
		const width = 30
		filled := width * s.Seeds / p.total
		fmt.Fprintf(p.w, "\r\033[K[%s%s] %s", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), status)
	}
	p.drawn = true
}

// status is the progress after elapsed.
func (p *progress) status(s *sim.Summary, elapsed time.Duration) string {
	rate := float64(s.Seeds) / elapsed.Seconds()
	left := ""
	switch {
	case p.total > 0 && rate > 0 && s.Seeds < p.total:
		left = fmt.Sprintf(", ETA %v", (time.Duration(float64(p.total-s.Seeds) / rate * float64(time.Second))).Round(time.Second))
	case p.total == 0 && p.budget > 0:
		left = fmt.Sprintf(", %v of the budget left", max(0, p.budget-elapsed).Round(time.Second))
	}
	of := ""
	if p.total > 0 {
		of = fmt.Sprintf("/%d", p.total)
	}
	return fmt.Sprintf("%d%s seeds, %d failed, %d ops, %.1f seeds/s%s", s.Seeds, of, len(s.Failed), s.Ops, rate, left)
}

// clear erases the bar so that other output can be written.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}
