package actor

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/internal/warm"
	"github.com/kelpie/kelpie/kv"
)

// Defaults for Config fields left zero.
const (
	DefaultIdleTimeout     = 10 * time.Minute
	DefaultMaxActivations  = 100_000
	DefaultMaxMailboxDepth = 1024 // queued invocations per actor
	DefaultInvokeTimeout   = 2 * time.Minute
	// DefaultIdempotencyHorizon is how long an idempotency record answers
	// retries: a retry later than this runs again.
	DefaultIdempotencyHorizon = 24 * time.Hour
	// DefaultMaxConflictRetries gives a conflicting commit that is still
	// in flight (waiting for its sync, or for the CPU) about 10s of pauses
	// (conflictBackoff) to land. How long that takes depends on the disk and
	// the scheduler, not on the invocation: eight re-runs, 22.7ms of
	// pauses, were too few under CPU load.
	DefaultMaxConflictRetries = 1000
)

var (
	// ErrBusy means the actor's mailbox is full; nothing was done.
	ErrBusy = errors.New("actor: mailbox full")
	// ErrOverloaded means the activation cap was reached with every live
	// activation busy for as long as the caller was willing to wait;
	// nothing was done.
	ErrOverloaded = errors.New("actor: too many active actors")
	// ErrClosed means the runtime is shutting down; nothing was done.
	ErrClosed = errors.New("actor: runtime closed")
	// ErrUnknownNamespace means no Behavior is registered for the namespace.
	ErrUnknownNamespace = errors.New("actor: unknown namespace")
	// ErrIdempotencyMismatch means an idempotency key was reused for a
	// different operation; nothing was done.
	ErrIdempotencyMismatch = errors.New("actor: idempotency key reused with a different request")
)

// Behavior is one kind of actor.
type Behavior interface {
	// Decode rebuilds state saved by Encode. data is nil for an actor that
	// has never saved state (or whose state was deleted).
	Decode(id ID, data []byte) (any, error)
	// Encode serialises state for storage.
	Encode(state any) ([]byte, error)
	// Invoke runs one operation. It reads and writes through call.Txn and
	// replaces the state with call.SetState or removes it with
	// call.DeleteState. It may modify call.State in place: if anything fails
	// the runtime throws the state away.
	Invoke(ctx context.Context, call *Call) ([]byte, error)
}

// Call is one invocation as its Behavior sees it.
type Call struct {
	ID      ID
	Op      string
	Payload []byte
	// Txn is the invocation's transaction; the runtime commits it.
	Txn kv.Txn
	// State is the activation's current state (Decode's result at first).
	State any
	// Now is the time the invocation started, from the runtime's clock.
	Now time.Time
	// Minted is set when the caller minted the actor's id at random for
	// this invocation (see Minted) and no invocation of the actor
	// committed before it: nothing is stored under the id but what this
	// one writes (the commit is fenced on epoch 0, so an id an actor used
	// before fails it).
	Minted bool
	// Local is the value Payload encodes, if the caller gave it (WithLocal).
	Local any
	// LocalReply says the caller takes the answer in process
	// (WithLocalReply): the operation may give it with Reply and return
	// no data.
	LocalReply bool

	reply any

	saveState   bool
	deleteState bool
}

// SetState replaces the actor's state; it is saved with the commit.
func (c *Call) SetState(s any) { c.State, c.saveState, c.deleteState = s, true, false }

// Reply makes v the invocation's answer in process (see LocalReply). v
// is the caller's once the invocation commits: it must share nothing the
// actor keeps, such as its state.
func (c *Call) Reply(v any) { c.reply = v }

// DeleteState removes the actor's saved state with the commit.
func (c *Call) DeleteState() { c.State, c.saveState, c.deleteState = nil, false, true }

// Config configures a Runtime. Zero fields take the defaults above.
type Config struct {
	Store              kv.Store
	Clock              clock.Clock
	IdleTimeout        time.Duration // deactivate an actor idle this long
	MaxActivations     int           // live activations at once
	MaxMailboxDepth    int           // queued plus running invocations per actor
	InvokeTimeout      time.Duration // upper bound on one invocation
	MaxConflictRetries int           // re-runs of an invocation whose commit conflicted
	IdempotencyHorizon time.Duration // idempotency records older than this are deleted
	Logger             *slog.Logger
	Observer           InvokeObserver // watches invocations (traces); nil: none
	// Placement decides which actors this runtime may activate (a cluster
	// of runtimes on one store); nil: every actor (one runtime per store).
	Placement Placement
}

// Placement is what a cluster asks of the runtime: an actor it places is
// activated only after Claim succeeded, and every commit of that
// activation is fenced on the claim, so once another runtime claims the
// actor, this one's commits are rejected by the store. It must be safe for
// concurrent use.
type Placement interface {
	// Claim makes this runtime the owner of id in storage (or finds it
	// already is) and returns the fence its commits must pass; nil means
	// id is not placed (any runtime may activate it). An error refuses the
	// activation: the invocation fails with it and nothing is run.
	Claim(ctx context.Context, id ID) (*Fence, error)
	// Serving is checked before each invocation of a placed actor: an
	// error (this runtime may no longer hold its claims) fails the
	// invocation before anything runs.
	Serving() error
}

// Fence is a key and the epoch it must hold for a commit to apply (see
// kv.Txn.Fence).
type Fence struct {
	Key   []byte
	Epoch uint64
}

// InvokeObserver watches invocations, for traces: InvokeStarted is called
// as Invoke begins and returns the context the invocation runs in (its
// queueing, attempts and commit); the function it returns is called once
// Invoke returns, with its error. Both must be quick and safe for
// concurrent use.
type InvokeObserver interface {
	InvokeStarted(ctx context.Context, id ID, op string) (context.Context, func(error))
}

// Stats are counters of a Runtime's life so far.
type Stats struct {
	Active        int    // live activations now
	InFlight      int    // invocations accepted and not yet answered now: the mailboxes' total depth
	Activations   uint64 // activations started
	Deactivations uint64 // for idleness, the cap or shutdown
	CapEvictions  uint64 // of those, idle activations evicted to make room under the cap
	CapWaits      uint64 // invocations that waited for room under the activation cap
	Busy          uint64 // invocations refused because their actor's mailbox was full
	Discards      uint64 // in-memory states thrown away after a failure
	Conflicts     uint64 // invocations re-run after a commit conflict
	IdemExpired   uint64 // idempotency records deleted past the horizon
}

// Runtime hosts actors. Create it with NewRuntime; close it with Close.
type Runtime struct {
	cfg       Config
	behaviors map[string]Behavior
	stopSweep chan struct{}
	swept     chan struct{}
	drained   chan struct{} // closed once closed and no call is in flight
	// drainers run the drains of activations (see MaxIdleDrainers).
	drainers *warm.Pool

	mu       sync.Mutex
	closed   bool
	inflight int // accepted invocations not yet answered
	acts     map[ID]*activation
	lru      *list.List // of *activation, most recently used first
	// slotFreed, when not nil, is closed as soon as an activation goes idle:
	// callers wait on it for room under the activation cap.
	slotFreed chan struct{}
	stats     Stats
	// lastExpiry is when the sweep last deleted expired idempotency
	// records; owned by the sweep goroutine.
	lastExpiry time.Time
}

type activation struct {
	id       ID
	behavior Behavior
	elem     *list.Element

	// Guarded by Runtime.mu.
	queue    []*request // accepted, not yet started, in arrival order
	running  bool       // a drain goroutine owns the activation
	pending  int        // queued plus running
	lastUsed time.Time

	// Owned by the drain goroutine; handed from one to the next through
	// Runtime.mu.
	loaded   bool
	state    any
	epoch    uint64
	newEpoch bool   // the next commit must advance the epoch
	claim    *Fence // the placement's fence, when the actor is placed
}

type request struct {
	ctx     context.Context
	op      string
	payload []byte
	idemKey string
	minted  bool // see Minted
	local   any  // see WithLocal
	reply   chan result
	early   *func() error // see WithEarlyReply
	// localReply is where Invoke puts the answer given in process
	// (WithLocalReply); answer is the committed attempt's, set by the
	// goroutine that runs the request.
	localReply *any
	answer     any
}

type result struct {
	data    []byte
	local   any // the answer given in process (Call.Reply)
	err     error
	durable func() error // an early reply's
}

// NewRuntime returns a runtime over cfg.Store with the given behaviors, by
// namespace.
func NewRuntime(cfg Config, behaviors map[string]Behavior) (*Runtime, error) {
	if cfg.Store == nil {
		return nil, errors.New("actor: Config.Store is nil")
	}
	for ns := range behaviors {
		if err := checkPart("namespace", ns, MaxNamespaceBytes, isNamespaceByte); err != nil {
			return nil, err
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxActivations <= 0 {
		cfg.MaxActivations = DefaultMaxActivations
	}
	if cfg.MaxMailboxDepth <= 0 {
		cfg.MaxMailboxDepth = DefaultMaxMailboxDepth
	}
	if cfg.InvokeTimeout <= 0 {
		cfg.InvokeTimeout = DefaultInvokeTimeout
	}
	if cfg.MaxConflictRetries <= 0 {
		cfg.MaxConflictRetries = DefaultMaxConflictRetries
	}
	if cfg.IdempotencyHorizon <= 0 {
		cfg.IdempotencyHorizon = DefaultIdempotencyHorizon
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{
		cfg:       cfg,
		behaviors: behaviors,
		stopSweep: make(chan struct{}),
		swept:     make(chan struct{}),
		drained:   make(chan struct{}),
		drainers:  warm.New(MaxIdleDrainers),
		acts:      map[ID]*activation{},
		lru:       list.New(),
	}
	go r.sweep()
	return r, nil
}

// Invoke runs op on the actor id, activating it if needed, and returns the
// operation's result once its transaction has committed.
func (r *Runtime) Invoke(ctx context.Context, id ID, op string, payload []byte, opts ...InvokeOption) (data []byte, err error) {
	if o := r.cfg.Observer; o != nil {
		var ended func(error)
		ctx, ended = o.InvokeStarted(ctx, id, op)
		defer func() { ended(err) }()
	}
	req := &request{ctx: ctx, op: op, payload: payload, reply: make(chan result, 1)}
	for _, o := range opts {
		o(req)
	}
	if err := r.enqueue(id, req); err != nil {
		return nil, err
	}
	select {
	case res := <-req.reply:
		if req.early != nil {
			*req.early = res.durable
			if res.durable == nil {
				*req.early = durableNow
			}
		}
		if req.localReply != nil {
			*req.localReply = res.local
		}
		return res.data, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("actor: %s %s: caller gave up, outcome unknown: %w", id, op, ctx.Err())
	}
}

func (r *Runtime) enqueue(id ID, req *request) error {
	behavior, ok := r.behaviors[id.Namespace]
	if !ok {
		return fmt.Errorf("%w %q (actor %s)", ErrUnknownNamespace, id.Namespace, id)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, err := r.activationSlotLocked(id, req.ctx)
	if err != nil {
		return err
	}
	if a == nil {
		a = &activation{id: id, behavior: behavior}
		a.elem = r.lru.PushFront(a)
		r.acts[id] = a
		r.stats.Activations++
	} else {
		r.lru.MoveToFront(a.elem)
	}
	if a.pending >= r.cfg.MaxMailboxDepth {
		r.stats.Busy++
		return fmt.Errorf("%w: actor %s has %d invocations queued", ErrBusy, id, a.pending)
	}
	a.pending++
	a.lastUsed = r.cfg.Clock.Now()
	r.inflight++
	a.queue = append(a.queue, req)
	if !a.running {
		a.running = true
		r.drainers.Go(func() { r.drain(a) })
	}
	return nil
}

// activationSlotLocked returns id's live activation, or nil once there is
// room for a new one. At the cap with every activation busy it waits, with
// r.mu released, until one goes idle, the runtime closes or ctx ends.
func (r *Runtime) activationSlotLocked(id ID, ctx context.Context) (*activation, error) {
	for waited := false; ; waited = true {
		if r.closed {
			return nil, ErrClosed
		}
		if a := r.acts[id]; a != nil {
			return a, nil
		}
		if len(r.acts) < r.cfg.MaxActivations || r.evictLRULocked() {
			return nil, nil
		}
		if !waited {
			r.stats.CapWaits++
		}
		if r.slotFreed == nil {
			r.slotFreed = make(chan struct{})
		}
		freed := r.slotFreed
		r.mu.Unlock()
		select {
		case <-freed:
			r.mu.Lock()
		case <-ctx.Done():
			r.mu.Lock()
			return nil, fmt.Errorf("%w: %d activations, all busy, until the caller gave up: %w", ErrOverloaded, len(r.acts), ctx.Err())
		}
	}
}

// wakeSlotWaitersLocked tells callers waiting for an activation slot to look
// again.
func (r *Runtime) wakeSlotWaitersLocked() {
	if r.slotFreed != nil {
		close(r.slotFreed)
		r.slotFreed = nil
	}
}

// evictLRULocked deactivates the least recently used idle activation.
func (r *Runtime) evictLRULocked() bool {
	for e := r.lru.Back(); e != nil; e = e.Prev() {
		if a := e.Value.(*activation); a.pending == 0 {
			r.deactivateLocked(a)
			r.stats.CapEvictions++
			return true
		}
	}
	return false
}

func (r *Runtime) deactivateLocked(a *activation) {
	if a.pending != 0 {
		panic(fmt.Sprintf("actor: deactivating %s with %d pending invocations", a.id, a.pending))
	}
	r.lru.Remove(a.elem)
	delete(r.acts, a.id)
	r.stats.Deactivations++
}

// MaxIdleDrainers is how many drain goroutines at most stay, once their
// activation is idle, to drain the next one. A new goroutine's stack grows,
// by copying, to the depth of a commit at each start (about 85 µs of CPU
// per turn of an agent at 32 agents taking turns); a warm one has grown
// already. Their number is bounded by this constant, not by the number of
// actors: an idle activation still holds no goroutine of its own.
const MaxIdleDrainers = 64

// drain runs an activation's queue in order and exits when it is empty. At
// most one drain goroutine per activation exists (a.running), so an idle
// activation costs no goroutine and no preallocated mailbox.
func (r *Runtime) drain(a *activation) {
	r.mu.Lock()
	for len(a.queue) > 0 {
		req := a.queue[0]
		a.queue[0] = nil
		a.queue = a.queue[1:]
		r.mu.Unlock()

		data, durable, err := r.run(a, req)
		if durable != nil {
			// Answered early: the actor waits for the sync in the
			// caller's stead before it runs anything else.
			d := &outcome{done: make(chan struct{})}
			req.reply <- result{data: data, local: req.answer, durable: d.wait}
			if d.err = durable(); d.err != nil {
				d.err = fmt.Errorf("actor: %s %s: %w", a.id, req.op, d.err)
				r.discard(a)
			}
			close(d.done)
		}

		r.mu.Lock()
		a.pending--
		if r.inflight--; r.inflight == 0 && r.closed {
			close(r.drained)
		}
		// Answer only now, so that a caller holding its answer finds the
		// actor idle (evictable, not counted against the cap). The channel
		// is buffered: this never blocks.
		if durable == nil {
			req.reply <- result{data: data, local: req.answer, err: err}
		}
	}
	// Still under r.mu, with pending now 0: whoever next sees pending == 0
	// (deactivation) or enqueues also sees running == false.
	a.running = false
	a.queue = nil
	r.wakeSlotWaitersLocked()
	r.mu.Unlock()
}

// outcome is the outcome of an early reply's sync.
type outcome struct {
	done chan struct{}
	err  error // set before done is closed
}

func (o *outcome) wait() error {
	<-o.done
	return o.err
}

func durableNow() error { return nil }

// run executes one request, re-running it after commit conflicts. For a
// request answered early, durable (non-nil) waits for the commit's sync.
func (r *Runtime) run(a *activation, req *request) (data []byte, durable func() error, err error) {
	if err := req.ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("actor: %s %s: not run, caller gave up while queued: %w", a.id, req.op, err)
	}
	ctx, cancel := context.WithTimeout(req.ctx, r.cfg.InvokeTimeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		data, durable, err := r.attempt(ctx, a, req)
		if err == nil {
			return data, durable, nil
		}
		r.discard(a)
		if !errors.Is(err, kv.ErrConflict) || attempt >= r.cfg.MaxConflictRetries || ctx.Err() != nil {
			return nil, nil, fmt.Errorf("actor: %s %s: %w", a.id, req.op, err)
		}
		r.mu.Lock()
		r.stats.Conflicts++
		r.mu.Unlock()
		// A conflicting commit may still be waiting for its sync; retrying
		// at once would only conflict with it again.
		select {
		case <-r.cfg.Clock.After(conflictBackoff(attempt)):
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("actor: %s %s: gave up retrying a conflict: %w", a.id, req.op, ctx.Err())
		}
	}
}

// conflictBackoff is how long to wait before re-running after the attempt'th
// conflict: 100µs doubling to at most 10ms.
func conflictBackoff(attempt int) time.Duration {
	return min(100*time.Microsecond<<attempt, 10*time.Millisecond)
}

// discard throws away the activation's memory so the next invocation reloads
// from storage under a new epoch.
func (r *Runtime) discard(a *activation) {
	a.loaded, a.state = false, nil
	r.mu.Lock()
	r.stats.Discards++
	r.mu.Unlock()
}

// The runtime's keys: an actor's state and its fencing epoch, each at
// <prefix><namespace>/<key>, and the idempotency records at
// <IdemPrefix><sha256 of the key, hex>.
const (
	StatePrefix = "actor/state/"
	EpochPrefix = "actor/epoch/"
	IdemPrefix  = "actor/idem/"
)

// StateKey is the storage key of an actor's state. Readers that need a
// consistent view without queueing behind the actor read it directly.
func StateKey(id ID) []byte { return []byte(StatePrefix + id.String()) }

func epochKey(id ID) []byte { return []byte(EpochPrefix + id.String()) }

// attempt runs the request once in one transaction: it loads the actor
// if needed, fences the commit on its epoch, answers a repeated idempotent
// request from its record, and otherwise invokes the behavior and commits
// its state and writes with the answer.
func (r *Runtime) attempt(ctx context.Context, a *activation, req *request) (data []byte, durable func() error, err error) {
	if err := r.place(ctx, a); err != nil {
		return nil, nil, err
	}
	txn, err := r.cfg.Store.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer txn.Discard()

	switch {
	case !a.loaded && req.minted:
		if err := startMinted(a); err != nil {
			return nil, nil, err
		}
	case !a.loaded:
		// Loading inside the invocation's transaction puts the state and
		// epoch in its read set: if anything rewrote them before this
		// commit, the commit fails instead of acting on a stale load.
		if err := r.load(txn, a); err != nil {
			return nil, nil, err
		}
	}
	if err := fence(txn, a); err != nil {
		return nil, nil, err
	}
	var idem *idemRecord
	if req.idemKey != "" {
		var answered bool
		if idem, answered, err = idempotent(txn, a.id, req); err != nil {
			return nil, nil, err
		}
		if answered {
			return idem.Result, nil, nil
		}
	}
	// An idempotency record keeps the answer encoded: none is given in
	// process then.
	call := &Call{ID: a.id, Op: req.op, Payload: req.payload, Txn: txn, State: a.state, Now: r.cfg.Clock.Now(),
		Minted: req.minted && a.epoch == 0, Local: req.local, LocalReply: req.localReply != nil && req.idemKey == ""}
	if data, err = invokeSafely(ctx, a.behavior, call); err != nil {
		return nil, nil, err
	}
	if err := saveState(txn, a, call); err != nil {
		return nil, nil, err
	}
	if idem != nil {
		if err := writeIdemRecord(txn, req.idemKey, idem, data, call.Now); err != nil {
			return nil, nil, err
		}
	}
	if p, ok := txn.(kv.Publisher); ok && req.early != nil {
		if durable, err = p.Publish(ctx); err != nil {
			return nil, nil, err
		}
	} else if err := txn.Commit(ctx); err != nil {
		return nil, nil, err
	}
	a.state = call.State
	req.answer = call.reply
	if a.newEpoch {
		a.epoch++
		a.newEpoch = false
	}
	if call.deleteState {
		// An actor without state is rebuilt by Decode(nil) on its next load.
		a.loaded = false
	}
	return data, durable, nil
}

// place claims the actor before it is (re)loaded, committed in a
// transaction of the placement's own, so that nothing of the activation
// runs before this runtime owns the actor; and checks before every
// invocation that this runtime may still serve it.
func (r *Runtime) place(ctx context.Context, a *activation) error {
	p := r.cfg.Placement
	if p == nil {
		return nil
	}
	if !a.loaded {
		claim, err := p.Claim(ctx, a.id)
		if err != nil {
			return err
		}
		a.claim = claim
	}
	if a.claim == nil {
		return nil
	}
	return p.Serving()
}

// fence makes the commit conditional on the activation's epoch (and its
// claim, when placed), and the first commit of an activation take the next
// epoch.
func fence(txn kv.Txn, a *activation) error {
	if a.claim != nil {
		if err := txn.Fence(a.claim.Key, a.claim.Epoch); err != nil {
			return err
		}
	}
	ek := epochKey(a.id)
	if err := txn.Fence(ek, a.epoch); err != nil {
		return err
	}
	if a.newEpoch {
		return txn.Set(ek, kv.PutEpoch(a.epoch+1))
	}
	return nil
}

// saveState writes the state the invocation set, or deletes it.
func saveState(txn kv.Txn, a *activation, call *Call) error {
	switch {
	case call.saveState:
		enc, err := a.behavior.Encode(call.State)
		if err != nil {
			return fmt.Errorf("encode state: %w", err)
		}
		return txn.Set(StateKey(a.id), enc)
	case call.deleteState:
		return txn.Delete(StateKey(a.id))
	}
	return nil
}

func (r *Runtime) load(txn kv.Txn, a *activation) error {
	var epoch uint64
	switch v, err := txn.Get(epochKey(a.id)); {
	case err == nil:
		if epoch, err = kv.ParseEpoch(v); err != nil {
			return err
		}
	case !errors.Is(err, kv.ErrNotFound):
		return fmt.Errorf("load epoch: %w", err)
	}
	data, err := txn.Get(StateKey(a.id))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		data = nil
	case err != nil:
		return fmt.Errorf("load state: %w", err)
	}
	state, err := a.behavior.Decode(a.id, data)
	if err != nil {
		return fmt.Errorf("decode state: %w", err)
	}
	a.loaded, a.state, a.epoch, a.newEpoch = true, state, epoch, true
	return nil
}

// invokeSafely turns a panic in a Behavior into an error.
func invokeSafely(ctx context.Context, b Behavior, call *Call) (data []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return b.Invoke(ctx, call)
}

// sweep deactivates idle actors.
func (r *Runtime) sweep() {
	defer close(r.swept)
	t := r.cfg.Clock.NewTicker(max(r.cfg.IdleTimeout/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C():
			r.evictIdle()
			r.expireIdempotencyDue()
		case <-r.stopSweep:
			return
		}
	}
}

func (r *Runtime) evictIdle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Clock.Now()
	for e := r.lru.Back(); e != nil; {
		a := e.Value.(*activation)
		e = e.Prev()
		if now.Sub(a.lastUsed) < r.cfg.IdleTimeout {
			break // the rest were used more recently
		}
		if a.pending == 0 {
			r.deactivateLocked(a)
		}
	}
}

// Stats returns the runtime's counters.
func (r *Runtime) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Active, s.InFlight = len(r.acts), r.inflight
	return s
}

// Close stops accepting invocations, waits for those already accepted to
// finish (or ctx to end), and deactivates every actor. It does not close the
// store. It may be called again, for instance after its ctx ended; each call
// returns nil only once nothing is running.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	first := !r.closed
	if first {
		r.closed = true
		r.wakeSlotWaitersLocked()
		if r.inflight == 0 {
			close(r.drained)
		}
	}
	r.mu.Unlock()
	if first {
		close(r.stopSweep)
		r.drainers.Close()
	}
	<-r.swept

	select {
	case <-r.drained:
	default:
		select {
		case <-r.drained:
		case <-ctx.Done():
			return fmt.Errorf("actor: close: invocations still running: %w", ctx.Err())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.acts {
		r.deactivateLocked(a)
	}
	return nil
}
