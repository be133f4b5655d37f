package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"
)

// The simulated network between the nodes of a cluster run: a forwarded
// request is handed to the owner's handler in memory. Faults delay it,
// drop it before it arrives (the owner never sees it) or after (the owner
// ran it; its answer is lost), deliver it twice (a copy follows it: the
// owner must refuse the copy), hold it until a later forward of its
// sender has overtaken it, and cut a node off from its peers (its
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
	if s.inj.fire(ForwardReorder, "") {
		c.holdForOvertake(ctx, t.from, to)
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
	var dup *http.Request
	if s.inj.fire(ForwardDuplicate, "") {
		var err error
		if req, dup, err = twin(req); err != nil {
			return nil, err
		}
	}
	c.overtaken(t.from)
	rw := httptest.NewRecorder()
	to.serve(rw, req)
	if dup != nil {
		// The copy arrives once the first was served (its answer goes
		// nowhere): the owner must refuse it (notingRouter counts what it
		// accepts).
		copyRW := httptest.NewRecorder()
		to.serve(copyRW, dup)
		s.rec.event("forward %s -> %s %s %s duplicated: the copy got %d", t.from.id, to.id, req.Method, req.URL.Path, copyRW.Code)
	}
	if dropAfter {
		s.notePath(ctx, pathCluster, "forward %s -> %s: the answer (%d) was lost", t.from.id, to.id, rw.Code)
		return nil, errors.New("sim: the answer to the forwarded request was lost")
	}
	return rw.Result(), nil
}

// twin returns req with its body buffered, and a copy of it (same
// headers, its mark among them, and body).
func twin(req *http.Request) (*http.Request, *http.Request, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, nil, err
		}
		body = b
	}
	withBody := func() *http.Request {
		r := req.Clone(req.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		return r
	}
	return withBody(), withBody(), nil
}

// holdForOvertake holds a forward of from until a later forward of from
// has arrived at its node, or up to maxForwardDelay.
func (c *simCluster) holdForOvertake(ctx context.Context, from, to *simNode) {
	release := make(chan struct{})
	c.mu.Lock()
	c.held[from.slot] = append(c.held[from.slot], release)
	c.mu.Unlock()
	select {
	case <-release:
		c.sys.notePath(ctx, pathCluster, "forward %s -> %s overtaken by a later one", from.id, to.id)
	case <-c.sys.clock.base.After(maxForwardDelay):
	case <-ctx.Done():
	}
}

// overtaken releases the forwards of from held for a later one: this one
// is about to arrive.
func (c *simCluster) overtaken(from *simNode) {
	c.mu.Lock()
	held := c.held[from.slot]
	c.held[from.slot] = nil
	c.mu.Unlock()
	for _, r := range held {
		close(r)
	}
}

// accepted counts a forwarded request a node accepted (its mark valid and
// unused): a client's call is accepted at most once, however the network
// duplicates it (kelpie never re-sends a forward; a client that retries
// makes a new call).
func (c *simCluster) accepted(op *opRecord, to *simNode) {
	c.mu.Lock()
	c.deliveries[op]++
	n := c.deliveries[op]
	c.mu.Unlock()
	if n > 1 {
		c.sys.violation("forwarding", op.Target, "op #%d %s %s was accepted by node %s %d times: a forward ran again", op.ID, op.Method, op.Path, to.id, n)
	}
}
