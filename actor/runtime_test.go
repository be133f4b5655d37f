package actor_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

func TestNewRuntimeValidates(t *testing.T) {
	b := newListBehavior(nil)
	if _, err := actor.NewRuntime(actor.Config{}, map[string]actor.Behavior{ns: b}); err == nil {
		t.Error("NewRuntime without a Store succeeded")
	}
	if _, err := actor.NewRuntime(actor.Config{Store: kv.NewMemDB(), Clock: newFakeClock()},
		map[string]actor.Behavior{"Bad/NS": b}); err == nil {
		t.Error("NewRuntime with an invalid namespace succeeded")
	}
}

func TestUnknownNamespace(t *testing.T) {
	rt := newRuntime(t, actor.Config{}, newListBehavior(nil))
	id, err := actor.NewID("nobody", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Invoke(context.Background(), id, "get", nil); !errors.Is(err, actor.ErrUnknownNamespace) {
		t.Fatalf("Invoke on an unregistered namespace: %v, want ErrUnknownNamespace", err)
	}
	if s := rt.Stats(); s.Active != 0 || s.Activations != 0 {
		t.Fatalf("stats after a rejected invoke: %+v", s)
	}
}

// Spec: one activation per id; invocations of one actor never overlap;
// different actors run in parallel; state stays in memory between calls.
func TestOneActivationPerIDUnderConcurrency(t *testing.T) {
	var mu sync.Mutex
	inflight := map[actor.ID]*atomic.Int32{}
	counter := func(id actor.ID) *atomic.Int32 {
		mu.Lock()
		defer mu.Unlock()
		if inflight[id] == nil {
			inflight[id] = new(atomic.Int32)
		}
		return inflight[id]
	}
	var overlaps atomic.Int32
	b := newListBehavior(map[string]opFunc{
		"inc": func(_ context.Context, c *actor.Call, st *listState) ([]byte, error) {
			n := counter(c.ID)
			if n.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer n.Add(-1)
			for range 3 {
				runtime.Gosched() // widen the window for an overlapping call
			}
			st.N++
			c.SetState(st)
			return nil, nil
		},
	})
	rt := newRuntime(t, actor.Config{}, b)

	const goroutines, rounds, others = 50, 20, 10
	hot := mustID(t, "hot")
	other := make([]actor.ID, others)
	for i := range other {
		other[i] = mustID(t, fmt.Sprintf("other-%d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for range rounds {
				for _, id := range []actor.ID{hot, other[g%others]} {
					if _, err := rt.Invoke(context.Background(), id, "inc", nil); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("%d invocations ran concurrently with another of the same actor", n)
	}
	if got := get(t, rt, hot).N; got != goroutines*rounds {
		t.Errorf("hot actor count = %d, want %d", got, goroutines*rounds)
	}
	for _, id := range other {
		if got, want := get(t, rt, id).N, goroutines/others*rounds; got != want {
			t.Errorf("%s count = %d, want %d", id, got, want)
		}
	}
	s := rt.Stats()
	if s.Active != others+1 || s.Activations != others+1 || s.Deactivations != 0 || s.Discards != 0 {
		t.Errorf("stats = %+v; want Active=Activations=%d and no deactivations or discards", s, others+1)
	}
	if n := b.decodes.Load(); n != others+1 {
		t.Errorf("state decoded %d times, want once per activation (%d)", n, others+1)
	}
}

// Spec: invocations of one actor run in arrival order.
func TestPerActorArrivalOrder(t *testing.T) {
	started := make(chan actor.ID, 1)
	var g *gate
	b := newListBehavior(map[string]opFunc{
		"block": func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
			return blockOp(g, started)(ctx, c, st)
		},
	})
	rt := newRuntime(t, actor.Config{}, b)
	g = newGate(t)
	id := mustID(t, "ordered")

	first := goInvoke(context.Background(), rt, id, "block", "first")
	recv(t, started, "the first invocation to start")

	const n = 20
	results := make([]<-chan outcome, n)
	for i := range n {
		results[i] = goInvoke(context.Background(), rt, id, "append", strconv.Itoa(i))
		waitPending(t, rt, id, i+2) // the blocked one plus i+1 queued
	}
	g.open()
	if o := recv(t, first, "the first invocation"); o.err != nil {
		t.Fatal(o.err)
	}
	want := []string{"first"}
	for i := range n {
		o := recv(t, results[i], "a queued invocation")
		if o.err != nil {
			t.Fatal(o.err)
		}
		// Each appended at the position it arrived at.
		if got := string(o.data); got != strconv.Itoa(i+1) {
			t.Errorf("invocation %d appended at position %s, want %d", i, got, i+1)
		}
		want = append(want, strconv.Itoa(i))
	}
	if got := get(t, rt, id).Items; !slices.Equal(got, want) {
		t.Fatalf("state = %v, want %v", got, want)
	}
}

// Spec: an invocation that fails or panics changes neither storage nor the
// state the next invocation sees, even if it mutated the state in place; the
// runtime keeps working.
func TestFailedInvocationLeavesNoTrace(t *testing.T) {
	poison := func(c *actor.Call, st *listState) {
		st.Items = append(st.Items, "poison") // in place: st is the activation's state
		st.N = 999
		if err := c.Txn.Set([]byte("side/"+c.ID.Key), []byte("written by a failed call")); err != nil {
			panic(err)
		}
	}
	for _, tc := range []struct {
		name, op string
		wantErr  string
	}{
		{"error after mutating in place", "fail-in-place", "boom"},
		{"error after SetState", "fail-after-set", "boom"},
		{"panic", "panic", "panic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newListBehavior(map[string]opFunc{
				"fail-in-place": func(_ context.Context, c *actor.Call, st *listState) ([]byte, error) {
					poison(c, st)
					return nil, errors.New("boom")
				},
				"fail-after-set": func(_ context.Context, c *actor.Call, st *listState) ([]byte, error) {
					poison(c, st)
					c.SetState(st)
					return nil, errors.New("boom")
				},
				"panic": func(_ context.Context, c *actor.Call, st *listState) ([]byte, error) {
					poison(c, st)
					c.SetState(st)
					panic("behavior exploded")
				},
			})
			store := kv.NewMemDB()
			rt := newRuntime(t, actor.Config{Store: store}, b)
			id := mustID(t, "victim")
			bystander := mustID(t, "bystander")
			invoke(t, rt, id, "append", "a")
			invoke(t, rt, id, "append", "b")
			invoke(t, rt, bystander, "append", "x")
			before := dump(t, store)
			pre := get(t, rt, id)

			_, err := rt.Invoke(context.Background(), id, tc.op, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("failing invocation returned %v, want an error mentioning %q", err, tc.wantErr)
			}
			if after := dump(t, store); !maps.Equal(after, before) {
				t.Fatalf("storage changed by a failed invocation:\nbefore %q\nafter  %q", before, after)
			}
			if s := rt.Stats(); s.Discards != 1 {
				t.Errorf("Discards = %d, want 1", s.Discards)
			}
			got := get(t, rt, id)
			if !slices.Equal(got.Items, pre.Items) || got.N != pre.N {
				t.Fatalf("state after the failure = %+v, want %+v", got, pre)
			}
			if st, _ := stored(t, store, b, id); !slices.Equal(st.Items, pre.Items) {
				t.Fatalf("stored state = %+v, want %+v", st, pre)
			}

			// The runtime, this actor and others keep working.
			invoke(t, rt, id, "append", "c")
			invoke(t, rt, bystander, "append", "y")
			if got := get(t, rt, id).Items; !slices.Equal(got, []string{"a", "b", "c"}) {
				t.Fatalf("state = %v, want [a b c]", got)
			}
			if got := get(t, rt, bystander).Items; !slices.Equal(got, []string{"x", "y"}) {
				t.Fatalf("bystander state = %v, want [x y]", got)
			}
			if _, ok := readKey(t, store, "side/"+id.Key); ok {
				t.Fatal("a failed invocation's side write is in storage")
			}
		})
	}
}

func TestDeleteState(t *testing.T) {
	store := kv.NewMemDB()
	b := newListBehavior(nil)
	rt := newRuntime(t, actor.Config{Store: store}, b)
	id := mustID(t, "gone")
	invoke(t, rt, id, "append", "a")
	invoke(t, rt, id, "reset", "")
	if _, ok := stored(t, store, b, id); ok {
		t.Fatal("state still stored after DeleteState")
	}
	if got := get(t, rt, id); len(got.Items) != 0 {
		t.Fatalf("state after DeleteState = %+v, want empty", got)
	}
	invoke(t, rt, id, "append", "b")
	if st, _ := stored(t, store, b, id); !slices.Equal(st.Items, []string{"b"}) {
		t.Fatalf("stored = %v, want [b]", st.Items)
	}
}

// Spec: an actor idle for IdleTimeout is deactivated; the next invocation
// reactivates it with the same state. A busy actor is not deactivated.
func TestIdleEviction(t *testing.T) {
	clk := newFakeClock()
	started := make(chan actor.ID, 1)
	var g *gate
	b := newListBehavior(map[string]opFunc{
		"block": func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
			return blockOp(g, started)(ctx, c, st)
		},
	})
	rt := newRuntime(t, actor.Config{Clock: clk, IdleTimeout: time.Minute}, b)
	g = newGate(t)
	a, bb := mustID(t, "a"), mustID(t, "b")
	invoke(t, rt, a, "append", "1")
	invoke(t, rt, bb, "append", "2")

	clk.Advance(30 * time.Second)
	clk.sweep(t)
	if s := rt.Stats(); s.Active != 2 || s.Deactivations != 0 {
		t.Fatalf("after 30s idle: %+v, want both still active", s)
	}

	clk.Advance(31 * time.Second)
	clk.sweep(t)
	if s := rt.Stats(); s.Active != 0 || s.Deactivations != 2 {
		t.Fatalf("after 61s idle: %+v, want both deactivated", s)
	}

	if got := get(t, rt, a).Items; !slices.Equal(got, []string{"1"}) {
		t.Fatalf("reactivated a = %v", got)
	}
	if got := get(t, rt, bb).Items; !slices.Equal(got, []string{"2"}) {
		t.Fatalf("reactivated b = %v", got)
	}
	if s := rt.Stats(); s.Active != 2 || s.Activations != 4 {
		t.Fatalf("after reactivation: %+v, want Active=2 Activations=4", s)
	}

	// A busy actor survives the sweep however long it has been running.
	busy := mustID(t, "busy")
	done := goInvoke(context.Background(), rt, busy, "block", "x")
	recv(t, started, "the blocking invocation to start")
	clk.Advance(time.Hour)
	clk.sweep(t)
	if s := rt.Stats(); s.Active != 1 {
		t.Fatalf("after an hour: %+v, want only the busy actor active", s)
	}
	g.open()
	if o := recv(t, done, "the blocked invocation"); o.err != nil {
		t.Fatal(o.err)
	}
	if got := get(t, rt, busy).Items; !slices.Equal(got, []string{"x"}) {
		t.Fatalf("busy actor state = %v", got)
	}
}

// Spec: the activation cap evicts the least recently used idle actor. When
// every activation is busy a new actor waits for one to go idle, and gets
// ErrOverloaded (having run nothing) if its caller gives up first.
func TestActivationCap(t *testing.T) {
	t.Run("evicts idle", func(t *testing.T) {
		store := kv.NewMemDB()
		b := newListBehavior(nil)
		rt := newRuntime(t, actor.Config{Store: store, MaxActivations: 2}, b)
		var ids []actor.ID
		for i := range 5 {
			id := mustID(t, fmt.Sprintf("cap-%d", i))
			ids = append(ids, id)
			invoke(t, rt, id, "append", id.Key)
			if s := rt.Stats(); s.Active > 2 {
				t.Fatalf("%d live activations, cap is 2", s.Active)
			}
		}
		if s := rt.Stats(); s.Deactivations != 3 || s.CapEvictions != 3 || s.CapWaits != 0 {
			t.Errorf("stats = %+v, want 3 deactivations, all cap evictions, and no cap waits", s)
		}
		for _, id := range ids {
			if got := get(t, rt, id).Items; !slices.Equal(got, []string{id.Key}) {
				t.Errorf("%s state = %v, want [%s]", id, got, id.Key)
			}
			if st, _ := stored(t, store, b, id); !slices.Equal(st.Items, []string{id.Key}) {
				t.Errorf("%s stored = %v", id, st.Items)
			}
			if s := rt.Stats(); s.Active > 2 {
				t.Fatalf("%d live activations, cap is 2", s.Active)
			}
		}
	})
	t.Run("overloaded when all busy", func(t *testing.T) {
		started := make(chan actor.ID, 2)
		var g *gate
		b := newListBehavior(map[string]opFunc{
			"block": func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
				return blockOp(g, started)(ctx, c, st)
			},
		})
		rt := newRuntime(t, actor.Config{MaxActivations: 2}, b)
		g = newGate(t)
		d1 := goInvoke(context.Background(), rt, mustID(t, "busy-1"), "block", "x")
		d2 := goInvoke(context.Background(), rt, mustID(t, "busy-2"), "block", "x")
		recv(t, started, "busy-1 or busy-2 to start")
		recv(t, started, "busy-1 or busy-2 to start")

		third := mustID(t, "third")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := rt.Invoke(ctx, third, "append", []byte("y")); !errors.Is(err, actor.ErrOverloaded) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Invoke with every activation busy until the deadline: %v, want ErrOverloaded and DeadlineExceeded", err)
		}
		if s := rt.Stats(); s.CapWaits != 1 {
			t.Fatalf("CapWaits = %d after one invocation waited for room, want 1", s.CapWaits)
		}
		waiting := goInvoke(context.Background(), rt, mustID(t, "fourth"), "append", "z")
		if n := b.ran("append"); n != 0 {
			t.Fatalf("the rejected invocation ran (%d)", n)
		}
		if s := rt.Stats(); s.Active != 2 || s.Activations != 2 || s.InFlight != 2 {
			t.Fatalf("stats = %+v, want 2 active and 2 in flight (fourth not yet accepted)", s)
		}
		g.open()
		for _, d := range []<-chan outcome{d1, d2, waiting} {
			if o := recv(t, d, "a blocked or waiting invocation"); o.err != nil {
				t.Fatal(o.err)
			}
		}
		if got := get(t, rt, mustID(t, "fourth")).Items; !slices.Equal(got, []string{"z"}) {
			t.Fatalf("the invocation that waited for a slot left state %v, want [z]", got)
		}
		if got := get(t, rt, third).Items; len(got) != 0 {
			t.Fatalf("rejected invocation left state %v", got)
		}
		invoke(t, rt, third, "append", "y")
	})
}

// Spec: once a caller has its answer the actor is idle: a caller that works
// through many actors one at a time never meets ErrOverloaded, however small
// the cap.
func TestAnsweredActorIsIdle(t *testing.T) {
	rt := newRuntime(t, actor.Config{MaxActivations: 1}, newListBehavior(nil))
	for i := range 300 {
		id := mustID(t, fmt.Sprintf("seq-%d", i))
		invoke(t, rt, id, "append", "v")
		if n := actor.PendingForTest(rt, id); n != 0 {
			t.Fatalf("%s still has %d pending invocations after its caller was answered", id, n)
		}
	}
	if s := rt.Stats(); s.Active != 1 || s.Deactivations != 299 {
		t.Fatalf("stats = %+v", s)
	}
}

// Spec: a full mailbox rejects at once with ErrBusy.
func TestMailboxBound(t *testing.T) {
	started := make(chan actor.ID, 1)
	var g *gate
	b := newListBehavior(map[string]opFunc{
		"block": func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
			return blockOp(g, started)(ctx, c, st)
		},
	})
	rt := newRuntime(t, actor.Config{MaxMailboxDepth: 2}, b)
	g = newGate(t)
	id := mustID(t, "full")
	first := goInvoke(context.Background(), rt, id, "block", "first")
	recv(t, started, "the first invocation to start")
	second := goInvoke(context.Background(), rt, id, "append", "second")
	waitPending(t, rt, id, 2)

	// Invoke on a full mailbox does not wait: it returns ErrBusy while the
	// actor is still blocked.
	if _, err := rt.Invoke(context.Background(), id, "append", []byte("third")); !errors.Is(err, actor.ErrBusy) {
		t.Fatalf("third invoke: %v, want ErrBusy", err)
	}
	if s := rt.Stats(); s.Busy != 1 || s.InFlight != 2 {
		t.Fatalf("stats = %+v, want 1 refused as busy and 2 in flight", s)
	}
	// Other actors are unaffected.
	invoke(t, rt, mustID(t, "other"), "append", "ok")

	g.open()
	for _, d := range []<-chan outcome{first, second} {
		if o := recv(t, d, "a queued invocation"); o.err != nil {
			t.Fatal(o.err)
		}
	}
	if got := get(t, rt, id).Items; !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("state = %v, want [first second]", got)
	}
}

// Spec: a caller that gives up while its invocation is queued gets an error,
// and the operation never runs.
func TestCancelWhileQueued(t *testing.T) {
	started := make(chan actor.ID, 1)
	var g *gate
	b := newListBehavior(map[string]opFunc{
		"block": func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
			return blockOp(g, started)(ctx, c, st)
		},
	})
	store := kv.NewMemDB()
	rt := newRuntime(t, actor.Config{Store: store}, b)
	g = newGate(t)
	id := mustID(t, "queue")
	first := goInvoke(context.Background(), rt, id, "block", "first")
	recv(t, started, "the first invocation to start")

	ctx, cancel := context.WithCancel(context.Background())
	late := goInvoke(ctx, rt, id, "append", "late")
	waitPending(t, rt, id, 2)
	cancel()
	if o := recv(t, late, "the cancelled caller"); !errors.Is(o.err, context.Canceled) {
		t.Fatalf("cancelled caller got %v, want context.Canceled", o.err)
	}

	g.open()
	if o := recv(t, first, "the first invocation"); o.err != nil {
		t.Fatal(o.err)
	}
	// Invocations run in order, so once this one has run the cancelled one
	// has been dealt with.
	if got := get(t, rt, id).Items; !slices.Equal(got, []string{"first"}) {
		t.Fatalf("state = %v, want [first]", got)
	}
	if n := b.ran("append"); n != 0 {
		t.Fatalf("the cancelled operation ran %d times", n)
	}
	if st, _ := stored(t, store, b, id); !slices.Equal(st.Items, []string{"first"}) {
		t.Fatalf("stored = %v", st.Items)
	}
}

// Spec: InvokeTimeout bounds a running invocation; it fails and nothing of
// it is kept. (The short timeout is on a runtime that runs nothing else, so a
// slow machine cannot make the other calls time out.)
func TestInvokeTimeout(t *testing.T) {
	b := newListBehavior(map[string]opFunc{
		"hang": func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
			st.Items = append(st.Items, "hung")
			c.SetState(st)
			<-ctx.Done()
			return nil, ctx.Err()
		},
	})
	store := kv.NewMemDB()
	rt := newRuntime(t, actor.Config{Store: store}, b)
	id := mustID(t, "slow")
	invoke(t, rt, id, "append", "a")
	before := dump(t, store)

	hasty := newRuntime(t, actor.Config{Store: store, InvokeTimeout: time.Millisecond}, b)
	if _, err := hasty.Invoke(context.Background(), id, "hang", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung invocation: %v, want DeadlineExceeded", err)
	}
	if after := dump(t, store); !maps.Equal(after, before) {
		t.Fatal("a timed-out invocation changed storage")
	}
	// Nothing was committed, so the first runtime's activation is not even
	// fenced out.
	invoke(t, rt, id, "append", "b")
	if got := get(t, rt, id).Items; !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("state = %v, want [a b]", got)
	}
}

// Spec: Close waits for accepted invocations, which complete normally, and
// rejects new ones with ErrClosed.
func TestCloseDrains(t *testing.T) {
	started := make(chan actor.ID, 1)
	var g *gate
	b := newListBehavior(map[string]opFunc{
		"block": func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
			return blockOp(g, started)(ctx, c, st)
		},
	})
	store := kv.NewMemDB()
	rt := newRuntime(t, actor.Config{Store: store}, b)
	g = newGate(t)
	id := mustID(t, "draining")
	running := goInvoke(context.Background(), rt, id, "block", "in-flight")
	recv(t, started, "the invocation to start")

	closed := make(chan error, 1)
	go func() { closed <- rt.Close(context.Background()) }()
	probe := mustID(t, "probe")
	waitFor(t, "Close to stop accepting invocations", func() bool {
		_, err := rt.Invoke(context.Background(), probe, "get", nil)
		return errors.Is(err, actor.ErrClosed)
	})
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while an invocation was still running", err)
	default:
	}

	g.open()
	if o := recv(t, running, "the in-flight invocation"); o.err != nil || string(o.data) != "unblocked" {
		t.Fatalf("in-flight invocation: %q, %v; want success", o.data, o.err)
	}
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st, _ := stored(t, store, b, id); !slices.Equal(st.Items, []string{"in-flight"}) {
		t.Fatalf("stored = %v", st.Items)
	}
	if _, err := rt.Invoke(context.Background(), id, "get", nil); !errors.Is(err, actor.ErrClosed) {
		t.Fatalf("Invoke after Close: %v, want ErrClosed", err)
	}
	if s := rt.Stats(); s.Active != 0 {
		t.Fatalf("Active = %d after Close", s.Active)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Spec: Close whose ctx ends first reports that invocations are still
// running, every time it is called, until they have finished.
func TestCloseTimeout(t *testing.T) {
	started := make(chan actor.ID, 1)
	var g *gate
	b := newListBehavior(map[string]opFunc{
		"block": func(ctx context.Context, c *actor.Call, st *listState) ([]byte, error) {
			return blockOp(g, started)(ctx, c, st)
		},
	})
	rt := newRuntime(t, actor.Config{}, b)
	g = newGate(t)
	running := goInvoke(context.Background(), rt, mustID(t, "x"), "block", "v")
	recv(t, started, "the invocation to start")

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 2 {
		if err := rt.Close(expired); err == nil {
			t.Fatalf("Close #%d returned nil with an invocation still running", i+1)
		}
	}
	g.open()
	if o := recv(t, running, "the invocation"); o.err != nil {
		t.Fatal(o.err)
	}
	// A caller holding its answer means nothing is in flight any more: even
	// an expired ctx gets a clean Close.
	if err := rt.Close(expired); err != nil {
		t.Fatalf("Close with an expired ctx after draining: %v", err)
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatalf("Close after draining: %v", err)
	}
	if s := rt.Stats(); s.Active != 0 {
		t.Fatalf("Active = %d after Close", s.Active)
	}
}
