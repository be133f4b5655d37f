package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/cluster"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// A cluster run: ClusterNodes Kelpie nodes in one simulation, each with its
// own actor runtime, agent service, HTTP handler, clock (skewed by
// node_skew) and lease loop (package cluster), all committing to one
// shared simulated database (clusterdb.go). Clients send each call to a
// node at random; a node forwards what another owns over a simulated
// network (clusternet.go). The cluster's faults crash nodes, cut them off
// from the database or from their peers, stall their lease renewals, skew
// and step their clocks, lose the database's answers, and delay, drop,
// duplicate or reorder forwarded requests.

// Cluster run settings. The lease is long against the simulated network's
// delays and the scheduling noise of a native run (its clock is real), and
// short against the run, so that leases lapse and agents move within it.
const (
	ClusterNodes    = 3
	clusterLeaseTTL = time.Second
	// clusterSecret signs forwarded requests (it only has to be shared).
	clusterSecret = "kelpie-sim-cluster-secret"
	// maxNodeSkew bounds a node's clock offset at start, and maxNodeJump
	// each step of it: far beyond a lease (leases are judged by the
	// database's clock, forwarded marks carry no time).
	maxNodeSkew = 10 * time.Minute
	maxNodeJump = time.Hour
	// maxNodeOutage bounds how long a node stays down, cut off or stalled.
	maxNodeOutage = 3 * clusterLeaseTTL / 2
)

// pathCluster is the class of the cluster's events on an operation's path:
// a commit fenced because its agent moved, a claim refused because a live
// node holds the agent, a forward that did not reach its node, a node not
// serving while the call ran there.
const pathCluster = "cluster"

// isCluster reports whether p runs a cluster: it has a cluster fault.
func isCluster(p Profile) bool {
	for _, k := range groups["cluster"] {
		if p.Has(k) {
			return true
		}
	}
	return false
}

// simCluster is the cluster of one incarnation of the simulated system.
type simCluster struct {
	sys *system
	inc *incarnation
	db  *sharedDB

	mu      sync.Mutex
	nodes   []*simNode          // the current incarnation of each node
	byInc   map[string]*simNode // every node incarnation, by its cluster incarnation
	beats   map[string]time.Time
	peerCut []bool // node slot cut off from its peers
	stalled []bool // node slot whose database calls stall
	done    bool
	// deliveries counts the forwards of each call that a node accepted.
	deliveries map[*opRecord]int
	// held are the forwards of each node slot waiting to be overtaken.
	held     [][]chan struct{}
	restarts sync.WaitGroup // restarts of crashed nodes under way
}

// simNode is one start of one node.
type simNode struct {
	c       *simCluster
	slot    int
	id      string
	clock   *Clock
	node    *cluster.Node
	svc     *agent.Service
	handler http.Handler
	ctx     context.Context
	cancel  context.CancelFunc
	crashed atomic.Bool
	dbCut   atomic.Bool

	mu       sync.Mutex
	inflight map[*opRecord]int
}

func (n *simNode) incarnation() string {
	if n.node == nil {
		return ""
	}
	return n.node.Incarnation()
}

// nodeAddr is the address node slot i is reached at on the simulated
// network.
func nodeAddr(i int) string { return fmt.Sprintf("node-%d.sim:8283", i) }

// startCluster brings up the nodes of inc over the shared database.
func (s *system) startCluster(inc *incarnation) error {
	c := &simCluster{sys: s, inc: inc, byInc: map[string]*simNode{}, deliveries: map[*opRecord]int{}, beats: map[string]time.Time{},
		peerCut: make([]bool, ClusterNodes), stalled: make([]bool, ClusterNodes), nodes: make([]*simNode, ClusterNodes),
		held: make([][]chan struct{}, ClusterNodes)}
	c.db = &sharedDB{disk: s.disk, cl: c}
	inc.cl = c
	for i := range ClusterNodes {
		var skew time.Duration
		if s.inj.fire(NodeSkew, "") {
			skew = time.Duration(s.inj.intn(int(2*maxNodeSkew/time.Millisecond))-int(maxNodeSkew/time.Millisecond)) * time.Millisecond
		}
		n, err := c.startNode(i, skew)
		if err != nil {
			return err
		}
		c.nodes[i] = n
		inc.handlers = append(inc.handlers, nodeHandler{c: c, slot: i})
	}
	return nil
}

// startNode starts node slot i with its clock offset by skew.
func (c *simCluster) startNode(i int, skew time.Duration) (*simNode, error) {
	s := c.sys
	n := &simNode{c: c, slot: i, id: fmt.Sprintf("n%d", i), clock: NewClock(s.clock.base), inflight: map[*opRecord]int{}}
	n.clock.Skew(skew)
	n.ctx, n.cancel = context.WithCancel(c.inc.ctx)
	var store kv.Store = &pathStore{inner: kv.NewDB(&dbView{db: c.db, node: n}), sys: s}
	if v := s.cfg.Variant; v != nil && v.WrapStore != nil {
		store = v.WrapStore(store, VariantEnv{
			Clock: n.clock, IdleTimeout: s.cfg.IdleTimeout, Done: n.ctx.Done(),
			Seed: splitmix64(s.cfg.Seed ^ streamVariant + uint64(c.inc.n*ClusterNodes+i)),
		})
	}
	var svcRef atomic.Pointer[agent.Service]
	var nodeClock clock.Clock = n.clock
	if v := s.cfg.Variant; v != nil && v.WrapNodeClock != nil {
		nodeClock = v.WrapNodeClock(nodeClock)
	}
	node, err := cluster.Join(n.ctx, cluster.Config{
		Store: store, NodeID: n.id, Addr: nodeAddr(i), Secret: []byte(clusterSecret),
		LeaseTTL: clusterLeaseTTL, Clock: nodeClock, Rand: s.ids,
		Activations: func() int {
			if svc := svcRef.Load(); svc != nil {
				return svc.Counts().Runtime.Active
			}
			return 0
		},
		Placed: func(namespace string) bool { return namespace == schema.AgentNamespace },
		OnTakeover: func(id actor.ID) {
			if svc := svcRef.Load(); svc != nil {
				// Its failure (the node crashed, say) leaves the run to
				// the agent's next turn.
				if err := svc.Agents.CloseInterruptedRun(n.ctx, id.Key); err != nil {
					s.rec.event("node %s: closing the interrupted run of %s failed: %v", n.id, id.Key, err)
				}
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("node %s did not join: %w", n.id, err)
	}
	n.node = node
	var placement actor.Placement = &notingPlacement{inner: node, n: n}
	var transport http.RoundTripper = &simNet{c: c, from: n}
	if v := s.cfg.Variant; v != nil {
		if v.WrapPlacement != nil {
			placement = v.WrapPlacement(placement, store)
		}
		if v.WrapForward != nil {
			transport = v.WrapForward(transport, node.Sign)
		}
	}
	svc, err := agent.New(s.serviceConfig(store, n.clock, c.inc, placement))
	if err != nil {
		_ = node.Leave(context.Background())
		return nil, err
	}
	svcRef.Store(svc)
	n.svc = svc
	var router api.Cluster = node
	if v := s.cfg.Variant; v != nil && v.WrapCluster != nil {
		router = v.WrapCluster(router)
	}
	n.handler = api.NewHandler(svc, api.Options{Cluster: notingRouter{Cluster: router, n: n}, ForwardTransport: transport})
	c.mu.Lock()
	c.byInc[node.Incarnation()] = n
	c.mu.Unlock()
	s.rec.event("node %s started incarnation=%s skew=%s", n.id, node.Incarnation(), skew)
	return n, nil
}

// services returns the current services of the nodes.
func (c *simCluster) services() []*agent.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*agent.Service, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.svc
	}
	return out
}

// node returns the current incarnation of node slot i.
func (c *simCluster) node(i int) *simNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// nodeHandler sends a client's request to the current incarnation of a
// node slot, or, while that node is down, to the next one up (as a load
// balancer would).
type nodeHandler struct {
	c    *simCluster
	slot int
}

func (h nodeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for i := range ClusterNodes {
		if n := h.c.node((h.slot + i) % ClusterNodes); !n.crashed.Load() {
			n.serve(w, r)
			return
		}
	}
	h.c.sys.notePath(r.Context(), pathCluster, "every node was down")
	http.Error(w, `{"detail":"no node is up"}`, http.StatusServiceUnavailable)
}

// serve runs a request on n: it ends when n crashes, and it is noted as
// in flight there, so that a node that stops serving marks what it was
// running.
func (n *simNode) serve(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()
	op := opOf(ctx)
	if op != nil {
		n.enter(op)
		defer n.leave(op)
	}
	n.handler.ServeHTTP(w, r.WithContext(ctx))
}

func (n *simNode) enter(op *opRecord) {
	n.mu.Lock()
	n.inflight[op]++
	n.mu.Unlock()
	if n.crashed.Load() {
		op.trail.fault(pathCluster, n.c.sys.rec.seq.Load(), fmt.Sprintf("node %s had crashed", n.id))
	} else if err := n.node.Serving(); err != nil {
		op.trail.fault(pathCluster, n.c.sys.rec.seq.Load(), err.Error())
	}
}

func (n *simNode) leave(op *opRecord) {
	n.mu.Lock()
	if n.inflight[op]--; n.inflight[op] <= 0 {
		delete(n.inflight, op)
	}
	n.mu.Unlock()
}

// noteInflight puts what happened to the node on the trail of every call
// in flight there.
func (n *simNode) noteInflight(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	at := n.c.sys.rec.seq.Load()
	n.mu.Lock()
	defer n.mu.Unlock()
	for op := range n.inflight {
		op.trail.fault(pathCluster, at, text)
	}
}

// notingPlacement is a node's placement that notes on the trails the
// refusals it makes: a claim refused (another live node holds the agent),
// or the node not serving.
type notingPlacement struct {
	inner actor.Placement
	n     *simNode
}

func (p *notingPlacement) Claim(ctx context.Context, id actor.ID) (*actor.Fence, error) {
	f, err := p.inner.Claim(ctx, id)
	if err != nil {
		p.n.c.sys.notePath(ctx, pathCluster, "node %s could not claim %s: %v", p.n.id, id, err)
	}
	return f, err
}

func (p *notingPlacement) Serving() error {
	err := p.inner.Serving()
	if err != nil {
		p.n.noteInflight("node %s is not serving: %v", p.n.id, err)
	}
	return err
}

// notingRouter is a node as the API sees it: a route refused (the node is
// not serving, or cannot read the claim) is noted on the call's trail.
type notingRouter struct {
	api.Cluster
	n *simNode
}

// Forwarded counts the forwarded requests the node accepts (the
// forwarding checker), and notes a refused one on the call's trail.
func (r notingRouter) Forwarded(req *http.Request) (bool, error) {
	ok, err := r.Cluster.Forwarded(req)
	if err != nil {
		r.n.c.sys.notePath(req.Context(), pathCluster, "node %s refused a forwarded request: %v", r.n.id, err)
	}
	if op := opOf(req.Context()); ok && op != nil {
		r.n.c.accepted(op, r.n)
	}
	return ok, err
}

func (r notingRouter) Route(ctx context.Context, agentID string) (string, error) {
	addr, err := r.Cluster.Route(ctx, agentID)
	if err != nil {
		r.n.c.sys.notePath(ctx, pathCluster, "node %s could not route %s: %v", r.n.id, agentID, err)
	}
	return addr, err
}

// stall holds a database call of node n while its slot is stalled (a slow
// database connection), up to the end of ctx.
func (c *simCluster) stall(ctx context.Context, n *simNode) error {
	for {
		c.mu.Lock()
		stalled := c.stalled[n.slot] && !c.done
		c.mu.Unlock()
		if !stalled {
			return nil
		}
		select {
		case <-ctx.Done():
			c.sys.notePath(ctx, pathStorage, "node %s: a database call stalled until its deadline", n.id)
			return fmt.Errorf("%w: sim: a database call stalled past its deadline: %w", kv.ErrUnavailable, ctx.Err())
		case <-n.ctx.Done():
			return ErrCrashed
		case <-c.sys.clock.base.After(time.Millisecond):
		}
	}
}

// crashNode kills the current incarnation of slot i: its database calls
// fail from now on, its requests end, its lease is left to lapse. It is
// restarted after down. Nothing happens while another node is down.
func (c *simCluster) crashNode(i int, down time.Duration) {
	c.mu.Lock()
	n := c.nodes[i]
	if c.done || c.downLocked() {
		c.mu.Unlock()
		return
	}
	n.crashed.Store(true)
	c.mu.Unlock()
	seq := c.sys.rec.tick()
	c.sys.rec.event("node %s crashed incarnation=%s down=%s", n.id, n.incarnation(), down)
	n.noteInflight("node %s crashed at %d", n.id, seq)
	n.cancel()
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n.svc.Close(ctx)
		_ = n.node.Leave(ctx) // fails: the crashed node cannot write; it stops the lease loop
	}()
	c.restarts.Go(func() {
		<-c.sys.clock.base.After(down)
		c.mu.Lock()
		if c.done {
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		next, err := c.startNode(i, n.clock.Offset())
		if err != nil {
			c.sys.violation("liveness", "", "node %s did not restart: %v", n.id, err)
			return
		}
		c.mu.Lock()
		done := c.done
		if !done {
			c.nodes[i] = next
		}
		c.mu.Unlock()
		if done {
			// The run ended while it joined: it leaves at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			next.svc.Close(ctx)
			_ = next.node.Leave(context.Background())
		}
	})
}

// downLocked reports whether a node is down: one at a time crashes, so
// that the cluster keeps serving. Called with c.mu held.
func (c *simCluster) downLocked() bool {
	for _, n := range c.nodes {
		if n.crashed.Load() {
			return true
		}
	}
	return false
}

// forWindow sets flag for slot i for a while, then clears it.
func (c *simCluster) forWindow(what string, i int, d time.Duration, set func(n *simNode, on bool)) {
	n := c.node(i)
	c.sys.rec.event("node %s %s for %s", n.id, what, d)
	set(n, true)
	n.noteInflight("node %s %s", n.id, what)
	go func() {
		<-c.sys.clock.base.After(d)
		set(c.node(i), false)
		c.sys.rec.event("node %s healed (%s)", n.id, what)
	}()
}

// drawFaults draws the cluster's node faults, as the clients' process
// faults are drawn: before a client's operation.
func (c *simCluster) drawFaults() {
	s := c.sys
	outage := func() time.Duration {
		return time.Duration(1+s.inj.intn(int(maxNodeOutage/time.Millisecond))) * time.Millisecond
	}
	if s.inj.fire(NodeCrash, "") {
		c.crashNode(s.inj.intn(ClusterNodes), outage())
	}
	if s.inj.fire(DBPartition, "") {
		c.forWindow("cut off from the database", s.inj.intn(ClusterNodes), outage(), func(n *simNode, on bool) { n.dbCut.Store(on) })
	}
	if s.inj.fire(PeerPartition, "") {
		i := s.inj.intn(ClusterNodes)
		c.forWindow("cut off from its peers", i, outage(), func(_ *simNode, on bool) {
			c.mu.Lock()
			c.peerCut[i] = on
			c.mu.Unlock()
		})
	}
	if s.inj.fire(NodeJump, "") {
		n := c.node(s.inj.intn(ClusterNodes))
		d := time.Duration(1+s.inj.intn(int(maxNodeJump/time.Millisecond))) * time.Millisecond
		if s.inj.intn(2) == 0 {
			d = -d
		}
		n.clock.Jump(d)
		s.rec.event("node %s clock stepped by %s", n.id, d)
	}
	if s.inj.fire(LeaseStall, "") {
		i := s.inj.intn(ClusterNodes)
		c.forWindow("stalled on the database", i, outage(), func(_ *simNode, on bool) {
			c.mu.Lock()
			c.stalled[i] = on
			c.mu.Unlock()
		})
	}
}

// stop ends the cluster's faults and shuts every live node down cleanly
// (each leaves the cluster), waiting up to wait for calls in flight.
func (c *simCluster) stop(wait time.Duration) {
	c.mu.Lock()
	c.done = true
	for i := range c.peerCut {
		c.peerCut[i], c.stalled[i] = false, false
	}
	c.mu.Unlock()
	c.restarts.Wait()
	c.mu.Lock()
	nodes := append([]*simNode(nil), c.nodes...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		n.dbCut.Store(false)
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			if wait > 0 {
				ctx, cancel = context.WithTimeout(ctx, wait)
			} else {
				cancel()
			}
			defer cancel()
			n.svc.Close(ctx)
			if !n.crashed.Load() {
				_ = n.node.Leave(ctx)
			}
		})
	}
	wg.Wait()
}

// crashAll kills every node at once (the whole simulated process).
func (c *simCluster) crashAll() {
	c.mu.Lock()
	c.done = true
	nodes := append([]*simNode(nil), c.nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		n.crashed.Store(true)
		n.cancel()
	}
}

// noteHeartbeats records when each node incarnation's heartbeat landed.
// Called with the database's commit lock held.
func (c *simCluster) noteHeartbeats(batch []kv.Mutation) {
	for _, m := range batch {
		if len(m.Key) > len(schema.ClusterNodes.Prefix) && string(m.Key[:len(schema.ClusterNodes.Prefix)]) == schema.ClusterNodes.Prefix && m.Value != nil {
			var rec schema.ClusterNode
			if raw, ok := unseal(m.Key, m.Value); ok && json.Unmarshal(raw, &rec) == nil {
				c.mu.Lock()
				c.beats[rec.Incarnation] = c.sys.clock.base.Now()
				c.mu.Unlock()
			}
		}
	}
}

// checkTakeover checks a claim by n that takes actorID from the holder of
// old: unless the holder's incarnation is gone (its node restarted, or
// left), its lease must have lapsed — no heartbeat of it for a whole
// lease, on the taker's clock (which runs at the base clock's rate) — and
// it must have stopped serving. Called with the database's commit lock
// held.
func (c *simCluster) checkTakeover(n *simNode, actorID string, old schema.ClusterClaim) {
	c.mu.Lock()
	holder := c.byInc[old.Incarnation]
	beat, beaten := c.beats[old.Incarnation]
	current := holder != nil && c.nodes[holder.slot] == holder
	c.mu.Unlock()
	if holder == nil || !current || holder.crashed.Load() {
		return // that incarnation is gone
	}
	since := c.sys.clock.base.Now().Sub(beat)
	switch {
	case beaten && since < clusterLeaseTTL:
		c.sys.violation("single-activation", objectOfActor(actorID), "node %s took %s from node %s (epoch %d) %s after that node's last heartbeat, within its lease of %s",
			n.id, actorID, old.Node, old.Epoch, since, clusterLeaseTTL)
	case holder.node.Serving() == nil:
		c.sys.violation("single-activation", objectOfActor(actorID), "node %s took %s from node %s (epoch %d) while that node was still serving",
			n.id, actorID, old.Node, old.Epoch)
	}
}
