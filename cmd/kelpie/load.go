package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/llm/llmtest"
)

const loadUsage = `Usage: kelpie load [flags]

Drives a Kelpie server with a mix of operations from --clients concurrent
clients for --duration, with a live progress line on stderr, then prints
each operation's throughput and p50/p99/p999 latency (--json for scripts).
Operations: create (an agent with two blocks, the tag "load" and one of
loadTags tags "load-0".."load-99"), edit (a block of a random agent), get
(a random agent), list (a page of 20 agents), count (of every agent),
count-tag (of the agents with one of the tags "load-N", 1% of those
created here), turn (a message to a random agent, answered by a model).
--agents N creates N agents first.

Without --url it starts a server in this process (durable storage in a
temporary directory, or --data-dir) whose model is a built-in
OpenAI-compatible double on loopback that echoes the user's message. With
--url, turns need the server's model to answer: --double-addr starts the
double at an address to give that server as OPENAI_BASE_URL=http://ADDR/v1.

The client runs on the same machine as what it measures, and shares its
CPUs with it: its figures are a floor.

Flags:
`

// Limits of kelpie load.
const (
	loadAgentPool     = 100_000         // agents remembered to address; later ones replace random ones
	loadProgressEvery = time.Second     // how often the progress line is redrawn
	loadRequestLimit  = 2 * time.Minute // one request's deadline
	loadModel         = "openai/gpt-4o-mini"
	loadTags          = 100 // each created agent has one of the tags load-0 .. load-99
)

type loadConfig struct {
	url, apiKey, mix, dataDir, doubleAddr string
	clients, agents                       int
	duration                              time.Duration
	asJSON                                bool
}

func loadCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c loadConfig
	fs.StringVar(&c.url, "url", "", "the server to drive, such as http://127.0.0.1:8283; empty starts one in this process")
	fs.StringVar(&c.apiKey, "api-key", env("KELPIE_API_KEY", ""), "the server's API key, if it has one (env KELPIE_API_KEY)")
	fs.StringVar(&c.mix, "mix", "create=1,edit=2,get=4,list=1,turn=1", "operations and their weights")
	fs.IntVar(&c.clients, "clients", 16, "concurrent clients")
	fs.IntVar(&c.agents, "agents", 0, "agents to create before the run")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to run the mix")
	fs.BoolVar(&c.asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&c.dataDir, "data-dir", "", "data directory of the in-process server (default: a temporary one, removed after)")
	fs.StringVar(&c.doubleAddr, "double-addr", "", "with --url: start the model double at this address, such as 127.0.0.1:8399, for the server to use")
	if code, ok := parseFlags(fs, loadUsage, args); !ok {
		return code
	}
	mix, err := parseMix(c.mix)
	if err == nil && (c.clients < 1 || c.duration <= 0 || c.agents < 0 || fs.NArg() > 0) {
		err = errors.New("want --clients at least 1, a positive --duration, --agents 0 or more, and no arguments")
	}
	if err != nil {
		fmt.Fprintf(stderr, "kelpie load: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := runLoad(ctx, c, mix, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kelpie load: %v\n", err)
		return 1
	}
	if err := rep.write(stdout, c.asJSON); err != nil {
		fmt.Fprintf(stderr, "kelpie load: %v\n", err)
		return 1
	}
	return 0
}

// loadOps are the operations a mix may name.
var loadOps = []string{"create", "edit", "get", "list", "count", "count-tag", "turn"}

// mix is a weighted choice of operations.
type mix struct {
	ops     []string
	weights []int
	total   int
}

func parseMix(s string) (mix, error) {
	var m mix
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(w)
		if !ok || err != nil || n < 0 || !slices.Contains(loadOps, name) {
			return mix{}, fmt.Errorf("--mix %q: want op=weight,... with ops among %s", s, strings.Join(loadOps, ", "))
		}
		if n > 0 {
			m.ops, m.weights, m.total = append(m.ops, name), append(m.weights, n), m.total+n
		}
	}
	if m.total == 0 {
		return mix{}, fmt.Errorf("--mix %q has no operation with a weight", s)
	}
	return m, nil
}

func (m mix) pick(r *rand.Rand) string {
	n := r.IntN(m.total)
	for i, w := range m.weights {
		if n < w {
			return m.ops[i]
		}
		n -= w
	}
	return m.ops[len(m.ops)-1]
}

// runLoad seeds, runs the mix and reports.
func runLoad(ctx context.Context, c loadConfig, m mix, progress io.Writer) (loadReport, error) {
	target, cleanup, err := loadTarget(ctx, c, progress)
	if err != nil {
		return loadReport{}, err
	}
	defer cleanup()
	l := &loader{
		base:   strings.TrimRight(target, "/"),
		apiKey: c.apiKey,
		client: &http.Client{Timeout: loadRequestLimit, Transport: &http.Transport{MaxIdleConnsPerHost: c.clients, MaxConnsPerHost: c.clients}},
	}
	if c.agents > 0 {
		if err := l.seed(ctx, c.agents, c.clients, progress); err != nil {
			return loadReport{}, err
		}
	}
	stats := newLoadStats()
	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	start := clock.Real{}.Now()
	done := make(chan struct{})
	go showProgress(stats, start, progress, done)
	var wg sync.WaitGroup
	for i := range c.clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			for runCtx.Err() == nil {
				op := m.pick(r)
				t0 := clock.Real{}.Now()
				err := l.do(runCtx, op, r)
				if runCtx.Err() != nil {
					return // cut off by the end of the run: not a result
				}
				stats.record(op, clock.Real{}.Now().Sub(t0), err)
			}
		})
	}
	wg.Wait()
	elapsed := clock.Real{}.Now().Sub(start)
	close(done)
	return stats.report(l.base, c.clients, c.agents, elapsed), nil
}

// loadTarget is the URL to drive: --url, or a server started here (with
// the model double), stopped by cleanup.
func loadTarget(ctx context.Context, c loadConfig, progress io.Writer) (url string, cleanup func(), err error) {
	log := slog.New(slog.NewTextHandler(progress, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if c.url != "" {
		if c.doubleAddr == "" {
			return c.url, func() {}, nil
		}
		double, err := llmtest.Listen(doubleReporter{log}, c.doubleAddr)
		if err != nil {
			return "", nil, fmt.Errorf("--double-addr: %w", err)
		}
		double.ForgetRequests()
		fmt.Fprintf(progress, "model double at %s\n", double.OpenAIBaseURL())
		return c.url, double.Close, nil
	}
	double := llmtest.Start(doubleReporter{log})
	double.ForgetRequests()
	dir, removeDir := c.dataDir, func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "kelpie-load-"); err != nil {
			double.Close()
			return "", nil, err
		}
		removeDir = func() { os.RemoveAll(dir) }
	}
	// The in-process server reads its providers from the environment.
	os.Setenv("OPENAI_BASE_URL", double.OpenAIBaseURL())
	os.Setenv("OPENAI_API_KEY", "kelpie-load")
	srvCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	cfg := serveConfig{addr: "127.0.0.1:0", dataDir: filepath.Clean(dir), storage: "pebble", apiKey: c.apiKey,
		idleTimeout: time.Minute, maxActivations: 100_000, minFreeSpace: "256MiB"}
	if err := cfg.resolve(); err != nil { // serve's process settings
		stop()
		double.Close()
		removeDir()
		return "", nil, err
	}
	go func() { errc <- runServer(srvCtx, cfg, log, ready) }()
	select {
	case addr := <-ready:
		return "http://" + addr, func() {
			stop()
			if err := <-errc; err != nil {
				log.Error("in-process server", "err", err)
			}
			double.Close()
			removeDir()
		}, nil
	case err := <-errc:
		stop()
		double.Close()
		removeDir()
		return "", nil, err
	}
}

// doubleReporter logs what the model double finds wrong.
type doubleReporter struct{ log *slog.Logger }

func (r doubleReporter) Errorf(format string, args ...any) { r.log.Error(fmt.Sprintf(format, args...)) }
func (r doubleReporter) Fatalf(format string, args ...any) { r.log.Error(fmt.Sprintf(format, args...)) }
func (r doubleReporter) Logf(format string, args ...any)   { r.log.Warn(fmt.Sprintf(format, args...)) }

// showProgress redraws a line of totals on w until done is closed.
func showProgress(stats *loadStats, start time.Time, w io.Writer, done <-chan struct{}) {
	eol := "\n"
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			eol = "\r" // a terminal: redraw one line
		}
	}
	t := time.NewTicker(loadProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			if eol == "\r" {
				fmt.Fprintln(w)
			}
			return
		case now := <-t.C:
			ok, failed := stats.totals()
			secs := now.Sub(start).Seconds()
			fmt.Fprintf(w, "%5.0fs  %d ok  %.0f/s  %d errors%s", secs, ok, float64(ok)/secs, failed, eol)
		}
	}
}

// loader sends the operations.
type loader struct {
	base, apiKey string
	client       *http.Client

	mu     sync.Mutex
	agents []string
}

// remember adds an agent to address, replacing a random one once the pool
// is full.
func (l *loader) remember(id string, r *rand.Rand) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.agents) < loadAgentPool {
		l.agents = append(l.agents, id)
		return
	}
	l.agents[r.IntN(len(l.agents))] = id
}

func (l *loader) randomAgent(ctx context.Context, r *rand.Rand) (string, error) {
	l.mu.Lock()
	n := len(l.agents)
	var id string
	if n > 0 {
		id = l.agents[r.IntN(n)]
	}
	l.mu.Unlock()
	if n > 0 {
		return id, nil
	}
	return l.create(ctx, r) // nothing to address yet
}

// seed creates n agents from clients goroutines.
func (l *loader) seed(ctx context.Context, n, clients int, progress io.Writer) error {
	start := clock.Real{}.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		next  int
		first error
	)
	for i := range clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for {
				mu.Lock()
				if next >= n || first != nil {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				if _, err := l.create(ctx, r); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("seeding agents: %w", first)
	}
	d := clock.Real{}.Now().Sub(start)
	fmt.Fprintf(progress, "seeded %d agents in %.1fs (%.0f/s)\n", n, d.Seconds(), float64(n)/d.Seconds())
	return nil
}

func (l *loader) do(ctx context.Context, op string, r *rand.Rand) error {
	switch op {
	case "create":
		_, err := l.create(ctx, r)
		return err
	case "list":
		return l.call(ctx, "GET", "/v1/agents?limit=20", nil, nil)
	case "count":
		return l.call(ctx, "GET", "/v1/agents/count", nil, nil)
	case "count-tag":
		return l.call(ctx, "GET", "/v1/agents/count?tags=load-"+strconv.Itoa(r.IntN(loadTags)), nil, nil)
	}
	id, err := l.randomAgent(ctx, r)
	if err != nil {
		return err
	}
	switch op {
	case "edit":
		return l.call(ctx, "PATCH", "/v1/agents/"+id+"/core-memory/blocks/human", map[string]string{"value": "Name: Ada " + strconv.Itoa(r.IntN(1e9))}, nil)
	case "get":
		return l.call(ctx, "GET", "/v1/agents/"+id, nil, nil)
	}
	msg := map[string]any{"messages": []map[string]string{{"role": "user", "content": "How are you today?"}}}
	return l.call(ctx, "POST", "/v1/agents/"+id+"/messages", msg, nil)
}

func (l *loader) create(ctx context.Context, r *rand.Rand) (string, error) {
	body := map[string]any{
		"name": "load-" + strconv.Itoa(r.IntN(1e9)), "model": loadModel, "tags": []string{"load", "load-" + strconv.Itoa(r.IntN(loadTags))},
		"memory_blocks": []map[string]string{{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "A helpful agent."}},
	}
	var a struct {
		ID string `json:"id"`
	}
	if err := l.call(ctx, "POST", "/v1/agents", body, &a); err != nil {
		return "", err
	}
	l.remember(a.ID, r)
	return a.ID, nil
}

// statusError is an answer other than 200.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// errorClass groups errors for the report: by status, or as a network error.
func errorClass(err error) string {
	var se *statusError
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d %s", se.status, se.body)
	}
	return "network: " + err.Error()
}

// maxErrorBody bounds how much of an error answer the report quotes.
const maxErrorBody = 120

func (l *loader) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, l.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if l.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+l.apiKey)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		msg := string(data)
		if len(msg) > maxErrorBody {
			msg = msg[:maxErrorBody] + "..."
		}
		return &statusError{resp.StatusCode, msg}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}
