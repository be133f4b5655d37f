package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// createBody is the create request of the create benchmarks.
var createBody = []byte(`{"name":"bench","model":"openai/gpt-4o-mini","memory_blocks":[{"label":"human","value":"Name: Ada"},{"label":"persona","value":"helpful"}]}`)

// BenchmarkHTTPCreateAgent measures durable agent creates through the HTTP
// API on the Pebble engine (every create is one synced commit) at several
// client counts. Compare with BenchmarkPebbleSyncedCommit in kv/pebble, the
// raw synced-commit rate of the same disk, and BenchmarkCreateFloorRatio,
// which measures the bare HTTP floor in the same run.
func BenchmarkHTTPCreateAgent(b *testing.B) {
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			base, stop := startBenchServer(b)
			b.ResetTimer()
			cpu := processCPU(b)
			b.ReportMetric(postCreates(b, base, clients, b.N), "creates/s")
			b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/create")
			b.StopTimer()
			stop()
		})
	}
}

// serveSettings resolves cfg, applying the process settings 'kelpie serve'
// applies (its GOGC and GOMAXPROCS) until the benchmark ends.
func serveSettings(b *testing.B, cfg *serveConfig) {
	procs := runtime.GOMAXPROCS(0)
	b.Cleanup(func() { runtime.GOMAXPROCS(procs) }) // testing warns of a benchmark that leaves it changed
	if err := cfg.resolve(); err != nil {
		b.Fatal(err)
	}
}

// startBenchServer starts kelpie on Pebble in a temporary directory, with
// the process settings 'kelpie serve' applies.
func startBenchServer(b *testing.B) (base string, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg := serveConfig{addr: "127.0.0.1:0", storage: "pebble", dataDir: b.TempDir(),
		idleTimeout: time.Minute, maxActivations: 100_000}
	serveSettings(b, &cfg)
	go func() { done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	return "http://" + <-ready, func() {
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// processCPU is the CPU time (user and system) this process has used: with
// the server and its clients in one process, its growth per create is a
// figure that other programs on the machine disturb far less than the
// rate.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostTicks reads the host's CPU time from /proc/stat, in clock ticks:
// all of it, and what the hypervisor stole (given to other guests while
// this one had work). ok is false where there is no /proc/stat.
func hostTicks() (total, steal uint64, ok bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		if i < 8 { // guest time is counted in user time already
			total += n
		}
		if i == 7 {
			steal = n
		}
	}
	return total, steal, true
}

// stealShare returns a function that reports the share of the host's CPU
// time stolen since stealShare was called, in percent (-1: unknown).
func stealShare() func() float64 {
	total0, steal0, ok0 := hostTicks()
	return func() float64 {
		total, steal, ok := hostTicks()
		if !ok0 || !ok || total <= total0 {
			return -1
		}
		return 100 * float64(steal-steal0) / float64(total-total0)
	}
}

// postCreates sends n create requests to base from clients goroutines
// and returns how many were answered per second.
func postCreates(b *testing.B, base string, clients, n int) float64 {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				resp, err := client.Post(base+"/v1/agents/", "application/json", bytes.NewReader(createBody))
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("create: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// floorRounds is how many times BenchmarkCreateFloorRatio alternates
// between the floor and kelpie.
const floorRounds = 4

// BenchmarkCreateFloorRatio measures, in one run and at each client count,
// durable creates through kelpie and the floor under them: a bare net/http
// server that decodes the same create body and answers with an agent's JSON
// (as kelpie returned it, decoded once and encoded again per request), with
// no storage, actor or checks. It reports both rates and kelpie's share of
// the floor (issue 13 asks for 50% at 16 clients).
func BenchmarkCreateFloorRatio(b *testing.B) {
	for _, clients := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			base, stop := startBenchServer(b)
			defer stop()
			floor := startFloorServer(b, base)
			// Alternate in rounds, so that a change in what else the
			// machine runs weighs on both rates alike.
			var floorSecs, kelpieSecs float64
			b.ResetTimer()
			for round := range floorRounds {
				n := b.N / floorRounds
				if round == 0 {
					n += b.N % floorRounds
				}
				if n == 0 {
					continue
				}
				floorSecs += float64(n) / postCreates(b, floor, clients, n)
				kelpieSecs += float64(n) / postCreates(b, base, clients, n)
			}
			b.StopTimer()
			floorRate, kelpieRate := float64(b.N)/floorSecs, float64(b.N)/kelpieSecs
			b.ReportMetric(kelpieRate, "creates/s")
			b.ReportMetric(floorRate, "floor/s")
			b.ReportMetric(100*kelpieRate/floorRate, "%floor")
		})
	}
}

// startFloorServer starts the bare HTTP floor, answering with the JSON of
// an agent that kelpie at base creates.
func startFloorServer(b *testing.B, base string) string {
	resp, err := http.Post(base+"/v1/agents/", "application/json", bytes.NewReader(createBody))
	if err != nil {
		b.Fatal(err)
	}
	var agent map[string]any
	err = json.NewDecoder(resp.Body).Decode(&agent)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req letta.CreateAgentRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		out, err := json.Marshal(agent)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// Turn benchmarks: an in-process kelpie on Pebble, over real loopback HTTP,
// whose agents think with the llmtest double (also in this process, on
// loopback, speaking OpenAI's wire format). Each of agents workers sends
// one-message turns, one after the other, to agents of its own; the turns
// of a run are spread evenly over the workers. An agent takes at most
// turnsPerAgent turns, so that the history sent to the model (and scanned
// by kelpie) stays the same size whatever b.N is.
//
// The double runs in the same process: its CPU (it decodes and validates
// every request) competes with kelpie's on this machine. A CPU profile
// (-test.cpuprofile) tells the three apart by the label "part" of the
// goroutines (and of those they start): "kelpie" (the server, its model
// client included), "double" and "client" (the benchmark's HTTP client);
// what has no label is the runtime's own (the garbage collector's workers,
// the scheduler).

const (
	turnsPerAgent = 20
	turnReplyText = "Noted. I will remember that."
	turnTokenTag  = "bench-turn-"
)

// turnBench is a kelpie server and its double.
type turnBench struct {
	b      *testing.B
	base   string
	client *http.Client
	double *llmtest.Server

	mu     sync.Mutex
	served map[string]chan time.Duration // by turn token: the double's time
	// syncs are the commits' waits for their WAL sync while timing is on
	// (nil: off).
	syncs []time.Duration
}

// onSyncWait is kelpie's serveConfig.onSyncWait: it keeps each wait while
// the turns are timed.
func (tb *turnBench) onSyncWait(d time.Duration) {
	tb.mu.Lock()
	if tb.syncs != nil {
		tb.syncs = append(tb.syncs, d)
	}
	tb.mu.Unlock()
}

// timeSyncs starts keeping the commits' sync waits and returns the
// function that stops and returns them, sorted.
func (tb *turnBench) timeSyncs() (stop func() []time.Duration) {
	tb.mu.Lock()
	tb.syncs = make([]time.Duration, 0, 4*tb.b.N)
	tb.mu.Unlock()
	return func() []time.Duration {
		tb.mu.Lock()
		got := tb.syncs
		tb.syncs = nil
		tb.mu.Unlock()
		slices.Sort(got)
		return got
	}
}

// startTurnBench starts the double, answering every request with
// turnReplyText after delay (in chunks of chunkSize when streamed), and a
// kelpie server configured to use it, with the process settings of 'kelpie
// serve' (its GOGC). Both stop when the (sub-)benchmark ends.
func startTurnBench(b *testing.B, workers int, delay time.Duration) *turnBench {
	var double *llmtest.Server
	pprof.Do(context.Background(), pprof.Labels("part", "double"), func(context.Context) { double = llmtest.NewServer(b) })
	double.SetDefault(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: turnReplyText, Delay: delay, ChunkSize: 8}
	})
	double.ForgetRequests() // OnServed sees them; kept, they would grow the heap the collector scans
	tb := &turnBench{b: b, double: double, served: map[string]chan time.Duration{}}
	double.OnServed(func(req llmtest.Request, d time.Duration) {
		if req.Rejected != "" {
			b.Errorf("the double rejected a request: %s", req.Rejected)
		}
		tok := turnToken(req.LastUserText())
		tb.mu.Lock()
		ch := tb.served[tok]
		delete(tb.served, tok)
		tb.mu.Unlock()
		if ch != nil {
			ch <- d
		}
	})
	// runServer configures its providers with providers.FromEnv(os.Getenv).
	b.Setenv("OPENAI_BASE_URL", double.OpenAIBaseURL())
	b.Setenv("OPENAI_API_KEY", "sk-llmtest")

	cfg := serveConfig{addr: "127.0.0.1:0", storage: "pebble", dataDir: b.TempDir(),
		idleTimeout: time.Hour, maxActivations: 100_000, onSyncWait: tb.onSyncWait}
	serveSettings(b, &cfg)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go pprof.Do(ctx, pprof.Labels("part", "kelpie"), func(ctx context.Context) {
		done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), ready)
	})
	select {
	case addr := <-ready:
		tb.base = "http://" + addr
	case err := <-done:
		cancel()
		b.Fatal(err)
	}
	// Registered after the double's: runs first, stopping kelpie before
	// the double goes away.
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	tb.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	b.Cleanup(tb.client.CloseIdleConnections)
	return tb
}

// turnToken finds the turn token in a user message.
func turnToken(text string) string {
	i := strings.Index(text, turnTokenTag)
	if i < 0 {
		return ""
	}
	j := i + len(turnTokenTag)
	for j < len(text) && text[j] >= '0' && text[j] <= '9' {
		j++
	}
	return text[i:j]
}

// expect registers a turn token and returns the channel that receives the
// double's time for it.
func (tb *turnBench) expect(tok string) chan time.Duration {
	ch := make(chan time.Duration, 1)
	tb.mu.Lock()
	tb.served[tok] = ch
	tb.mu.Unlock()
	return ch
}

// createAgents creates n agents, a few at a time.
func (tb *turnBench) createAgents(n int) []string {
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, 8) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				var a agentJSON
				body := map[string]any{"name": fmt.Sprintf("bench-%d", i), "model": "openai/gpt-4o-mini",
					"memory_blocks": []map[string]string{{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "helpful"}}}
				if _, err := call(tb.client, "POST", tb.base+"/v1/agents/", body, &a); err != nil {
					tb.b.Error(err)
					return
				}
				ids[i] = a.ID
			}
		})
	}
	wg.Wait()
	if tb.b.Failed() {
		tb.b.FailNow()
	}
	return ids
}

// turnSample is one turn as the client saw it.
type turnSample struct {
	latency time.Duration // request sent to response read
	first   time.Duration // to the first assistant token (streaming only)
	llm     time.Duration // the double's own time
}

// turns is what runTurns measured.
type turns struct {
	samples []turnSample    // the timed turns
	cold    []turnSample    // each agent's first turn, all at once, untimed
	elapsed time.Duration   // wall time of the timed turns
	cpu     time.Duration   // the process's CPU time over them (kelpie's, the double's and the client's)
	syncs   []time.Duration // the commits' waits for their WAL sync over them, sorted
	steal   float64         // the host's CPU time stolen by its hypervisor over them, % (-1: unknown)
}

// runTurns runs b.N turns over workers workers, each sending its share one
// after the other to agents of its own. Each agent first takes one turn
// before the timer starts, every worker at once: a turn on a cold agent
// (its caches empty, the connections to it and to the double new) is a
// start-up burst, reported apart from the steady state.
func (tb *turnBench) runTurns(workers int, streaming bool) turns {
	b := tb.b
	share := func(w int) int {
		n := b.N / workers
		if w < b.N%workers {
			n++
		}
		return n
	}
	agents := make([][]string, workers)
	total := 0
	for w := range workers {
		total += (share(w) + turnsPerAgent - 1) / turnsPerAgent
	}
	ids := tb.createAgents(total)
	for w := range workers {
		k := (share(w) + turnsPerAgent - 1) / turnsPerAgent
		agents[w], ids = ids[:k], ids[k:]
	}

	var seq atomic.Int64
	each := func(f func(w int) []turnSample) []turnSample {
		samples := make([][]turnSample, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("part", "client")))
				samples[w] = f(w)
			})
		}
		wg.Wait()
		return slices.Concat(samples...)
	}
	take := func(agentID string) (turnSample, bool) {
		s, err := tb.turn(agentID, fmt.Sprintf("%s%d", turnTokenTag, seq.Add(1)), streaming)
		if err != nil {
			b.Error(err)
		}
		return s, err == nil
	}
	var out turns
	out.cold = each(func(w int) []turnSample {
		var got []turnSample
		for _, id := range agents[w] {
			s, ok := take(id)
			if !ok {
				break
			}
			got = append(got, s)
		}
		return got
	})
	b.ResetTimer()
	synced, stolen := tb.timeSyncs(), stealShare()
	start, cpu := time.Now(), processCPU(b)
	out.samples = each(func(w int) []turnSample {
		var got []turnSample
		for i := range share(w) {
			s, ok := take(agents[w][i/turnsPerAgent])
			if !ok {
				break
			}
			got = append(got, s)
		}
		return got
	})
	out.elapsed, out.cpu = time.Since(start), processCPU(b)-cpu
	out.syncs, out.steal = synced(), stolen()
	b.StopTimer()
	return out
}

// turn sends one user message and waits for the answer.
func (tb *turnBench) turn(agentID, tok string, streaming bool) (turnSample, error) {
	var s turnSample
	ch := tb.expect(tok)
	text := "Please remember this, " + tok + ": my favourite colour is teal."
	path, body := "/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}}
	if streaming {
		path = "/messages/stream"
		body["stream_tokens"] = true
		body["include_pings"] = false
	}
	data, _ := json.Marshal(body)
	start := time.Now()
	resp, err := tb.client.Post(tb.base+"/v1/agents/"+agentID+path, "application/json", bytes.NewReader(data))
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	var out []byte
	if streaming {
		var got strings.Builder
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if s.first == 0 && strings.Contains(line, `"message_type":"assistant_message"`) {
				s.first = time.Since(start)
			}
			got.WriteString(line)
			if err == io.EOF {
				break
			}
			if err != nil {
				return s, err
			}
		}
		out = []byte(got.String())
	} else {
		out, err = io.ReadAll(resp.Body)
		if err != nil {
			return s, err
		}
	}
	s.latency = time.Since(start)
	if resp.StatusCode != 200 {
		return s, fmt.Errorf("turn: %d %s", resp.StatusCode, out)
	}
	if streaming {
		if s.first == 0 || !bytes.Contains(out, []byte(`"stop_reason":"end_turn"`)) || !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
			return s, fmt.Errorf("turn: unexpected stream:\n%s", out)
		}
	} else {
		type message struct {
			MessageType string `json:"message_type"`
			Content     any    `json:"content"`
		}
		var r struct {
			Messages   []message `json:"messages"`
			StopReason struct {
				StopReason string `json:"stop_reason"`
			} `json:"stop_reason"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			return s, err
		}
		answered := slices.ContainsFunc(r.Messages, func(m message) bool {
			return m.MessageType == "assistant_message" && m.Content == turnReplyText
		})
		if r.StopReason.StopReason != "end_turn" || !answered {
			return s, fmt.Errorf("turn: unexpected answer: %s", out)
		}
	}
	select {
	case s.llm = <-ch:
	case <-time.After(10 * time.Second):
		return s, fmt.Errorf("turn %s: the double never reported it (one model call a turn expected)", tok)
	}
	return s, nil
}

// percentile returns the p-th percentile (nearest rank) of sorted ds, in
// milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

func sortedDurations(samples []turnSample, f func(turnSample) time.Duration) []time.Duration {
	ds := make([]time.Duration, len(samples))
	for i, s := range samples {
		ds[i] = f(s)
	}
	slices.Sort(ds)
	return ds
}

// turnLatencyDelay is how long the double thinks before each answer in
// BenchmarkTurnLatency.
const turnLatencyDelay = 20 * time.Millisecond

// BenchmarkTurnLatency measures kelpie's overhead on a turn: the turn's
// latency as the client sees it (non-streaming POST .../messages, the
// answer read) less the double's own time to serve the turn's one model
// call, measured at the double (its Delay of 20ms included). Reported as
// the median and 99th percentile over the run's turns, with 1, 32 and 128
// agents taking turns at once; also the raw latencies and turns/s. The
// same for each agent's first turn, all agents' at once before the timer
// starts (runTurns), as cold-overhead-*. Beside them, sync-wait-* is how
// long the timed turns' commits waited for their WAL sync: every turn
// waits for one before it answers, so that p99 is the disk's own share of
// the overhead's, measured in the same run; and host-steal-% is the share
// of the host's CPU time its hypervisor gave to other guests meanwhile (a
// virtual machine's noise, which the percentiles feel).
// The stream/ variant follows the turn over POST .../messages/stream with
// token streaming and reports the time to the first assistant token.
//
// Run with a fixed count for stable percentiles (at 32 agents, 100 turns
// each):
//
//	go test -run '^$' -bench BenchmarkTurnLatency -benchtime 3200x ./cmd/kelpie
func BenchmarkTurnLatency(b *testing.B) {
	for _, agents := range []int{1, 32, 128} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) {
			tb := startTurnBench(b, agents, turnLatencyDelay)
			reportTurns(b, tb.runTurns(agents, false))
		})
	}
	b.Run("stream/agents=1", func(b *testing.B) {
		tb := startTurnBench(b, 1, turnLatencyDelay)
		run := tb.runTurns(1, true)
		reportTurns(b, run)
		first := sortedDurations(run.samples, func(s turnSample) time.Duration { return s.first })
		b.ReportMetric(percentile(first, 50), "first-token-p50-ms")
		b.ReportMetric(percentile(first, 99), "first-token-p99-ms")
	})
}

func reportTurns(b *testing.B, run turns) {
	samples := run.samples
	if len(samples) == 0 {
		return
	}
	overhead := func(s turnSample) time.Duration { return s.latency - s.llm }
	over := sortedDurations(samples, overhead)
	cold := sortedDurations(run.cold, overhead)
	lat := sortedDurations(samples, func(s turnSample) time.Duration { return s.latency })
	llmt := sortedDurations(samples, func(s turnSample) time.Duration { return s.llm })
	b.ReportMetric(percentile(over, 50), "overhead-p50-ms")
	b.ReportMetric(percentile(over, 99), "overhead-p99-ms")
	b.ReportMetric(percentile(cold, 50), "cold-overhead-p50-ms")
	b.ReportMetric(percentile(cold, 99), "cold-overhead-p99-ms")
	b.ReportMetric(percentile(lat, 50), "latency-p50-ms")
	b.ReportMetric(percentile(lat, 99), "latency-p99-ms")
	b.ReportMetric(percentile(llmt, 50), "llm-p50-ms")
	b.ReportMetric(percentile(run.syncs, 50), "sync-wait-p50-ms")
	b.ReportMetric(percentile(run.syncs, 99), "sync-wait-p99-ms")
	if run.steal >= 0 {
		b.ReportMetric(run.steal, "host-steal-%")
	}
	b.ReportMetric(float64(len(samples))/run.elapsed.Seconds(), "turns/s")
}

// BenchmarkTurnThroughput measures turns/s with the double answering at
// once, with 1, 32 and 128 agents taking turns at once (each agent one turn
// at a time, as kelpie serialises an agent's turns).
//
//	go test -run '^$' -bench BenchmarkTurnThroughput -benchtime 2000x ./cmd/kelpie
func BenchmarkTurnThroughput(b *testing.B) {
	for _, agents := range []int{1, 32, 128} {
		b.Run(fmt.Sprintf("agents=%d", agents), func(b *testing.B) {
			tb := startTurnBench(b, agents, 0)
			run := tb.runTurns(agents, false)
			b.ReportMetric(float64(len(run.samples))/run.elapsed.Seconds(), "turns/s")
			b.ReportMetric(float64(run.cpu.Microseconds())/float64(max(1, len(run.samples))), "cpu-µs/turn")
			lat := sortedDurations(run.samples, func(s turnSample) time.Duration { return s.latency })
			b.ReportMetric(percentile(lat, 50), "latency-p50-ms")
			b.ReportMetric(percentile(lat, 99), "latency-p99-ms")
		})
	}
}
