package schema

import (
	"errors"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// The cluster's families: membership and agent claims live in the store the
// agents do, so a claim and the commits it fences are checked by the same
// database (see package cluster).
var (
	ClusterNodes = &Family{"cluster-node", "cluster/node/",
		"cluster/node/<node-id>", "a ClusterNode record (JSON): the node's address and heartbeat"}
	ClusterClaims = &Family{"cluster-claim", "cluster/claim/",
		"cluster/claim/<namespace>/<key>", "the epoch of the actor's latest claim (8 bytes, kv.PutEpoch): every commit of its owner is fenced on it"}
	ClusterClaimLog = &Family{"cluster-claim-log", "cluster/claimlog/",
		"cluster/claimlog/<namespace>/<key>/<epoch, 16 hex>", "a ClusterClaim record (JSON): which node took the actor at that epoch"}
)

// ClusterNode is a node's membership record. Its lease is judged by the
// other nodes on their own clocks (how long Heartbeat has not changed),
// never by At, so that clock skew between nodes does not shorten a lease.
type ClusterNode struct {
	ID string `json:"id"`
	// Incarnation is random per process start: a claim made by an earlier
	// incarnation of a node is dead once the node restarted.
	Incarnation string `json:"incarnation"`
	Addr        string `json:"addr"` // host:port its peers forward to
	// Heartbeat counts the heartbeats of this incarnation.
	Heartbeat   uint64    `json:"heartbeat"`
	At          time.Time `json:"at"` // the node's clock at its last heartbeat, for people
	Started     time.Time `json:"started"`
	Activations int       `json:"activations"` // live activations at the last heartbeat
}

// ClusterClaim records who claimed an actor at an epoch.
type ClusterClaim struct {
	Node        string    `json:"node"`
	Incarnation string    `json:"incarnation"`
	Epoch       uint64    `json:"epoch"`
	At          time.Time `json:"at"`
	// From is the node whose claim this one replaced ("" for the first).
	From string `json:"from,omitempty"`
}

// ClusterNodeKey is where a node's membership record is.
func ClusterNodeKey(nodeID string) []byte { return []byte(ClusterNodes.Prefix + nodeID) }

// ClusterClaimKey is the fence key of an actor's claim (id is actor.ID's
// string form).
func ClusterClaimKey(actorID string) []byte { return []byte(ClusterClaims.Prefix + actorID) }

// ClusterClaimLogKey is where the claim of an actor at epoch is recorded.
func ClusterClaimLogKey(actorID string, epoch uint64) []byte {
	return fmt.Appendf(nil, "%s%s/%016x", ClusterClaimLog.Prefix, actorID, epoch)
}

// errAbsent stands for a record that is not there.
var errAbsent = errors.New("cluster claim not recorded")

// GetClusterNode returns a node's record; found is false when there is none.
func GetClusterNode(txn kv.Txn, nodeID string) (n *ClusterNode, found bool, err error) {
	n, err = get[ClusterNode](txn, ClusterNodeKey(nodeID), "cluster node "+nodeID, errAbsent)
	if errors.Is(err, errAbsent) {
		return nil, false, nil
	}
	return n, err == nil, err
}

// PutClusterNode writes a node's record.
func PutClusterNode(txn kv.Txn, n *ClusterNode) error { return put(txn, ClusterNodeKey(n.ID), n) }

// ClusterNodesIn returns every node record.
func ClusterNodesIn(txn kv.Txn) ([]*ClusterNode, error) {
	kvs, err := txn.Scan(kv.PrefixRange([]byte(ClusterNodes.Prefix)), 0, false)
	if err != nil {
		return nil, err
	}
	nodes := make([]*ClusterNode, 0, len(kvs))
	for _, e := range kvs {
		n, err := decode[ClusterNode](e.Value, fmt.Sprintf("cluster node %q", e.Key))
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// CurrentClaim returns an actor's latest claim; found is false when the
// actor was never claimed.
func CurrentClaim(txn kv.Txn, actorID string) (c *ClusterClaim, found bool, err error) {
	v, err := txn.Get(ClusterClaimKey(actorID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	epoch, err := kv.ParseEpoch(v)
	if err != nil {
		return nil, false, err
	}
	c, err = get[ClusterClaim](txn, ClusterClaimLogKey(actorID, epoch), "cluster claim of "+actorID,
		fmt.Errorf("%w: %s claimed at epoch %d, which the claim log lacks", kv.ErrCorrupt, actorID, epoch))
	return c, err == nil, err
}

// PutClaim records c as an actor's latest claim: its epoch becomes the
// actor's fence.
func PutClaim(txn kv.Txn, actorID string, c *ClusterClaim) error {
	if err := txn.Set(ClusterClaimKey(actorID), kv.PutEpoch(c.Epoch)); err != nil {
		return err
	}
	return put(txn, ClusterClaimLogKey(actorID, c.Epoch), c)
}

// DeleteClaims removes an actor's claim and its claim log (when the actor
// is deleted for good). The commit that does it must still be fenced on
// the claim: the fence is checked against the claim as it was.
func DeleteClaims(txn kv.Txn, actorID string) error {
	if err := txn.Delete(ClusterClaimKey(actorID)); err != nil {
		return err
	}
	log, err := txn.Scan(kv.PrefixRange([]byte(ClusterClaimLog.Prefix+actorID+"/")), 0, false)
	if err != nil {
		return err
	}
	for _, e := range log {
		if err := txn.Delete(e.Key); err != nil {
			return err
		}
	}
	return nil
}
