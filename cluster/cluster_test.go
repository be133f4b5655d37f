package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/postgres"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
	"github.com/kelpie/kelpie/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// ttl is long enough that the nodes' own tickers never fire during a test:
// the tests renew and observe by hand, on clocks they move.
const ttl = time.Hour

var secret = []byte("0123456789abcdef-test-secret")

// testNode is one node: its own pool on the shared database, its own clock
// and an actor runtime placed by it, hosting counters.
type testNode struct {
	*Node
	clock   *kelpietest.StepClock
	store   kv.Store
	runtime *actor.Runtime
	took    chan actor.ID // the actors it took over (Config.OnTakeover)
}

// openStore opens a node's own pool on the database at url: its
// transactions are timed by the Postgres server's clock.
func openStore(t *testing.T, url string) kv.Store {
	t.Helper()
	eng, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	db := kv.NewDB(eng)
	t.Cleanup(func() { db.Close() })
	return db
}

var start = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// The tests that move time stand a clock they move in for the database
// server's (one per database, which every node on it reads); those on the
// server's own clock use openStore.
var (
	dbClocksMu sync.Mutex
	dbClocks   = map[string]*kelpietest.StepClock{}
)

// dbClock is the stand-in clock of the database at url.
func dbClock(url string) *kelpietest.StepClock {
	dbClocksMu.Lock()
	defer dbClocksMu.Unlock()
	c := dbClocks[url]
	if c == nil {
		c = kelpietest.NewStepClock(start)
		dbClocks[url] = c
	}
	return c
}

// steppedStore is a node's store whose transactions are timed by the
// database's stand-in clock.
type steppedStore struct {
	kv.Store
	clock *kelpietest.StepClock
}

func (s steppedStore) Begin(ctx context.Context) (kv.Txn, error) {
	txn, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return steppedTxn{Txn: txn, at: s.clock.Now()}, nil
}

type steppedTxn struct {
	kv.Txn
	at time.Time
}

func (t steppedTxn) SnapshotTime() (time.Time, bool) { return t.at, true }

func join(t *testing.T, url, id string) *testNode { return joinAt(t, url, id, start) }

// joinAt joins a node whose clock reads at.
func joinAt(t *testing.T, url, id string, at time.Time) *testNode {
	t.Helper()
	return joinStore(t, steppedStore{openStore(t, url), dbClock(url)}, id, at, ttl)
}

// joinStore joins a node on store with a lease of leaseTTL, its clock
// reading at.
func joinStore(t *testing.T, store kv.Store, id string, at time.Time, leaseTTL time.Duration) *testNode {
	t.Helper()
	tn := &testNode{clock: kelpietest.NewStepClock(at), store: store, took: make(chan actor.ID, 16)}
	n, err := Join(t.Context(), Config{Store: tn.store, NodeID: id, Addr: id + ".test:8283", Secret: secret, LeaseTTL: leaseTTL, Clock: tn.clock,
		OnTakeover: func(id actor.ID) { tn.took <- id }})
	if err != nil {
		t.Fatal(err)
	}
	tn.Node = n
	rt, err := actor.NewRuntime(actor.Config{Store: tn.store, Clock: tn.clock, Placement: n}, map[string]actor.Behavior{"counters": counter{}})
	if err != nil {
		t.Fatal(err)
	}
	tn.runtime = rt
	t.Cleanup(func() {
		rt.Close(context.Background())
		n.Leave(context.Background())
	})
	return tn
}

// tick renews the node's lease and reads the members, as its ticker would.
func (tn *testNode) tick(t *testing.T) {
	t.Helper()
	if err := tn.renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.observe(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func (tn *testNode) inc(t *testing.T, id actor.ID) (int, error) {
	t.Helper()
	out, err := tn.runtime.Invoke(t.Context(), id, "inc", nil)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(out))
}

// counter counts its invocations in its state.
type counter struct{}

func (counter) Decode(_ actor.ID, data []byte) (any, error) {
	if data == nil {
		return 0, nil
	}
	return strconv.Atoi(string(data))
}
func (counter) Encode(s any) ([]byte, error) { return []byte(strconv.Itoa(s.(int))), nil }
func (counter) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	n := call.State.(int) + 1
	call.SetState(n)
	return []byte(strconv.Itoa(n)), nil
}

var agentX = actor.ID{Namespace: "counters", Key: "x"}

func stored(t *testing.T, store kv.Store, id actor.ID) string {
	t.Helper()
	txn, err := store.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	v, err := txn.Get(actor.StateKey(id))
	if err != nil {
		t.Fatal(err)
	}
	return string(v)
}

func claims(t *testing.T, store kv.Store, id actor.ID) []schema.ClusterClaim {
	t.Helper()
	txn, err := store.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	kvs, err := txn.Scan(kv.PrefixRange([]byte(schema.ClusterClaimLog.Prefix+id.String()+"/")), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var out []schema.ClusterClaim
	for _, e := range kvs {
		var c schema.ClusterClaim
		if err := schema.Decode(e.Value, &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func wantNotOwner(t *testing.T, err error, owner string) {
	t.Helper()
	var no *NotOwnerError
	if !errors.As(err, &no) || no.Node != owner || !errors.Is(err, kv.ErrFenced) {
		t.Fatalf("got %v, want NotOwnerError naming %s (a kv.ErrFenced)", err, owner)
	}
}

func checkStore(t *testing.T, store kv.Store) {
	t.Helper()
	txn, err := store.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	kvs, err := txn.Scan(kv.PrefixRange([]byte("cluster/")), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]schema.Entry, len(kvs))
	for i, e := range kvs {
		entries[i] = schema.Entry{Key: e.Key, Value: e.Value}
	}
	rep := schema.Check(entries)
	if len(rep.Problems) > 0 || rep.Keys[schema.ClusterClaimLog.Name] == 0 {
		t.Fatalf("schema.Check: %+v (keys %v)", rep.Problems, rep.Keys)
	}
}

// Spec: an actor is activated only on the node that claimed it; another
// node is told who owns it and runs nothing. Once the owner's lease has
// lapsed as the other node saw it, that node claims the actor at the next
// epoch, and the old owner's commits are rejected by the database even
// though the old owner (its clock stopped, like a paused process) still
// believes its lease holds.
func TestClaimMovesAndFencesTheOldOwner(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := join(t, url, "a"), join(t, url, "b")
	if n, err := a.inc(t, agentX); err != nil || n != 1 {
		t.Fatalf("inc on the first node: %d, %v", n, err)
	}
	_, err := b.inc(t, agentX)
	wantNotOwner(t, err, "a")
	if addr, err := b.Route(t.Context(), agentX.Key); err != nil || addr != "" {
		// Route is for agents; a counter is not one.
		t.Fatalf("Route of a non-agent: %q, %v", addr, err)
	}

	// b sees a's latest heartbeat now, then a says nothing for a whole TTL
	// of the database's clock.
	db := dbClock(url)
	b.tick(t)
	db.Advance(ttl - time.Millisecond)
	b.tick(t)
	_, err = b.inc(t, agentX)
	wantNotOwner(t, err, "a")
	db.Advance(time.Millisecond)
	b.tick(t)
	if _, err := b.Claim(t.Context(), agentX); err != nil {
		t.Fatalf("claim on the node taking over: %v", err)
	}

	// a's activation is still loaded, fenced on claim epoch 1, and b has
	// not committed anything for the actor yet: only the claim stops a.
	if err := a.Serving(); err != nil {
		t.Fatalf("the old owner should still believe it serves: %v", err)
	}
	_, err = a.inc(t, agentX)
	if !errors.Is(err, kv.ErrFenced) {
		t.Fatalf("old owner's commit: %v, want kv.ErrFenced", err)
	}
	if got := stored(t, b.store, agentX); got != "1" {
		t.Fatalf("stored %s after the fenced commit, want 1", got)
	}
	if n, err := b.inc(t, agentX); err != nil || n != 2 {
		t.Fatalf("inc on the node that took over: %d, %v", n, err)
	}
	_, err = a.inc(t, agentX) // reloads: finds b's claim
	wantNotOwner(t, err, "b")

	got := claims(t, a.store, agentX)
	if len(got) != 2 || got[0].Node != "a" || got[0].Epoch != 1 || got[1].Node != "b" || got[1].Epoch != 2 || got[1].From != "a" {
		t.Fatalf("claim log %+v, want a at 1 then b at 2 from a", got)
	}
	checkStore(t, a.store)
}

// Spec: a node stops serving its agents before any peer may take them: at
// SelfFenceFraction of the TTL after its last renewal began, while a peer
// that saw that renewal must still wait the rest of the TTL.
func TestServingStopsBeforeTakeover(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := join(t, url, "a"), join(t, url, "b")
	if _, err := a.inc(t, agentX); err != nil {
		t.Fatal(err)
	}
	a.tick(t)
	b.tick(t)
	stop := time.Duration(float64(ttl) * SelfFenceFraction)
	a.clock.Advance(stop - time.Millisecond)
	if _, err := a.inc(t, agentX); err != nil {
		t.Fatalf("owner within its lease: %v", err)
	}
	a.clock.Advance(time.Millisecond)
	dbClock(url).Advance(stop)
	b.tick(t)
	_, err := a.inc(t, agentX)
	if !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("owner past %v without renewal: %v, want kv.ErrUnavailable", stop, err)
	}
	_, err = b.inc(t, agentX)
	wantNotOwner(t, err, "a")
	// A renewal brings the owner back, and restarts the peer's count.
	a.tick(t)
	if n, err := a.inc(t, agentX); err != nil || n != 3 {
		t.Fatalf("owner after renewing: %d, %v", n, err)
	}
	dbClock(url).Advance(ttl - stop)
	b.tick(t)
	_, err = b.inc(t, agentX)
	wantNotOwner(t, err, "a")
}

// Spec: a node's restarted incarnation, and any node once the owner left,
// claims at once: the holder is gone, there is no lease to wait out.
func TestRestartAndLeaveHandOverAtOnce(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := join(t, url, "a")
	if _, err := a.inc(t, agentX); err != nil {
		t.Fatal(err)
	}
	dbClock(url).Advance(3 * ttl)
	a2 := join(t, url, "a") // the same node id, restarted after a crash
	if n, err := a2.inc(t, agentX); err != nil || n != 2 {
		t.Fatalf("restarted node: %d, %v", n, err)
	}
	b := join(t, url, "b")
	_, err := b.inc(t, agentX)
	wantNotOwner(t, err, "a")
	if err := a2.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := b.inc(t, agentX); err != nil || n != 3 {
		t.Fatalf("after the owner left: %d, %v", n, err)
	}
	for _, tn := range []*testNode{a2, b} { // a2 from a's crashed incarnation
		select {
		case id := <-tn.took:
			if id != agentX {
				t.Errorf("took over %v, want %v", id, agentX)
			}
		case <-time.After(10 * time.Second):
			t.Error("a node took the actor over without calling OnTakeover")
		}
	}
	got := claims(t, b.store, agentX)
	if len(got) != 3 || got[1].Node != "a" || got[1].Epoch != 2 || got[2].Node != "b" {
		t.Fatalf("claim log %+v", got)
	}
	checkStore(t, b.store)
}

// Spec: leases are judged by the database server's clock, so that a
// node's own clock stepping does not move them: a node whose clock jumps
// hours ahead does not take a live peer's agents, and a node whose clock
// is set back hours (and which stops renewing, as a paused process) still
// stops serving within its self-fence, measured by its timers, before the
// peer takes its agents over. Real Postgres time, real lease loops.
func TestNodeClockStepsDoNotMoveLeases(t *testing.T) {
	const ttl = 2 * time.Second
	url := pgtest.NewDatabase(t)
	a := joinStore(t, openStore(t, url), "a", start, ttl)
	b := joinStore(t, openStore(t, url), "b", start, ttl)
	if _, err := a.inc(t, agentX); err != nil {
		t.Fatal(err)
	}
	b.tick(t)
	b.clock.Advance(3 * time.Hour)
	if b.Serving() == nil {
		t.Fatal("a node whose clock jumped past its lease still serves before renewing")
	}
	b.tick(t) // renews, and reads a's record again: probably the heartbeat b saw before the jump
	_, err := b.inc(t, agentX)
	wantNotOwner(t, err, "a")

	close(a.stop) // a stops renewing, and its clock goes back
	<-a.stopped
	a.clock.Advance(-5 * time.Hour)
	deadline := time.Now().Add(30 * ttl) // a bound for a loaded machine, not a measurement
	for a.Serving() == nil {
		if time.Now().After(deadline) {
			t.Fatalf("a node set back and not renewing still serves %v later", 30*ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		n, err := b.inc(t, agentX)
		if err == nil {
			if n != 2 {
				t.Fatalf("count on the node that took over: %d, want 2", n)
			}
			break
		}
		wantNotOwner(t, err, "a")
		if a.Serving() == nil {
			t.Fatal("a serves again without renewing")
		}
		if time.Now().After(deadline) {
			t.Fatalf("b did not take the agent over in %v", 30*ttl)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.inc(t, agentX); !errors.Is(err, kv.ErrUnavailable) && !errors.Is(err, kv.ErrFenced) {
		t.Fatalf("the old owner's invocation: %v, want refused", err)
	}
}

// Spec: a second process started with the node id of a live node refuses
// to join, naming the live one; once that node stops renewing, a process
// with its id joins.
func TestDuplicateNodeIDRefused(t *testing.T) {
	const ttl = 3 * time.Second // renewals every 600ms: on time even on a loaded machine
	url := pgtest.NewDatabase(t)
	store := openStore(t, url)
	live, err := Join(t.Context(), Config{Store: store, NodeID: "a", Addr: "a.test:1", Secret: secret, LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Join(t.Context(), Config{Store: openStore(t, url), NodeID: "a", Addr: "a.test:2", Secret: secret, LeaseTTL: ttl})
	if !errors.Is(err, ErrNodeIDInUse) || !strings.Contains(err.Error(), "a.test:1") {
		t.Fatalf("second process with a live node's id: %v; want ErrNodeIDInUse naming a.test:1", err)
	}
	// The live node stops renewing (as a crashed process does): its record
	// stays, unchanged, and the next process with its id may join.
	close(live.stop)
	<-live.stopped
	again, err := Join(t.Context(), Config{Store: openStore(t, url), NodeID: "a", Addr: "a.test:3", Secret: secret, LeaseTTL: ttl})
	if err != nil {
		t.Fatalf("after the first stopped renewing: %v", err)
	}
	again.Leave(t.Context())
}

// Spec: Route sends a change of an agent to its live owner, and keeps it
// here when this node owns it, nobody does, or the owner's lease lapsed.
func TestRoute(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := join(t, url, "a"), join(t, url, "b")
	agentID := "agent-00000000-0000-4000-8000-000000000001"
	id := schema.AgentActor(agentID)
	for _, n := range []*testNode{a, b} {
		if addr, err := n.Route(t.Context(), agentID); err != nil || addr != "" {
			t.Fatalf("unclaimed agent routed to %q, %v", addr, err)
		}
	}
	if _, err := a.Claim(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if addr, err := a.Route(t.Context(), agentID); err != nil || addr != "" {
		t.Fatalf("own agent routed to %q, %v", addr, err)
	}
	if addr, err := b.Route(t.Context(), agentID); err != nil || addr != "a.test:8283" {
		t.Fatalf("a's agent routed from b to %q, %v", addr, err)
	}
	dbClock(url).Advance(ttl)
	b.tick(t) // b renews; a does not
	if addr, err := b.Route(t.Context(), agentID); err != nil || addr != "" {
		t.Fatalf("a lapsed owner's agent routed to %q, %v", addr, err)
	}
}

// Spec: GET /v1/cluster's body lists every node with its address, lease
// age and activations.
func TestMembers(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := join(t, url, "a"), join(t, url, "b")
	if _, err := a.inc(t, agentX); err != nil {
		t.Fatal(err)
	}
	a.cfg.Activations = func() int { return a.runtime.Stats().Active }
	a.tick(t)
	b.tick(t) // b sees a's latest heartbeat now
	dbClock(url).Advance(3 * time.Second)
	got, err := b.Members(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := got.(Members)
	if m.Node != "b" || len(m.Nodes) != 2 {
		t.Fatalf("members %+v", m)
	}
	na, nb := m.Nodes[0], m.Nodes[1]
	if na.ID != "a" || na.Address != "a.test:8283" || na.Activations != 1 || !na.Live || na.Self || na.LeaseAgeMS != 3000 {
		t.Fatalf("a as b sees it: %+v", na)
	}
	if nb.ID != "b" || !nb.Self || !nb.Live {
		t.Fatalf("b as b sees itself: %+v", nb)
	}
}

// Spec: only a request signed with the cluster's secret, for its own
// method and path, by a current member, to this incarnation, counts as
// forwarded, and only once: a duplicate or replay is refused, whatever
// the order marks arrive in. No wall clock enters: nodes whose clocks
// differ by hours forward to each other.
func TestForwardedSignature(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := join(t, url, "a")
	b := joinAt(t, url, "b", start.Add(-5*time.Hour)) // its clock is hours behind a's
	a.tick(t)                                         // a reads b's record: where b serves, and its incarnation
	req := func() *http.Request {
		return httptest.NewRequest("POST", "http://b.test:8283/v1/agents/agent-1/messages", nil)
	}
	signed := func() *http.Request {
		r := req()
		a.Sign(r)
		return r
	}
	r := signed()
	if ok, err := b.Forwarded(r); !ok || err != nil {
		t.Fatalf("signed request: %v, %v", ok, err)
	}
	if ok, err := b.Forwarded(r); ok || !errors.Is(err, ErrReplayed) {
		t.Fatalf("the same request again (duplicated): %v, %v; want ErrReplayed", ok, err)
	}
	if ok, err := b.Forwarded(req()); ok || err != nil {
		t.Fatalf("unsigned request: %v, %v", ok, err)
	}
	// Out of order: a later mark first, then the earlier one, once each.
	early, late := signed(), signed()
	for i, r := range []*http.Request{late, early} {
		if ok, err := b.Forwarded(r); !ok || err != nil {
			t.Fatalf("mark %d out of order: %v, %v", i, ok, err)
		}
	}
	if ok, err := b.Forwarded(early); ok || !errors.Is(err, ErrReplayed) {
		t.Fatalf("the earlier mark again: %v, %v; want ErrReplayed", ok, err)
	}
	for name, tamper := range map[string]func(*http.Request){
		"other path":   func(r *http.Request) { r.URL.Path = "/v1/agents/agent-2/messages" },
		"other method": func(r *http.Request) { r.Method = "DELETE" },
		"other sequence": func(r *http.Request) {
			f := strings.Fields(r.Header.Get(ForwardedHeader))
			f[2] = "999999"
			r.Header.Set(ForwardedHeader, strings.Join(f, " "))
		},
		"garbage": func(r *http.Request) { r.Header.Set(ForwardedHeader, "a 1 2 3") },
	} {
		if ok, err := b.Forwarded(func() *http.Request { r := signed(); tamper(r); return r }()); ok || err == nil {
			t.Errorf("%s: accepted (%v, %v)", name, ok, err)
		}
	}
	other := &Node{cfg: Config{NodeID: "a", Secret: []byte("another secret, as long"), Clock: a.clock}, incarnation: a.incarnation, peers: a.peers}
	r = req()
	other.Sign(r)
	if ok, err := b.Forwarded(r); ok || err == nil {
		t.Errorf("signature with another secret accepted")
	}
	// A mark for b's earlier incarnation reaches b restarted: refused, and
	// retryable (the sender routes again).
	stale := signed()
	dbClock(url).Advance(3 * ttl) // b's record is old: b2 joins without watching it
	b2 := joinAt(t, url, "b", start.Add(-5*time.Hour))
	if ok, err := b2.Forwarded(stale); ok || !errors.Is(err, kv.ErrFenced) {
		t.Fatalf("a mark for b's earlier incarnation: %v, %v; want kv.ErrFenced", ok, err)
	}
	// A member b2 has not read yet (a restarted since) is looked up.
	a2 := joinAt(t, url, "a", start.Add(7*time.Hour))
	r = req()
	a2.Sign(r)
	if ok, err := b2.Forwarded(r); !ok || err != nil {
		t.Fatalf("a restarted sender's first forward: %v, %v", ok, err)
	}
	if _, err := a.observe(t.Context()); err != nil { // a's old incarnation reads b2's record
		t.Fatal(err)
	}
	if ok, err := b2.Forwarded(signed()); ok || err == nil || errors.Is(err, kv.ErrFenced) || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("a mark of a's earlier incarnation, after it restarted: %v, %v; want refused as not a member", ok, err)
	}
}

// Spec: the replay window accepts each sequence number once, in any order
// within ForwardWindow, refuses one that fell behind it, and survives a
// sender jumping far ahead.
func TestReplayWindow(t *testing.T) {
	var w window
	for _, seq := range []uint64{1, 3, 2, 5, ForwardWindow, 4} {
		if !w.accept(seq) {
			t.Fatalf("first use of %d refused", seq)
		}
	}
	for _, seq := range []uint64{1, 2, 3, 4, 5, ForwardWindow} {
		if w.accept(seq) {
			t.Fatalf("second use of %d accepted", seq)
		}
	}
	if !w.accept(ForwardWindow + 10) {
		t.Fatal("a new mark refused")
	}
	if w.accept(9) || !w.accept(11) || w.accept(11) {
		t.Fatal("the window's lower edge: 9 is behind it, 11 inside")
	}
	if !w.accept(1<<62) || w.accept(ForwardWindow+11) || !w.accept(1<<62-1) {
		t.Fatal("after a jump far ahead")
	}
}

// Spec: a renewal whose answer was lost after the database applied it is
// not written again unchanged: the next renewal's heartbeat differs, so
// peers count the lease from the renewal the node counts it from.
func TestRenewalAfterALostAnswerMovesTheHeartbeat(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := join(t, url, "a")
	lossy := &lostAnswerStore{Store: a.store}
	a.cfg.Store = lossy
	before := heartbeat(t, a.store, "a")
	lossy.lose.Store(true)
	if err := a.renew(t.Context()); !errors.Is(err, kv.ErrUnavailable) {
		t.Fatalf("renewal with its answer lost: %v", err)
	}
	applied := heartbeat(t, a.store, "a")
	if applied == before {
		t.Fatal("the lost answer's renewal was not applied: the test proves nothing")
	}
	lossy.lose.Store(false)
	a.tick(t)
	if again := heartbeat(t, a.store, "a"); again == applied {
		t.Fatalf("the renewal after a lost answer wrote heartbeat %d again", again)
	}
}

func heartbeat(t *testing.T, store kv.Store, id string) uint64 {
	t.Helper()
	txn, err := store.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	r, found, err := schema.GetClusterNode(txn, id)
	if err != nil || !found {
		t.Fatalf("record of %s: %v, %v", id, found, err)
	}
	return r.Heartbeat
}

// lostAnswerStore commits, and then, while lose is set, reports the
// storage unavailable, as a connection that broke after COMMIT was sent.
type lostAnswerStore struct {
	kv.Store
	lose atomic.Bool
}

func (s *lostAnswerStore) Begin(ctx context.Context) (kv.Txn, error) {
	txn, err := s.Store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return lostAnswerTxn{Txn: txn, s: s}, nil
}

type lostAnswerTxn struct {
	kv.Txn
	s *lostAnswerStore
}

func (t lostAnswerTxn) Commit(ctx context.Context) error {
	if err := t.Txn.Commit(ctx); err != nil || !t.s.lose.Load() {
		return err
	}
	return fmt.Errorf("%w: the answer to COMMIT was lost", kv.ErrUnavailable)
}
