package sim

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"
)

// The simulated network between the nodes of a cluster run: a forwarded
// request is handed to the owner's handler in memory. Faults delay it,
// drop it before it arrives (the owner never sees it) or after (the owner
// ran it; its answer is lost), and cut a node off from its peers (its
// connections are refused, both ways).

// maxForwardDelay bounds the delay a forward_delay fault adds.
const maxForwardDelay = 200 * time.Millisecond

// errPeerUnreachable is what a forward to an unreachable node gets.
var errPeerUnreachable = errors.New("sim: connection refused (the node is down or cut off from its peers)")

// simNet is the transport of node from's forwarded requests.
type simNet struct {
	c    *simCluster
	from *simNode
}

func (t *simNet) RoundTrip(req *http.Request) (*http.Response, error) {
	c, s := t.c, t.c.sys
	ctx := req.Context()
	slot := -1
	for i := range ClusterNodes {
		if nodeAddr(i) == req.URL.Host {
			slot = i
		}
	}
	if slot < 0 {
		return nil, fmt.Errorf("sim: no node at %s", req.URL.Host)
	}
	to := c.node(slot)
	c.mu.Lock()
	cut := c.peerCut[slot] || c.peerCut[t.from.slot]
	c.mu.Unlock()
	if cut || to.crashed.Load() || t.from.crashed.Load() {
		s.notePath(ctx, pathCluster, "forward %s -> %s refused: down or cut off", t.from.id, to.id)
		return nil, errPeerUnreachable
	}
	if s.inj.fire(ForwardDelay, "") {
		d := time.Duration(1+s.inj.intn(int(maxForwardDelay/time.Millisecond))) * time.Millisecond
		select {
		case <-s.clock.base.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	dropBefore, dropAfter := false, false
	if s.inj.fire(ForwardDrop, "") {
		dropBefore = s.inj.intn(2) == 0
		dropAfter = !dropBefore
	}
	if dropBefore {
		s.notePath(ctx, pathCluster, "forward %s -> %s dropped before it arrived", t.from.id, to.id)
		return nil, errors.New("sim: the forwarded request was lost")
	}
	if op := opOf(ctx); op != nil {
		c.delivered(op, to)
	}
	rw := httptest.NewRecorder()
	to.serve(rw, req)
	if dropAfter {
		s.notePath(ctx, pathCluster, "forward %s -> %s: the answer (%d) was lost", t.from.id, to.id, rw.Code)
		return nil, errors.New("sim: the answer to the forwarded request was lost")
	}
	return rw.Result(), nil
}

// delivered counts a forwarded request reaching a node: a client's call is
// delivered at most once (kelpie never re-sends a forward; a client that
// retries makes a new call).
func (c *simCluster) delivered(op *opRecord, to *simNode) {
	c.mu.Lock()
	c.deliveries[op]++
	n := c.deliveries[op]
	c.mu.Unlock()
	if n > 1 {
		c.sys.violation("forwarding", op.Target, "op #%d %s %s was delivered to node %s %d times: a forward was sent again", op.ID, op.Method, op.Path, to.id, n)
	}
}
