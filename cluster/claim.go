package cluster

import (
	"context"
	"fmt"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// NotOwnerError means another live node owns the actor: nothing was run
// here. It is a kv.ErrFenced (the agent moved; retry, and be forwarded).
type NotOwnerError struct {
	Actor actor.ID
	Node  string // the owner
	Addr  string // where it serves
}

func (e *NotOwnerError) Error() string {
	return fmt.Sprintf("cluster: %s is owned by node %s (%s)", e.Actor, e.Node, e.Addr)
}

func (e *NotOwnerError) Unwrap() error { return kv.ErrFenced }

var _ actor.Placement = (*Node)(nil)

// Claim makes this node the owner of id, in a transaction of its own, and
// returns the fence of its claim: the claim it already holds, or a new one
// (the next epoch, recorded in the claim log) when id is unclaimed or its
// holder is gone or has lost its lease. It fails with *NotOwnerError when
// a live node holds id, and refuses to claim while this node is not
// serving. Actors of namespaces that are not placed get a nil fence.
func (n *Node) Claim(ctx context.Context, id actor.ID) (*actor.Fence, error) {
	if n.cfg.Placed != nil && !n.cfg.Placed(id.Namespace) {
		return nil, nil
	}
	ctx, cancel, err := n.withinLease(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	key := id.String()
	var fence *actor.Fence
	took := false
	err = n.update(ctx, func(txn kv.Txn) error {
		took = false
		cur, found, err := schema.CurrentClaim(txn, key)
		if err != nil {
			return err
		}
		next := &schema.ClusterClaim{Node: n.cfg.NodeID, Incarnation: n.incarnation, Epoch: 1, At: n.dbNow(txn).UTC()}
		if found {
			if n.mine(cur) {
				fence = &actor.Fence{Key: schema.ClusterClaimKey(key), Epoch: cur.Epoch}
				return nil
			}
			if addr, live, err := n.holder(txn, cur); err != nil || live {
				if err == nil {
					err = &NotOwnerError{Actor: id, Node: cur.Node, Addr: addr}
				}
				return err
			}
			next.Epoch, next.From, took = cur.Epoch+1, cur.Node, true
		}
		fence = &actor.Fence{Key: schema.ClusterClaimKey(key), Epoch: next.Epoch}
		return schema.PutClaim(txn, key, next)
	})
	if err != nil {
		return nil, err
	}
	if took && n.cfg.OnTakeover != nil {
		go n.cfg.OnTakeover(id)
	}
	return fence, nil
}

func (n *Node) mine(c *schema.ClusterClaim) bool {
	return c.Node == n.cfg.NodeID && c.Incarnation == n.incarnation
}

// holder reports where the holder of claim c serves and whether it is
// live, from its record as txn reads it.
func (n *Node) holder(txn kv.Txn, c *schema.ClusterClaim) (addr string, live bool, err error) {
	rec, found, err := schema.GetClusterNode(txn, c.Node)
	if err != nil {
		return "", false, err
	}
	if !found {
		rec = nil
	}
	now := n.dbNow(txn)
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.liveLocked(c.Node, c.Incarnation, rec, now) {
		return "", false, nil
	}
	return rec.Addr, true, nil
}

// withinLease bounds ctx by the time this node may still serve: a claim
// or a route read that outlasts it is worthless (a database cut off
// without an error would otherwise hold the request for the statement
// timeout). It fails at once when the node is not serving.
func (n *Node) withinLease(ctx context.Context) (context.Context, context.CancelFunc, error) {
	lease, left, err := n.leaseLeft()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, left)
	stop := context.AfterFunc(lease, cancel)
	return ctx, func() { stop(); cancel() }, nil
}

// Route says where a request that changes agentID must be served: "" for
// here (this node holds it, or may claim it), or the address of the live
// node that holds it. The answer may be stale by the time the request
// runs: the claim, not Route, decides (a request served here for an agent
// another node claimed in between fails with *NotOwnerError).
func (n *Node) Route(ctx context.Context, agentID string) (string, error) {
	ctx, cancel, err := n.withinLease(ctx)
	if err != nil {
		return "", err
	}
	defer cancel()
	txn, err := n.cfg.Store.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer txn.Discard()
	cur, found, err := schema.CurrentClaim(txn, schema.AgentActor(agentID).String())
	if err != nil || !found || n.mine(cur) {
		return "", err
	}
	addr, live, err := n.holder(txn, cur)
	if err != nil || !live || cur.Node == n.cfg.NodeID {
		return "", err
	}
	return addr, nil
}
