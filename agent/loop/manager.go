package loop

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/internal/warm"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

// Store is how the loop reads and commits; the agent service implements it
// over its actor runtime.
type Store interface {
	// Read runs fn in a read-only snapshot that sees every acknowledged
	// write.
	Read(ctx context.Context, fn func(kv.Txn) error) error
	// Invoke runs one of the operations of this package (OpBegin, ...) on
	// the agent's actor and decodes its result into out.
	Invoke(ctx context.Context, agentID, op string, payload, out any) error
	// InvokeEarly is Invoke answered as soon as the operation's writes
	// are published, before they are durable (actor.WithEarlyReply):
	// durable waits until they are and returns the outcome. Nothing of
	// the operation may be acknowledged before durable returns nil.
	InvokeEarly(ctx context.Context, agentID, op string, payload, out any) (durable func() error, err error)
}

// Resolver finds the provider serving a model handle ("provider/model")
// and the model name to ask it for. *llm.Registry is one.
type Resolver interface {
	Resolve(handle string) (llm.Provider, string, error)
}

// Retries of a model call that failed transiently (rate limit, 5xx,
// timeout, a dropped connection) before any of its answer reached a client.
const (
	maxTransientRetries    = 3
	DefaultLLMRetryBackoff = 500 * time.Millisecond // doubled per retry
	maxLLMRetryWait        = 10 * time.Second       // a longer Retry-After ends the turn
)

// maxRecentTurns is how many finished turns are kept in memory for readers
// that resume a stream; older ones are rebuilt from storage.
const maxRecentTurns = 256

// Config configures a Manager. Store, Clock, Logger and NewID are required.
type Config struct {
	Store  Store
	Clock  clock.Clock
	Logger *slog.Logger
	// NewID returns a new id of prefix (random, from the service's source).
	NewID func(prefix string) (string, error)
	// LLM resolves model handles; nil means no provider is configured.
	LLM Resolver
	// RetryBackoff is the first pause before re-asking a model after a
	// transient error; it doubles per retry. 0 means DefaultLLMRetryBackoff.
	RetryBackoff time.Duration
	// Tools runs calls of custom tools; nil answers each with an error.
	Tools tool.Runner
	// MCP calls MCP tools; nil answers each with an error.
	MCP tool.MCPClient
	// Web fetches pages for fetch_webpage, Search searches for
	// web_search, and Agents runs other agents' turns for the multi-agent
	// tools; nil answers their calls with an error.
	Web    *tool.Fetcher
	Search *tool.Searcher
	Agents tool.Agents
	// Embedder embeds the texts of archival tool calls; nil means none is
	// configured: those tools work by words alone and say so.
	Embedder embedding.Embedder
}

// Manager runs turns: it serialises them per agent and keeps recent ones
// for readers. Create it with NewManager.
type Manager struct {
	cfg Config

	base   context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool                     // no turn may start
	locks       map[string]chan struct{} // agent id -> a one-slot semaphore
	lockRefs    map[string]int
	active      map[string]*activeTurn // by agent id
	recent      map[string]*Turn       // by run id
	recentOrder []string
	// claims holds, by conversation (claimKey), the runs started or
	// waiting there, oldest first: a request that may not queue
	// (Request.NoQueue) is refused while there is one.
	claims map[string][]string
	// begins holds, by run id, the turns whose Begin is running.
	begins map[string]*pendingBegin
	// history keeps the messages of the contexts turns read.
	history *historyCache

	counts struct{ turns, steps, toolCalls, failed atomic.Uint64 }

	// runners run the turns (see maxIdleRunners).
	runners *warm.Pool
}

type activeTurn struct {
	turn   *Turn
	convID string
	cancel context.CancelFunc
}

// NewManager returns a manager with no turn running.
func NewManager(cfg Config) *Manager {
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = DefaultLLMRetryBackoff
	}
	base, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg: cfg, base: base, cancel: cancel,
		locks: map[string]chan struct{}{}, lockRefs: map[string]int{},
		active: map[string]*activeTurn{}, recent: map[string]*Turn{}, claims: map[string][]string{},
		begins: map[string]*pendingBegin{}, runners: warm.New(maxIdleRunners),
		history: newHistoryCache(),
	}
}

var errClosing = &letta.Error{Kind: letta.KindUnavailable, Message: "the server is shutting down"}

// lock takes the agent's turn lock, waiting for a turn in progress.
func (m *Manager) lock(ctx context.Context, agentID string) (release func(), err error) {
	m.mu.Lock()
	ch := m.locks[agentID]
	if ch == nil {
		ch = make(chan struct{}, 1)
		m.locks[agentID] = ch
	}
	m.lockRefs[agentID]++
	m.mu.Unlock()
	unref := func() {
		m.mu.Lock()
		if m.lockRefs[agentID]--; m.lockRefs[agentID] == 0 {
			delete(m.lockRefs, agentID)
			delete(m.locks, agentID)
		}
		m.mu.Unlock()
	}
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		unref()
		return nil, ctx.Err()
	case <-m.base.Done():
		unref()
		return nil, errClosing
	}
	var once sync.Once
	return func() { once.Do(func() { <-ch; unref() }) }, nil
}

// CloseInterrupted closes the run a turn of agentID left in progress
// without closing it (a node that died mid-turn). It holds the agent's
// turn lock meanwhile: no turn of this manager is then between its begin
// and its end, so a run in progress is one no turn will close.
func (m *Manager) CloseInterrupted(ctx context.Context, agentID string) error {
	unlock, err := m.lock(ctx, agentID)
	if err != nil {
		return err
	}
	defer unlock()
	return m.cfg.Store.Invoke(ctx, agentID, OpCloseInterrupted, struct{}{}, nil)
}

// Stats counts what a Manager holds at one moment.
type Stats struct {
	Running   int // turns running
	LocksHeld int // agents whose turn lock is taken
	Waiting   int // requests waiting for an agent's turn lock
}

// Stats reports the turns running and the locks held: all zero once every
// turn has ended.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Stats{Running: len(m.active)}
	for id, ch := range m.locks {
		held := len(ch)
		st.LocksHeld += held
		st.Waiting += m.lockRefs[id] - held
	}
	return st
}

// Counts are a Manager's totals since it started, for metrics.
type Counts struct {
	Turns     uint64 // turns started
	Steps     uint64 // model answers committed
	ToolCalls uint64 // tool calls in those answers
	Failed    uint64 // turns that ended in an error
}

// Counts returns the totals so far.
func (m *Manager) Counts() Counts {
	return Counts{
		Turns: m.counts.turns.Load(), Steps: m.counts.steps.Load(),
		ToolCalls: m.counts.toolCalls.Load(), Failed: m.counts.failed.Load(),
	}
}

func (m *Manager) remember(t *Turn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recent[t.runID]; ok {
		return
	}
	m.recent[t.runID] = t
	m.recentOrder = append(m.recentOrder, t.runID)
	for len(m.recentOrder) > maxRecentTurns {
		old := m.recentOrder[0]
		m.recentOrder = m.recentOrder[1:]
		if rt := m.recent[old]; rt != nil {
			if _, done, _ := rt.Events(0); !done {
				// Still running: keep it, and look again next time.
				m.recentOrder = append(m.recentOrder, old)
				break
			}
		}
		delete(m.recent, old)
	}
}

// Close cancels the turns in progress (each records that it was
// cancelled) and waits for them to end, or for ctx.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.runners.Close()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("loop: close: turns still running: %w", ctx.Err())
	}
}

// resolve finds the provider of a model handle, or a clear error saying
// what to configure.
func (m *Manager) resolve(agentID, handle string) (llm.Provider, string, error) {
	provider, _, _ := strings.Cut(handle, "/")
	if m.cfg.LLM == nil {
		return nil, "", &letta.Error{Kind: letta.KindUnavailable, Message: fmt.Sprintf(
			"No LLM provider is configured, so agent %s (model %q) cannot answer messages. Configure a provider for %q (for example set %s) and restart kelpie.",
			agentID, handle, provider, providerEnvHint(provider))}
	}
	p, model, err := m.cfg.LLM.Resolve(handle)
	if err != nil {
		return nil, "", &letta.Error{Kind: letta.KindUnavailable, Message: fmt.Sprintf(
			"Agent %s cannot answer messages: its model %q has no configured provider (%v). Configure a provider for %q (for example set %s), or change the agent's model.",
			agentID, handle, err, provider, providerEnvHint(provider))}
	}
	return p, model, nil
}

func providerEnvHint(provider string) string {
	switch provider {
	case "anthropic":
		return "ANTHROPIC_API_KEY"
	case "ollama":
		return "OLLAMA_BASE_URL"
	case "vllm":
		return "VLLM_API_BASE"
	}
	return "OPENAI_API_KEY"
}

// HandleOf is the model handle an agent uses.
func HandleOf(a *schema.Agent) string {
	if h := a.LLMConfig.Handle; h != nil && *h != "" {
		return *h
	}
	return a.LLMConfig.ModelEndpointType + "/" + a.LLMConfig.Model
}

// Request is a message to an agent.
type Request struct {
	AgentID string
	ConvID  string // "" for the agent's default conversation
	Message letta.MessageRequest
	// IdempotencyKey, when set, identifies the request as an otid does.
	IdempotencyKey string
	// NoQueue refuses the request with letta.ConversationBusy, instead of
	// queueing it, while another turn of its conversation is running or
	// waiting.
	NoQueue bool
	// Read, if set, runs in the transaction of the turn's Begin, before
	// it writes anything (one read instead of two); its error refuses the
	// request. Begin may run it again when it is retried.
	Read func(kv.Txn) error
}

// claimKey names a conversation among all agents' ("" is an agent's
// default conversation).
func claimKey(agentID, convID string) string { return agentID + "/" + convID }

// claim records that run is started or waiting in the request's
// conversation until the returned func is called, or refuses a NoQueue
// request if another is.
func (m *Manager) claim(req Request, runID string) (unclaim func(), err error) {
	key := claimKey(req.AgentID, req.ConvID)
	m.mu.Lock()
	defer m.mu.Unlock()
	if held := m.claims[key]; len(held) > 0 && req.NoQueue {
		convID := req.ConvID
		if convID == "" {
			convID = req.AgentID // Letta names the default conversation by its agent
		}
		return nil, &letta.ConversationBusy{ConversationID: convID, RunID: held[0]}
	}
	m.claims[key] = append(m.claims[key], runID)
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			held := slices.DeleteFunc(m.claims[key], func(id string) bool { return id == runID })
			if len(held) == 0 {
				delete(m.claims, key)
			} else {
				m.claims[key] = held
			}
		})
	}, nil
}

// Start starts a turn: it validates the request, waits for the agent's
// previous turn to end, and commits the request's messages. The turn then
// runs on its own (a client that goes away does not stop it); follow it
// with Turn.Events or Turn.Response. A request repeating an otid or
// Idempotency-Key already answered gets that run's turn back, finished,
// without running anything.
func (m *Manager) Start(ctx context.Context, req Request) (*Turn, error) {
	p, err := parse(req.Message, req.IdempotencyKey, m.cfg.NewID)
	if err != nil {
		return nil, err
	}
	r, err := m.newRun(req, p)
	if err != nil {
		return nil, err
	}
	if len(p.approvals) > 0 {
		if err := m.prepareApproval(ctx, req, r); err != nil {
			return nil, err
		}
	}
	unclaim, err := m.claim(req, r.turn.runID)
	if err != nil {
		return nil, err
	}
	unlock, err := m.lock(ctx, req.AgentID)
	if err != nil {
		unclaim()
		return nil, err
	}
	// The conversation is claimed as long as the agent's turn lock is held.
	release := func() { unlock(); unclaim() }
	if m.base.Err() != nil {
		release()
		return nil, errClosing
	}
	bp := BeginPayload{RunID: r.turn.runID, ConversationID: req.ConvID, Keys: p.keys, Inputs: p.inputs, Approvals: p.approvals, Background: req.Message.Background}
	if bp.Embeddings, bp.NoVector, err = r.embedApproved(ctx, p.approvals); err != nil {
		release()
		return nil, err
	}
	begun, err := m.begin(ctx, r, bp, req)
	if err != nil {
		release()
		return nil, err
	}
	if d := begun.Duplicate; d != nil {
		release()
		return Replay(&d.Run, d.Messages), nil
	}
	r.turn.emitStored(begun.Appended)
	r.approved, r.approvedFor = begun.Approved, begun.AssistantID
	r.called = begun.Called
	r.noteOutput(begun.Appended)
	r.firstSeq = begun.Run.FirstSeq
	if err := m.launch(ctx, r, release); err != nil {
		return nil, err
	}
	if err := r.begun(); err != nil {
		// The turn asked the model already: its answer is thrown away (a
		// paid call wasted, on a failed sync), nothing of it emitted or
		// committed. Whether Begin's writes landed is unknown; if they
		// did, the agent's next turn closes the run.
		r.cancel()
		return nil, err
	}
	m.counts.turns.Add(1)
	return r.turn, nil
}

// pendingBegin is a turn whose Begin is running, and what Begin reads
// for it: the turn reads nothing of its agent before. Begin resolves the
// model of req, runs req.Read in its transaction (a refusal fails it
// before it writes anything) and hands the turn its agent, as a copy, with
// provider and model.
type pendingBegin struct {
	req      Request
	agent    *schema.Agent
	provider llm.Provider
	model    string
	// first is the context Begin read for the turn's first request
	// (none for an approval reply).
	first *contextInputs
}

// begin runs OpBegin for r. When Begin read the context of r's first
// request (no approval reply), it answers as soon as Begin's commit is
// published, and r asks the model while the commit syncs: r.begun waits
// for it before anything of the turn is emitted or committed, and Start
// before the turn is returned. Otherwise it answers once the commit is
// durable, as before: an approval reply's results are emitted at once.
func (m *Manager) begin(ctx context.Context, r *turnRun, bp BeginPayload, req Request) (*beginResult, error) {
	id := r.turn.runID
	pb := &pendingBegin{req: req}
	m.mu.Lock()
	m.begins[id] = pb
	m.mu.Unlock()
	var begun beginResult
	durable, err := m.cfg.Store.InvokeEarly(ctx, r.agentID, OpBegin, bp, &begun)
	m.mu.Lock()
	delete(m.begins, id)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if begun.Duplicate == nil {
		r.agent, r.provider, r.model = pb.agent, pb.provider, pb.model
		r.embedding = memory.EmbeddingHandle(pb.agent)
	}
	if pb.first == nil {
		if err := durable(); err != nil {
			return nil, err
		}
		return &begun, nil
	}
	r.first, r.beginDurable = pb.first, durable
	return &begun, nil
}

// newRun makes the turn's run, not started, without its agent.
func (m *Manager) newRun(req Request, p *parsed) (*turnRun, error) {
	runID, err := m.cfg.NewID("run")
	if err != nil {
		return nil, err
	}
	streaming := req.Message.Streaming != nil && *req.Message.Streaming
	return &turnRun{
		m: m, turn: newTurn(runID, req.AgentID), agentID: req.AgentID, convID: req.ConvID,
		streamTokens: req.Message.StreamTokens && streaming,
		maxSteps:     p.maxSteps, client: p.client, streamed: map[string]string{},
	}, nil
}

// prepareApproval reads, for an approval reply, the embedding model of
// the agent: the reply embeds what the calls it approves embed before
// Begin. It refuses first a model no provider serves, as Begin would.
func (m *Manager) prepareApproval(ctx context.Context, req Request, r *turnRun) error {
	var a *schema.Agent
	if err := m.cfg.Store.Read(ctx, func(txn kv.Txn) (err error) {
		a, err = schema.GetAgent(txn, req.AgentID)
		return err
	}); err != nil {
		return err
	}
	if _, _, err := m.modelFor(a, req); err != nil {
		return err
	}
	r.embedding = memory.EmbeddingHandle(a)
	return nil
}

// modelFor resolves the model a turn of agent a asks: the request's
// override, or the agent's own.
func (m *Manager) modelFor(a *schema.Agent, req Request) (llm.Provider, string, error) {
	handle := HandleOf(a)
	override := req.Message.OverrideModel != nil && *req.Message.OverrideModel != ""
	if override {
		handle = *req.Message.OverrideModel
	}
	provider, model, err := m.resolve(req.AgentID, handle)
	if err != nil && override && m.cfg.LLM != nil {
		// A handle the client chose that no provider serves is the
		// client's mistake, answered as Letta answers an unknown handle.
		return nil, "", letta.NotFoundf("NOT_FOUND: Handle %s not found, must be one of []", letta.Clip(handle))
	}
	return provider, model, err
}

// launch runs r on its own goroutine, holding the agent's turn lock until
// it ends. The turn keeps the request's values but not its cancellation:
// only Cancel and Close stop it.
func (m *Manager) launch(ctx context.Context, r *turnRun, release func()) error {
	llmCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(m.base, cancel)
	r.ctx, r.cancel = llmCtx, cancel
	m.mu.Lock()
	if m.closed {
		// Closing began after the inputs were committed: the run stays
		// open in storage and the agent's next turn closes it.
		m.mu.Unlock()
		stop()
		cancel()
		release()
		return errClosing
	}
	m.active[r.agentID] = &activeTurn{turn: r.turn, convID: r.convID, cancel: cancel}
	m.wg.Add(1)
	m.mu.Unlock()
	m.remember(r.turn)
	m.runners.Go(func() {
		defer m.wg.Done()
		defer stop()
		defer cancel()
		res := r.run()
		m.mu.Lock()
		if a := m.active[r.agentID]; a != nil && a.turn == r.turn {
			delete(m.active, r.agentID)
		}
		m.mu.Unlock()
		// The agent and its conversation are free before anyone learns
		// that the turn ended: a client that sends its next message as
		// soon as it has the answer must not find them busy.
		release()
		r.turn.finish(res)
	})
	return nil
}

// maxIdleRunners is how many turn goroutines at most stay, once their turn
// ended, to run the next one. A new goroutine's stack grows, by copying, to
// the depth of a model call at each turn (about 35 µs of CPU per turn at 32
// agents taking turns); a warm one has grown already.
const maxIdleRunners = 64

// Recent returns the turn of a run if it is still in memory.
func (m *Manager) Recent(runID string) *Turn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recent[runID]
}

// Cancel cancels an agent's turn in progress, if it is of conversation
// convID (any, when empty) and one of runIDs (any, when empty). The turn
// stops at its next step with stop reason cancelled. It returns the
// cancelled run's id, or "".
func (m *Manager) Cancel(agentID, convID string, runIDs []string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.active[agentID]
	if a == nil || convID != "" && a.convID != convID || len(runIDs) > 0 && !slices.Contains(runIDs, a.turn.runID) {
		return ""
	}
	a.cancel()
	return a.turn.runID
}
