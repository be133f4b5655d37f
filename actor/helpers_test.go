package actor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
)

// safety bounds how long a test waits for something that must happen. It is
// never an assertion about speed: reaching it means the test is stuck.
const safety = 60 * time.Second

// ---- fake clock -------------------------------------------------------------

// fakeClock is a clock.Clock that moves only when the test advances it. Its
// tickers fire only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers chan *fakeTicker // every ticker created, in order
	ticker  *fakeTicker      // the first, once fetched
}

func newFakeClock() *fakeClock {
	return &fakeClock{
		now:     time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		tickers: make(chan *fakeTicker, 64),
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// After fires at once: the runtime only uses it to back off between retries,
// and the tests do not measure how long it waits.
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now().Add(d)
	return ch
}

func (c *fakeClock) NewTicker(d time.Duration) clock.Ticker {
	tk := &fakeTicker{c: make(chan time.Time)}
	select {
	case c.tickers <- tk:
	default:
		panic("fakeClock: too many tickers; use one clock per runtime")
	}
	return tk
}

// sweep fires the runtime's idle-sweep ticker and returns once the sweep it
// triggered has finished: the ticker channel is unbuffered, so the second
// send completes only after the sweeper is back waiting for a tick.
func (c *fakeClock) sweep(t testing.TB) {
	t.Helper()
	if c.ticker == nil {
		select {
		case c.ticker = <-c.tickers:
		case <-time.After(safety):
			t.Fatal("the runtime never created its sweep ticker")
		}
	}
	for range 2 {
		select {
		case c.ticker.c <- c.Now():
		case <-time.After(safety):
			t.Fatal("the runtime's sweeper is not receiving ticks")
		}
	}
}

type fakeTicker struct{ c chan time.Time }

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop()               {}

// ---- fault-injecting engine ------------------------------------------------

type fault int32

const (
	faultNone          fault = iota
	faultFail                // Apply applies nothing and fails
	faultApplyThenFail       // Apply applies the batch, then reports failure
)

var errInjected = errors.New("injected engine fault")

// faultEngine is a MemEngine whose next Apply can be made to fail.
type faultEngine struct {
	*kv.MemEngine
	next atomic.Int32
}

func newFaultEngine() *faultEngine { return &faultEngine{MemEngine: kv.NewMemEngine()} }

// failNext arranges for the next Apply (only) to fail as f says.
func (e *faultEngine) failNext(f fault) { e.next.Store(int32(f)) }

func (e *faultEngine) Apply(batch []kv.Mutation) error {
	switch fault(e.next.Swap(int32(faultNone))) {
	case faultFail:
		return errInjected
	case faultApplyThenFail:
		if err := e.MemEngine.Apply(batch); err != nil {
			return err
		}
		return errInjected
	}
	return e.MemEngine.Apply(batch)
}

// ---- a test behavior -------------------------------------------------------

// listState is the test actors' state: a list of items and a counter.
type listState struct {
	Items []string `json:"items,omitempty"`
	N     int      `json:"n,omitempty"`
}

type opFunc func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error)

// listBehavior stores a *listState as JSON and dispatches ops by name. Every
// behavior has "append" (adds the payload, in place, and returns the item's
// position), "get" (returns the state as JSON, writes nothing) and "reset"
// (deletes the state).
type listBehavior struct {
	ops     map[string]opFunc
	decodes atomic.Int64
	mu      sync.Mutex
	runs    map[string]int // op -> times invoked
}

func newListBehavior(extra map[string]opFunc) *listBehavior {
	b := &listBehavior{runs: map[string]int{}, ops: map[string]opFunc{
		"append": func(_ context.Context, c *actor.Call, st *listState) ([]byte, error) {
			st.Items = append(st.Items, string(c.Payload))
			c.SetState(st)
			return []byte(strconv.Itoa(len(st.Items) - 1)), nil
		},
		"get": func(_ context.Context, _ *actor.Call, st *listState) ([]byte, error) {
			return json.Marshal(st)
		},
		"reset": func(_ context.Context, c *actor.Call, _ *listState) ([]byte, error) {
			c.DeleteState()
			return nil, nil
		},
	}}
	maps.Copy(b.ops, extra)
	return b
}

func (b *listBehavior) Decode(_ actor.ID, data []byte) (any, error) {
	b.decodes.Add(1)
	st := &listState{}
	if data != nil {
		if err := json.Unmarshal(data, st); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (b *listBehavior) Encode(state any) ([]byte, error) { return json.Marshal(state.(*listState)) }

func (b *listBehavior) Invoke(ctx context.Context, c *actor.Call) ([]byte, error) {
	f, ok := b.ops[c.Op]
	if !ok {
		return nil, fmt.Errorf("unknown op %q", c.Op)
	}
	b.mu.Lock()
	b.runs[c.Op]++
	b.mu.Unlock()
	return f(ctx, c, c.State.(*listState))
}

// ran returns how many times op has been invoked (including runs that failed
// or were re-run).
func (b *listBehavior) ran(op string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs[op]
}

// ---- helpers ---------------------------------------------------------------

const ns = "things"

func mustID(t testing.TB, key string) actor.ID {
	t.Helper()
	id, err := actor.NewID(ns, key)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newRuntime starts a runtime (by default on a fresh MemDB and a fake clock)
// serving b under ns, and closes it when the test ends.
func newRuntime(t testing.TB, cfg actor.Config, b actor.Behavior) *actor.Runtime {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = kv.NewMemDB()
	}
	if cfg.Clock == nil {
		cfg.Clock = newFakeClock()
	}
	rt, err := actor.NewRuntime(cfg, map[string]actor.Behavior{ns: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), safety)
		defer cancel()
		if err := rt.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

func invoke(t testing.TB, rt *actor.Runtime, id actor.ID, op, payload string, opts ...actor.InvokeOption) []byte {
	t.Helper()
	out, err := rt.Invoke(context.Background(), id, op, []byte(payload), opts...)
	if err != nil {
		t.Fatalf("Invoke(%s, %s, %q): %v", id, op, payload, err)
	}
	return out
}

// get returns the actor's state as the next invocation sees it.
func get(t testing.TB, rt *actor.Runtime, id actor.ID) listState {
	t.Helper()
	var st listState
	if err := json.Unmarshal(invoke(t, rt, id, "get", ""), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// stored returns the actor's state as storage holds it, decoded by b, and
// whether storage holds any.
func stored(t testing.TB, store kv.Store, b actor.Behavior, id actor.ID) (listState, bool) {
	t.Helper()
	txn, err := store.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	data, err := txn.Get(actor.StateKey(id))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		data = nil
	case err != nil:
		t.Fatal(err)
	}
	st, err := b.Decode(id, data)
	if err != nil {
		t.Fatal(err)
	}
	return *st.(*listState), data != nil
}

// dump returns every key and value in store.
func dump(t testing.TB, store kv.Store) map[string]string {
	t.Helper()
	txn, err := store.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	kvs, err := txn.Scan(kv.PrefixRange(nil), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string, len(kvs))
	for _, p := range kvs {
		m[string(p.Key)] = string(p.Value)
	}
	return m
}

func readKey(t testing.TB, store kv.Store, key string) (string, bool) {
	t.Helper()
	txn, err := store.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	v, err := txn.Get([]byte(key))
	if errors.Is(err, kv.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v), true
}

// waitFor polls cond until it holds. It only waits; it asserts nothing about
// how long that takes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(safety)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("stuck waiting for %s", what)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

func waitPending(t testing.TB, rt *actor.Runtime, id actor.ID, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d invocations of %s to be queued", n, id), func() bool {
		return actor.PendingForTest(rt, id) == n
	})
}

// recv waits for a value from ch.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(safety):
		t.Fatalf("stuck waiting for %s", what)
		panic("unreachable")
	}
}

// gate blocks invocations until opened. Create it after the runtime so that
// the test's cleanup opens it before closing the runtime.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t testing.TB) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// blockOp returns an op that reports on started when it begins, then waits
// for g (or its context) before appending its payload.
func blockOp(g *gate, started chan<- actor.ID) opFunc {
	return func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
		started <- c.ID
		select {
		case <-g.ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		st.Items = append(st.Items, string(c.Payload))
		c.SetState(st)
		return []byte("unblocked"), nil
	}
}

type outcome struct {
	data []byte
	err  error
}

// goInvoke runs Invoke in a goroutine and delivers its outcome.
func goInvoke(ctx context.Context, rt *actor.Runtime, id actor.ID, op, payload string, opts ...actor.InvokeOption) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		data, err := rt.Invoke(ctx, id, op, []byte(payload), opts...)
		ch <- outcome{data, err}
	}()
	return ch
}

// TestMain removes the Postgres server that tests on two nodes start.
func TestMain(m *testing.M) { pgtest.Main(m) }
