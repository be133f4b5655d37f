package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Lease timing. A node renews its lease HeartbeatsPerTTL times per
// LeaseTTL; it stops serving after SelfFenceFraction of LeaseTTL without a
// renewal, so the 1/5 of LeaseTTL left is the margin between a node
// stopping and a peer taking over (covering clock rate differences and the
// time a peer needs to see the last renewal).
const (
	DefaultLeaseTTL   = 10 * time.Second
	MinLeaseTTL       = 500 * time.Millisecond
	HeartbeatsPerTTL  = 5
	SelfFenceFraction = 0.8
)

// MinSecretBytes is the shortest cluster secret accepted.
const MinSecretBytes = 16

// Config configures a Node. Zero fields take the defaults they name.
type Config struct {
	Store  kv.Store // the store every node shares; required
	NodeID string   // unique in the cluster; required
	// Addr is the host:port peers forward requests to; required.
	Addr string
	// Secret authenticates forwarded requests; at least MinSecretBytes.
	Secret   []byte
	LeaseTTL time.Duration // 0: DefaultLeaseTTL
	Clock    clock.Clock   // nil: the system clock
	Logger   *slog.Logger  // nil: discard
	Rand     io.Reader     // the incarnation's source; nil: crypto/rand
	// Activations reports the node's live activations, for its record;
	// nil reports 0.
	Activations func() int
	// Placed reports whether actors of a namespace are placed (owned by one
	// node); nil places every actor.
	Placed func(namespace string) bool
	// OnTakeover, when set, is called (in a goroutine of its own) once
	// this node took an actor over from another node: the work the old
	// owner left unfinished (a turn's run) can be closed then.
	OnTakeover func(id actor.ID)
}

// Node is this process's membership in the cluster. Create it with Join;
// stop it with Leave.
type Node struct {
	cfg         Config
	incarnation string
	started     time.Time

	stop    chan struct{}
	stopped chan struct{}

	mu       sync.Mutex
	renewed  time.Time // when the last renewal that committed began, on this node's clock
	attempts uint64    // renewals begun: each writes its number as the heartbeat
	held     uint64    // the attempt of the last renewal that committed
	// lease is done once this node must stop serving: the self-fence timer
	// of the renewal held fired before a later one committed (nil before
	// the first renewal).
	lease    context.Context
	endLease context.CancelFunc
	peers    map[string]*peer

	forwards forwardState // auth.go
}

// peer is what this node observed of another node's record.
type peer struct {
	rec     schema.ClusterNode
	changed time.Time // when this node first saw rec's heartbeat, by the database's clock
}

// dbNow is the time of txn's snapshot by the database's clock: every node
// judges leases by that one clock, so that no node's clock (skewed, or
// stepped forwards or back) decides a peer's lease. A store that keeps no
// clock of its own (one process on a local engine) leaves this node's.
func (n *Node) dbNow(txn kv.Txn) time.Time {
	if at, ok := kv.SnapshotTime(txn); ok {
		return at
	}
	return n.cfg.Clock.Now()
}

// Join registers this node (its first heartbeat must commit) and starts
// renewing its lease.
func Join(ctx context.Context, cfg Config) (*Node, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("cluster: Config.Store is nil")
	case cfg.NodeID == "" || len(cfg.NodeID) > 128:
		return nil, errors.New("cluster: a node id of 1 to 128 bytes is required")
	case cfg.Addr == "":
		return nil, errors.New("cluster: the node's advertised address is required")
	case len(cfg.Secret) < MinSecretBytes:
		return nil, fmt.Errorf("cluster: the cluster secret must be at least %d bytes", MinSecretBytes)
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < MinLeaseTTL {
		return nil, fmt.Errorf("cluster: lease TTL %v is below the minimum %v", cfg.LeaseTTL, MinLeaseTTL)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	inc := make([]byte, 8)
	if _, err := io.ReadFull(cfg.Rand, inc); err != nil {
		return nil, fmt.Errorf("cluster: incarnation: %w", err)
	}
	n := &Node{
		cfg: cfg, incarnation: hex.EncodeToString(inc), started: cfg.Clock.Now(),
		stop: make(chan struct{}), stopped: make(chan struct{}), peers: map[string]*peer{},
	}
	if err := n.unique(ctx); err != nil {
		return nil, err
	}
	if err := n.register(ctx); err != nil {
		return nil, fmt.Errorf("cluster: registering node %s: %w", cfg.NodeID, err)
	}
	if _, err := n.observe(ctx); err != nil {
		return nil, fmt.Errorf("cluster: reading the members: %w", err)
	}
	go n.run()
	return n, nil
}

// JoinAttempts bounds the registrations Join tries, one renewal interval
// apart, while the database is unavailable (or an answer was lost).
const JoinAttempts = 10

// register commits the node's first heartbeat, trying again while the
// database is unavailable.
func (n *Node) register(ctx context.Context) error {
	for i := 1; ; i++ {
		err := n.renew(ctx)
		if err == nil || !errors.Is(err, kv.ErrUnavailable) || i == JoinAttempts {
			return err
		}
		n.cfg.Logger.Warn("cluster: registering failed; trying again", "node", n.cfg.NodeID, "attempt", i, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.cfg.Clock.After(n.interval()):
		}
	}
}

// ErrNodeIDInUse means another live process already runs as this node.
var ErrNodeIDInUse = errors.New("cluster: node id in use")

// unique refuses to join while another process runs under this node id:
// a record of another incarnation that is still renewed. A record whose
// last heartbeat is more than two leases old by the database's clock (a
// margin for late renewals) is taken for one left by a crash; a
// fresher one is watched for up to a lease, to
// tell a quick restart after a crash (the record stops changing) from a
// live duplicate. A clean shutdown removed its record: a restart after one
// never waits.
func (n *Node) unique(ctx context.Context) error {
	first, now, err := n.record(ctx)
	if err != nil || first == nil || now.Sub(first.At) > 2*n.cfg.LeaseTTL {
		return err
	}
	// Two changes: one could be the last renewal of a crashed process,
	// still in flight when it died; a live one renews HeartbeatsPerTTL
	// times in the watch.
	last, changes := first, 0
	for range HeartbeatsPerTTL + 1 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.cfg.Clock.After(n.interval()):
		}
		now, _, err := n.record(ctx)
		if err != nil || now == nil {
			return err // nil: it left
		}
		if now.Incarnation != last.Incarnation || now.Heartbeat != last.Heartbeat {
			changes++
		}
		last = now
		if changes >= 2 {
			return fmt.Errorf("%w: another live process is node %s (address %s, started %s, still renewing its lease): give each node its own --node-id",
				ErrNodeIDInUse, n.cfg.NodeID, now.Addr, now.Started.Format(time.RFC3339))
		}
	}
	return nil
}

// record reads this node id's membership record (nil: none), and the
// database's time of the read.
func (n *Node) record(ctx context.Context) (*schema.ClusterNode, time.Time, error) {
	txn, err := n.cfg.Store.Begin(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer txn.Discard()
	r, found, err := schema.GetClusterNode(txn, n.cfg.NodeID)
	if err != nil || !found {
		return nil, time.Time{}, err
	}
	return r, n.dbNow(txn), nil
}

// ID is the node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Incarnation identifies this start of the node: its claims carry it.
func (n *Node) Incarnation() string { return n.incarnation }

// LeaseTTL is the lease the node keeps.
func (n *Node) LeaseTTL() time.Duration { return n.cfg.LeaseTTL }

func (n *Node) interval() time.Duration { return n.cfg.LeaseTTL / HeartbeatsPerTTL }

// run renews the lease and observes the peers until Leave.
func (n *Node) run() {
	defer close(n.stopped)
	t := n.cfg.Clock.NewTicker(n.interval())
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C():
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.interval())
		if err := n.renew(ctx); err != nil {
			n.cfg.Logger.Warn("cluster: lease renewal failed", "node", n.cfg.NodeID, "err", err, "serving", n.Serving() == nil)
		} else if _, err := n.observe(ctx); err != nil {
			n.cfg.Logger.Warn("cluster: reading the members failed", "node", n.cfg.NodeID, "err", err)
		}
		cancel()
	}
}

// renew commits the next heartbeat. The renewal counts from when it began:
// a peer can only have seen it after that. Every attempt writes a new
// heartbeat, so that one the database applied though its answer was lost
// is not written again unchanged by the next (peers would count the
// lease from the first, the node from the second). Its self-fence timer starts
// then too: timers measure elapsed time (a monotonic clock), which a step
// of the node's wall clock does not move, so a clock set back does not
// stretch the node's lease.
func (n *Node) renew(ctx context.Context) error {
	began := n.cfg.Clock.Now()
	expiry := n.cfg.Clock.After(n.selfFence())
	n.mu.Lock()
	n.attempts++
	attempt := n.attempts
	n.mu.Unlock()
	activations := 0
	if n.cfg.Activations != nil {
		activations = n.cfg.Activations()
	}
	err := n.update(ctx, func(txn kv.Txn) error {
		return schema.PutClusterNode(txn, &schema.ClusterNode{
			ID: n.cfg.NodeID, Incarnation: n.incarnation, Addr: n.cfg.Addr, Heartbeat: attempt,
			At: n.dbNow(txn).UTC(), Started: n.started.UTC(), Activations: activations,
		})
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.renewed, n.held = began, attempt
	if n.lease == nil || n.lease.Err() != nil {
		n.lease, n.endLease = context.WithCancel(context.Background())
	}
	n.mu.Unlock()
	go n.expire(attempt, expiry)
	return nil
}

// expire ends the lease when the self-fence timer of renewal attempt
// fires, unless a later renewal committed since.
func (n *Node) expire(attempt uint64, expiry <-chan time.Time) {
	<-expiry
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held == attempt {
		n.endLease()
	}
}

// selfFence is how long after a renewal began the node stops serving
// unless another renewal committed.
func (n *Node) selfFence() time.Duration {
	return time.Duration(float64(n.cfg.LeaseTTL) * SelfFenceFraction)
}

// update runs fn in a transaction and commits it.
func (n *Node) update(ctx context.Context, fn func(kv.Txn) error) error {
	txn, err := n.cfg.Store.Begin(ctx)
	if err != nil {
		return err
	}
	defer txn.Discard()
	if err := fn(txn); err != nil {
		return err
	}
	return txn.Commit(ctx)
}

// observe reads every member record and notes whose heartbeat moved; it
// returns the database's time of the read.
func (n *Node) observe(ctx context.Context) (time.Time, error) {
	txn, err := n.cfg.Store.Begin(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer txn.Discard()
	recs, err := schema.ClusterNodesIn(txn)
	if err != nil {
		return time.Time{}, err
	}
	now := n.dbNow(txn)
	n.mu.Lock()
	defer n.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.ID] = true
		n.notePeerLocked(r, now)
	}
	for id := range n.peers {
		if !seen[id] {
			delete(n.peers, id)
		}
	}
	return now, nil
}

// notePeerLocked records what this node sees of a member's record in a
// snapshot the database took at now.
func (n *Node) notePeerLocked(r *schema.ClusterNode, now time.Time) {
	p := n.peers[r.ID]
	if p == nil || p.rec.Incarnation != r.Incarnation || p.rec.Heartbeat != r.Heartbeat {
		p = &peer{changed: now}
		n.peers[r.ID] = p
	}
	p.rec = *r
}

// liveLocked reports whether the incarnation inc of node id holds a lease
// as far as this node has seen (r is its record as read in a snapshot the
// database took at now, nil when it has none): its heartbeat changed less
// than a lease ago by the database's clock.
func (n *Node) liveLocked(id, inc string, r *schema.ClusterNode, now time.Time) bool {
	if r == nil || r.Incarnation != inc {
		return false // the node left, or restarted: that incarnation is gone
	}
	n.notePeerLocked(r, now)
	return now.Sub(n.peers[id].changed) < n.cfg.LeaseTTL
}

// Serving returns nil while this node's lease is certainly its own: less
// than SelfFenceFraction of LeaseTTL since its last renewal began, by its
// self-fence timer and by its clock (a clock stepped forwards stops it
// early, which is safe; one stepped back does not keep it serving, as the
// timer does not move).
func (n *Node) Serving() error {
	_, _, err := n.leaseLeft()
	return err
}

// leaseLeft is how long this node may still serve without renewing, and a
// context done once it must stop.
func (n *Node) leaseLeft() (context.Context, time.Duration, error) {
	n.mu.Lock()
	renewed, lease := n.renewed, n.lease
	n.mu.Unlock()
	limit := n.selfFence()
	since := n.cfg.Clock.Now().Sub(renewed)
	if lease == nil || lease.Err() != nil || since >= limit {
		return nil, 0, fmt.Errorf("%w: cluster node %s has not renewed its lease within %v: not serving its agents until it does",
			kv.ErrUnavailable, n.cfg.NodeID, limit)
	}
	return lease, limit - since, nil
}

// Leave stops renewing and removes this node's record, so that its agents
// can be claimed at once. Call it after the node stopped serving.
func (n *Node) Leave(ctx context.Context) error {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.stopped
	n.mu.Lock()
	if n.endLease != nil {
		n.endLease()
	}
	n.mu.Unlock()
	return n.update(ctx, func(txn kv.Txn) error {
		r, found, err := schema.GetClusterNode(txn, n.cfg.NodeID)
		if err != nil || !found || r.Incarnation != n.incarnation {
			return err // a later incarnation's record is not ours to remove
		}
		return txn.Delete(schema.ClusterNodeKey(n.cfg.NodeID))
	})
}

// Member is one node as GET /v1/cluster shows it.
type Member struct {
	ID          string    `json:"id"`
	Address     string    `json:"address"`
	Self        bool      `json:"self"`
	Live        bool      `json:"live"`
	LeaseAgeMS  int64     `json:"lease_age_ms"` // since its heartbeat last changed, by the database's clock (this node's own: since its last renewal began, by its clock)
	Activations int       `json:"activations"`  // at its last heartbeat (now, for this node)
	Heartbeat   uint64    `json:"heartbeat"`
	StartedAt   time.Time `json:"started_at"`
}

// Members is the body of GET /v1/cluster.
type Members struct {
	Node       string   `json:"node"` // the node that answered
	LeaseTTLMS int64    `json:"lease_ttl_ms"`
	Nodes      []Member `json:"nodes"`
}

// Members reads the member records and reports each as this node sees it.
func (n *Node) Members(ctx context.Context) (any, error) {
	dbNow, err := n.observe(ctx)
	if err != nil {
		return nil, err
	}
	serving, activations := n.Serving() == nil, 0
	if n.cfg.Activations != nil {
		activations = n.cfg.Activations()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.cfg.Clock.Now()
	out := Members{Node: n.cfg.NodeID, LeaseTTLMS: n.cfg.LeaseTTL.Milliseconds(), Nodes: []Member{}}
	for id, p := range n.peers {
		m := Member{
			ID: id, Address: p.rec.Addr, Activations: p.rec.Activations, Heartbeat: p.rec.Heartbeat, StartedAt: p.rec.Started,
			LeaseAgeMS: dbNow.Sub(p.changed).Milliseconds(), Live: dbNow.Sub(p.changed) < n.cfg.LeaseTTL,
		}
		if id == n.cfg.NodeID && p.rec.Incarnation == n.incarnation {
			m.Self, m.Live, m.LeaseAgeMS, m.Activations = true, serving, now.Sub(n.renewed).Milliseconds(), activations
		}
		out.Nodes = append(out.Nodes, m)
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].ID < out.Nodes[j].ID })
	return out, nil
}
