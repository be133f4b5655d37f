package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/kv"
)

// defaultModel is the model of agents created without one.
const defaultModel = "openai/gpt-4o-mini"

// system is the simulated process and what outlives it: the disk, the fault
// injector, the clock, the recorder.
type system struct {
	cfg   Config
	disk  *kv.MemEngine
	inj   *injector
	clock *Clock
	rec   *recorder
	ids   *lockedReader
	log   *slog.Logger
	llm   *scriptedLLM
	tools *simTools
	mcp   ledger // the simulated MCP server's (mcp.go)

	mu      sync.Mutex
	cur     *incarnation
	all     []*incarnation
	closing bool
	final   *audit         // what the audit after the run read back
	checked map[string]int // what the checkers examined

	vmu        sync.Mutex
	online     []rawViolation
	stop       chan struct{}
	stopClosed bool
}

// rawViolation is a violation found while the run goes on; its history is
// attached at the end.
type rawViolation struct {
	checker, object, msg string
	at                   int64
}

// incarnation is one start of the simulated process: a storage view, the
// services and their HTTP handlers.
type incarnation struct {
	n        int
	eng      *faultEngine // nil in a cluster run
	cl       *simCluster  // the nodes of a cluster run; nil otherwise
	svcs     []*agent.Service
	handlers []http.Handler
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{} // closed on crash or at the end
	crashSeq atomic.Int64  // logical time of the crash; 0 while alive
	stopped  chan struct{} // closed once its services are closed
	doneOnce sync.Once
	stopOnce sync.Once
}

// end closes done: the incarnation is over.
func (inc *incarnation) end() { inc.doneOnce.Do(func() { close(inc.done) }) }

func newSystem(cfg Config) *system {
	c := NewClock(cfg.Clock)
	rec := newRecorder(c)
	s := &system{
		cfg:   cfg,
		disk:  kv.NewMemEngine(),
		clock: c,
		rec:   rec,
		inj:   newInjector(cfg.Faults, cfg.Seed, rec),
		ids:   &lockedReader{rng: newRand(cfg.Seed, streamIDs)},
		stop:  make(chan struct{}),
	}
	s.log = slog.New(&logHandler{sys: s})
	s.llm = newScriptedLLM(s)
	s.tools = newSimTools(s)
	s.mcp = newLedger()
	return s
}

// start brings up a new incarnation over the disk. Called with s.mu held
// (or before any client runs).
func (s *system) start() (*incarnation, error) {
	inc := &incarnation{n: len(s.all), done: make(chan struct{}), stopped: make(chan struct{})}
	if isCluster(s.cfg.Faults) {
		inc.ctx, inc.cancel = context.WithCancel(context.Background())
		if err := s.startCluster(inc); err != nil {
			inc.cancel()
			return nil, err
		}
		s.all = append(s.all, inc)
		return inc, nil
	}
	inc.eng = newFaultEngine(s, inc.n, func(reason string) { s.crash(inc, reason) })
	var store kv.Store = &pathStore{inner: kv.NewDB(inc.eng), sys: s}
	replicas := 1
	if v := s.cfg.Variant; v != nil {
		if v.WrapStore != nil {
			store = v.WrapStore(store, VariantEnv{
				Clock: s.clock, IdleTimeout: s.cfg.IdleTimeout, Done: inc.done,
				Seed: splitmix64(s.cfg.Seed ^ streamVariant + uint64(inc.n)),
			})
		}
		replicas = max(1, v.Replicas)
	}
	for range replicas {
		svc, err := agent.New(s.serviceConfig(store, s.clock, inc, nil))
		if err != nil {
			return nil, err
		}
		inc.svcs = append(inc.svcs, svc)
		inc.handlers = append(inc.handlers, api.NewHandler(svc, api.Options{}))
	}
	inc.ctx, inc.cancel = context.WithCancel(context.Background())
	s.all = append(s.all, inc)
	return inc, nil
}

func (s *system) current() *incarnation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// serviceConfig is the configuration of a simulated node's agent service
// in incarnation inc: the simulated model, sandbox, MCP server and
// embeddings provider, on the given store and clock (placement: nil on a
// single node).
func (s *system) serviceConfig(store kv.Store, clk *Clock, inc *incarnation, placement actor.Placement) agent.Config {
	return agent.Config{
		Store:        store,
		Clock:        clk,
		Logger:       s.log,
		Runtime:      actor.Config{IdleTimeout: s.cfg.IdleTimeout, MaxActivations: s.cfg.MaxActivations, Placement: placement},
		Rand:         s.ids,
		DefaultModel: defaultModel,
		LLM:          &llmProvider{m: s.llm, inc: inc},
		Tools:        toolRunner{t: s.tools, inc: inc},
		MCP:          mcpClient{l: &s.mcp, sys: s, inc: inc},
		Embedder:     simEmbedder{sys: s},
		// Natively the simulated clock runs at real speed; pauses between
		// model retries stay short so seeds stay fast.
		LLMRetryBackoff: time.Millisecond,
	}
}

// crash kills inc, as a process crash does: its storage view fails every
// call from now on, its in-flight requests are cancelled, its activations
// and memory are abandoned without a drain. A new incarnation starts over
// the same disk.
func (s *system) crash(inc *incarnation, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inc.cl != nil {
		inc.cl.crashAll()
	} else {
		inc.eng.crash()
	}
	if s.cur != inc || s.closing || inc.crashSeq.Load() != 0 {
		return
	}
	inc.crashSeq.Store(s.rec.tick())
	inc.cancel()
	inc.end()
	s.rec.event("crash inc=%d reason=%s", inc.n, reason)
	s.inj.count("restart")
	go inc.shutdown(0)
	// The dead process can write nothing more and the next has not
	// started: storage is at rest, and must be consistent.
	s.checkInvariants(fmt.Sprintf("after the crash of incarnation %d (%s)", inc.n, reason))
	next, err := s.start()
	if err != nil {
		s.violation("liveness", "", "restart after a crash failed: %v", err)
		return
	}
	s.cur = next
	s.rec.event("restart inc=%d", next.n)
}

// held says what the services of inc hold: turns running, turn locks held,
// requests waiting for one; "" when nothing.
func (inc *incarnation) held() string {
	var parts []string
	for i, svc := range inc.services() {
		if stats := svc.Stats(); stats != (agent.TurnStats{}) {
			parts = append(parts, fmt.Sprintf("service %d of incarnation %d has %d turn(s) running, %d turn lock(s) held and %d request(s) waiting for one",
				i, inc.n, stats.Running, stats.LocksHeld, stats.Waiting))
		}
	}
	return strings.Join(parts, "; ")
}

// heldOrNothing is held, or says that nothing is held.
func (inc *incarnation) heldOrNothing() string {
	if h := inc.held(); h != "" {
		return h
	}
	return fmt.Sprintf("incarnation %d held no turn, turn lock or wait", inc.n)
}

// shutdown closes inc's services, waiting up to wait for in-flight calls
// (not at all for a crash).
func (inc *incarnation) shutdown(wait time.Duration) {
	defer inc.stopOnce.Do(func() { close(inc.stopped) })
	ctx, cancel := context.WithCancel(context.Background())
	if wait > 0 {
		ctx, cancel = context.WithTimeout(ctx, wait)
	} else {
		cancel()
	}
	defer cancel()
	if inc.cl != nil {
		inc.cl.stop(wait)
		return
	}
	for _, svc := range inc.svcs {
		svc.Close(ctx)
	}
}

// services are the services of inc: of its nodes now, in a cluster run.
func (inc *incarnation) services() []*agent.Service {
	if inc.cl != nil {
		return inc.cl.services()
	}
	return inc.svcs
}

// violation records a violation found while the run goes on and stops the
// run.
func (s *system) violation(checker, object, format string, args ...any) {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	s.online = append(s.online, rawViolation{checker: checker, object: object, msg: fmt.Sprintf(format, args...), at: s.rec.seq.Load()})
	if !s.stopClosed {
		s.stopClosed = true
		close(s.stop)
	}
}

func (s *system) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// logHandler is the services' logger. It keeps nothing but the errors
// logged for an operation, which it puts on the operation's trail (a
// failed turn names its request by its context, a failed request by its
// method and path), and a recovered panic, which is always a bug.
type logHandler struct{ sys *system }

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *logHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *logHandler) WithGroup(string) slog.Handler                { return h }
func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	panicked := strings.Contains(r.Message, "panic")
	attrs := map[string]string{}
	var detail strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "stack" {
			v := a.Value.String()
			attrs[a.Key] = v
			// A panic in an actor behavior comes back as an error.
			panicked = panicked || strings.Contains(v, ": panic: ")
			fmt.Fprintf(&detail, " %s=%s", a.Key, v)
		}
		return true
	})
	h.sys.noteLog(ctx, r.Message, attrs)
	if !panicked {
		return nil
	}
	h.sys.violation("unexpected-error", "", "%s:%s", r.Message, clipString(detail.String(), 500))
	return nil
}

// noteLog puts an error the service logged on the trail of the operation
// it was logged for.
func (s *system) noteLog(ctx context.Context, msg string, attrs map[string]string) {
	switch msg {
	case "agent: turn failed":
		if op := opOf(ctx); op != nil {
			op.trail.setTurnErr(attrs["error"])
		}
	case "agent: could not record the end of a turn":
		if op := opOf(ctx); op != nil {
			op.trail.sawError(errors.New("could not record the end of the turn: " + attrs["error"]))
		}
	case "api: request failed":
		for _, op := range s.rec.inflightOps(attrs["method"], attrs["path"]) {
			op.trail.setServerErr(attrs["error"])
		}
	}
}
