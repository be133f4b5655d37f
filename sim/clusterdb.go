package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// The shared database of a cluster run: every node commits to the one
// simulated disk (a kv.MemEngine), through a view of its own that plays its
// connection. It has the semantics kv/postgres gives a kv.SharedEngine: a
// transaction reads a consistent snapshot; its commit is validated against
// everything committed since, atomically with applying it — each key it
// read and each range it scanned must read the same now (serializable:
// the transaction is then equivalent to running at its commit), and each
// fence key must hold its epoch (kv.ErrFenced otherwise) — and nothing of
// a rejected commit is applied.
//
// The commit is also where the cluster's safety is checked (the
// single-activation checker): every commit of an agent's activation must
// be fenced on the agent's claim and come from the node incarnation that
// holds that claim, and
// a claim may take an agent from another node only once that node has
// stopped serving (or its incarnation is gone) and its lease has lapsed on
// the taker's clock.

// ErrDBUnreachable is what a node cut off from the database gets.
// As kv/postgres reports a lost connection: kv.ErrUnavailable.
var ErrDBUnreachable = fmt.Errorf("%w: sim: the database is unreachable from this node (partitioned)", kv.ErrUnavailable)

// ErrDBReplyLost is what a node whose commit's answer was lost gets: as
// kv/postgres reports a connection that broke after COMMIT was sent, the
// outcome unknown (here: applied).
var ErrDBReplyLost = fmt.Errorf("%w: sim: the connection to the database broke before the commit's answer came", kv.ErrUnavailable)

// sharedDB orders the commits of every node.
type sharedDB struct {
	disk *kv.MemEngine
	cl   *simCluster
	mu   sync.Mutex // held to validate, check and apply one commit
}

// dbView is one node incarnation's connection to the shared database.
type dbView struct {
	db   *sharedDB
	node *simNode
}

var _ kv.SharedEngine = (*dbView)(nil)

// reachable fails when the node crashed or is cut off from the database,
// noting the cut on the operation's trail.
func (v *dbView) reachable(ctx context.Context) error {
	if v.node.crashed.Load() {
		return ErrCrashed
	}
	if v.node.dbCut.Load() {
		v.db.cl.sys.notePath(ctx, pathStorage, "node %s is cut off from the database", v.node.id)
		return ErrDBUnreachable
	}
	return nil
}

func (v *dbView) NewSnapshot() (kv.Snapshot, error) { return v.BeginSnapshot(context.Background()) }

func (v *dbView) BeginSnapshot(ctx context.Context) (kv.Snapshot, error) {
	if err := v.reachable(ctx); err != nil {
		return nil, err
	}
	if err := v.db.cl.stall(ctx, v.node); err != nil {
		return nil, err
	}
	inner, err := v.db.disk.NewSnapshot()
	if err != nil {
		return nil, err
	}
	return &viewSnapshot{view: v, ctx: ctx, inner: inner, reads: map[string][]byte{}, at: v.db.cl.sys.clock.base.Now()}, nil
}

// Apply is not used: kv.DB commits through CommitSnapshot on a shared
// engine.
func (v *dbView) Apply([]kv.Mutation) error {
	return errors.New("sim: the shared database takes commits only through CommitSnapshot")
}

func (v *dbView) Close() error { return nil }

// viewSnapshot is a transaction's snapshot; it records what it served, for
// the validation of the commit.
type viewSnapshot struct {
	view  *dbView
	ctx   context.Context
	inner kv.Snapshot
	mu    sync.Mutex
	reads map[string][]byte // key -> value served (nil: absent)
	scans []scanRead
	at    time.Time // when it was taken, by the database's clock (the base clock: no node's)
}

var _ kv.TimedSnapshot = (*viewSnapshot)(nil)

// Time implements kv.TimedSnapshot.
func (s *viewSnapshot) Time() time.Time { return s.at }

// scanRead is a scan as served: the range it covered and what it found.
type scanRead struct {
	r   kv.Range
	kvs []kv.KeyValue
}

func (s *viewSnapshot) Get(key []byte) ([]byte, error) {
	if err := s.view.reachable(s.ctx); err != nil {
		return nil, err
	}
	v, err := s.inner.Get(key)
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	s.mu.Lock()
	s.reads[string(key)] = bytes.Clone(v)
	s.mu.Unlock()
	return v, err
}

func (s *viewSnapshot) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	if err := s.view.reachable(s.ctx); err != nil {
		return nil, err
	}
	kvs, err := s.inner.Scan(r, limit, reverse)
	if err != nil {
		return nil, err
	}
	covered := r
	if limit > 0 && len(kvs) == limit {
		// Only up to the last pair served: what lies beyond was not read.
		last := kvs[len(kvs)-1].Key
		if reverse {
			covered.Start = last
		} else {
			covered.End = append(bytes.Clone(last), 0)
		}
	}
	kept := make([]kv.KeyValue, len(kvs))
	for i, p := range kvs {
		kept[i] = kv.KeyValue{Key: bytes.Clone(p.Key), Value: bytes.Clone(p.Value)}
	}
	s.mu.Lock()
	s.scans = append(s.scans, scanRead{r: covered, kvs: kept})
	s.mu.Unlock()
	return kvs, nil
}

func (s *viewSnapshot) Close() error { return s.inner.Close() }

func (v *dbView) CommitSnapshot(ctx context.Context, snap kv.Snapshot, batch []kv.Mutation, fences map[string]uint64) error {
	s, ok := snap.(*viewSnapshot)
	if !ok || s.view != v {
		return errors.New("sim: commit of a snapshot this view did not begin")
	}
	if err := v.reachable(ctx); err != nil {
		return err
	}
	if err := v.db.cl.stall(ctx, v.node); err != nil {
		return err
	}
	db := v.db
	db.mu.Lock()
	defer db.mu.Unlock()
	now, err := db.disk.NewSnapshot()
	if err != nil {
		return err
	}
	defer now.Close()
	if err := checkFences(now, fences); err != nil {
		db.cl.sys.notePath(ctx, pathCluster, "node %s: commit fenced: %v", v.node.id, err)
		return err
	}
	if err := s.validate(now); err != nil {
		return err
	}
	db.cl.checkCommit(now, v.node, batch, fences)
	if err := db.disk.Apply(batch); err != nil {
		return err
	}
	if db.cl.sys.inj.fire(DBReplyLost, "") {
		db.cl.sys.notePath(ctx, pathStorage, "node %s: the database committed, its answer was lost", v.node.id)
		return ErrDBReplyLost
	}
	return nil
}

// checkFences fails with kv.ErrFenced unless every fence key holds its
// epoch now (an absent key: 0).
func checkFences(now kv.Snapshot, fences map[string]uint64) error {
	for k, epoch := range fences {
		have, err := storedEpoch(now, []byte(k))
		if err != nil {
			return err
		}
		if have != epoch {
			return fmt.Errorf("%w: key %q holds epoch %d, fenced on %d", kv.ErrFenced, k, have, epoch)
		}
	}
	return nil
}

// storedEpoch reads the epoch at key (0 when absent).
func storedEpoch(snap kv.Snapshot, key []byte) (uint64, error) {
	v, err := snap.Get(key)
	if errors.Is(err, kv.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	raw, ok := unseal(key, v)
	if !ok {
		return 0, fmt.Errorf("%w: fence %q is damaged", kv.ErrCorrupt, key)
	}
	return kv.ParseEpoch(raw)
}

// validate fails with kv.ErrConflict if anything s served reads
// differently now.
func (s *viewSnapshot) validate(now kv.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, was := range s.reads {
		v, err := now.Get([]byte(k))
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if !bytes.Equal(v, was) || (v == nil) != (was == nil) {
			return fmt.Errorf("%w: key %q changed", kv.ErrConflict, k)
		}
	}
	for _, sc := range s.scans {
		kvs, err := now.Scan(sc.r, 0, false)
		if err != nil {
			return err
		}
		if !sameKVs(kvs, sc.kvs) {
			return fmt.Errorf("%w: a key changed in scanned range %q-%q", kv.ErrConflict, sc.r.Start, sc.r.End)
		}
	}
	return nil
}

// sameKVs reports whether a (in key order) holds what b held, in either
// order.
func sameKVs(a, b []kv.KeyValue) bool {
	if len(a) != len(b) {
		return false
	}
	if len(b) > 1 && bytes.Compare(b[0].Key, b[len(b)-1].Key) > 0 {
		rev := make([]kv.KeyValue, len(b))
		for i, p := range b {
			rev[len(b)-1-i] = p
		}
		b = rev
	}
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || !bytes.Equal(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// claimedEpochPrefix is the fence key every commit of an agent's activation
// carries.
var claimedEpochPrefix = actor.EpochPrefix + schema.AgentNamespace + "/"

// checkCommit checks a commit about to apply, as seen at now: the
// committing node must hold the claim of every agent whose activation
// commits, and every claim that takes an agent from another node must
// follow that node's lease.
func (c *simCluster) checkCommit(now kv.Snapshot, n *simNode, batch []kv.Mutation, fences map[string]uint64) {
	for k := range fences {
		if !strings.HasPrefix(k, claimedEpochPrefix) {
			continue
		}
		actorID := k[len(actor.EpochPrefix):]
		holder, ok := readClaim(now, actorID)
		if _, fenced := fences[string(schema.ClusterClaimKey(actorID))]; !fenced {
			// The database could not have rejected it had another node
			// claimed the agent since: only the activation's own epoch
			// guards it, which a new owner bumps only at its first commit.
			c.sys.violation("single-activation", objectOfActor(actorID), "node %s committed for %s without fencing the commit on the agent's claim", n.id, actorID)
		}
		switch {
		case !ok:
			c.sys.violation("single-activation", objectOfActor(actorID), "node %s committed for %s, which no node has claimed", n.id, actorID)
		case holder.Node != n.id || holder.Incarnation != n.incarnation():
			c.sys.violation("single-activation", objectOfActor(actorID), "node %s (incarnation %s) committed for %s while node %s (incarnation %s) holds it at epoch %d",
				n.id, n.incarnation(), actorID, holder.Node, holder.Incarnation, holder.Epoch)
		}
	}
	for _, m := range batch {
		key := string(m.Key)
		if !strings.HasPrefix(key, schema.ClusterClaims.Prefix) || m.Value == nil {
			continue
		}
		actorID := key[len(schema.ClusterClaims.Prefix):]
		if old, ok := readClaim(now, actorID); ok && old.Incarnation != n.incarnation() {
			c.sys.inj.count("takeover")
			c.checkTakeover(n, actorID, old)
		}
	}
	c.noteHeartbeats(batch)
}

// readClaim returns the current claim of actorID as now holds it.
func readClaim(now kv.Snapshot, actorID string) (schema.ClusterClaim, bool) {
	epoch, err := storedEpoch(now, schema.ClusterClaimKey(actorID))
	if err != nil || epoch == 0 {
		return schema.ClusterClaim{}, false
	}
	key := schema.ClusterClaimLogKey(actorID, epoch)
	v, err := now.Get(key)
	if err != nil {
		return schema.ClusterClaim{}, false
	}
	raw, ok := unseal(key, v)
	var claim schema.ClusterClaim
	if !ok || json.Unmarshal(raw, &claim) != nil {
		return schema.ClusterClaim{}, false
	}
	return claim, true
}
