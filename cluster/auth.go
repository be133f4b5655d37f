package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/kelpie/kelpie/kv"
)

// ForwardedHeader marks a request one node forwarded to another:
//
//	<from node> <from incarnation> <sequence> <to node> <to incarnation> <hex HMAC-SHA256>
//
// the HMAC, under the cluster secret, covering the other fields, the
// method and the path. No wall clock enters it, so nodes whose clocks
// disagree by any amount forward to each other. A mark is good once: the
// sender numbers its marks, and the receiver accepts each number of a
// sender's incarnation at most once (a duplicated or replayed request is
// refused), and only marks addressed to its own incarnation (one recorded
// before it restarted is refused).
const ForwardedHeader = "X-Kelpie-Forwarded"

// ForwardWindow is how many of a sender's latest sequence numbers a node
// remembers: a mark ForwardWindow or more behind the newest it accepted
// from that sender is refused, as it can no longer tell it from a replay.
// Marks may arrive out of order within the window (requests travel on
// several connections).
const ForwardWindow = 1 << 16

// ErrReplayed means a forwarded request's mark was already used (the
// request was duplicated or replayed) or is too old to tell.
var ErrReplayed = errors.New("cluster: forwarded request replayed")

// forwardState is a node's side of the marks: the numbers it gave and
// those it accepted. Guarded by Node.mu.
type forwardState struct {
	sent uint64
	from map[string]*window // by sending node id
}

// window is what a node accepted from one incarnation of a sender.
type window struct {
	incarnation string
	top         uint64                     // the newest sequence number accepted
	seen        [ForwardWindow / 64]uint64 // bit s%ForwardWindow: s accepted, for s within the window
}

// accept records seq, and reports false if it was accepted before or is
// too far behind to tell.
func (w *window) accept(seq uint64) bool {
	switch {
	case seq+ForwardWindow <= w.top:
		return false
	case seq >= w.top+ForwardWindow:
		w.seen, w.top = [ForwardWindow / 64]uint64{}, seq
	}
	for ; w.top < seq; w.top++ {
		b := (w.top + 1) % ForwardWindow // slots entering the window are cleared as it moves
		w.seen[b/64] &^= 1 << (b % 64)
	}
	b := seq % ForwardWindow
	if w.seen[b/64]&(1<<(b%64)) != 0 {
		return false
	}
	w.seen[b/64] |= 1 << (b % 64)
	return true
}

// Sign marks r as forwarded by this node to the node that serves at its
// host, as this node last read the members.
func (n *Node) Sign(r *http.Request) {
	n.mu.Lock()
	n.forwards.sent++
	seq := n.forwards.sent
	var to *peer
	for _, p := range n.peers {
		if p.rec.Addr == r.URL.Host && (to == nil || p.changed.After(to.changed)) {
			to = p
		}
	}
	n.mu.Unlock()
	f := []string{n.cfg.NodeID, n.incarnation, strconv.FormatUint(seq, 10), "-", "-"}
	if to != nil {
		f[3], f[4] = to.rec.ID, to.rec.Incarnation
	}
	r.Header.Set(ForwardedHeader, strings.Join(append(f, n.mac(f, r)), " "))
}

// Forwarded reports whether r carries a valid mark from a node of this
// cluster (one that knows the secret and is a current member), addressed
// to this incarnation, and not used before. An error means the mark is
// not valid: a kv.ErrFenced when it was meant for an earlier incarnation
// of this node (the agent moved: retry, and be routed anew), a
// kv.ErrUnavailable when the members could not be read, ErrReplayed when
// it was used already.
func (n *Node) Forwarded(r *http.Request) (bool, error) {
	v := r.Header.Get(ForwardedHeader)
	if v == "" {
		return false, nil
	}
	f := strings.Fields(v)
	if len(f) != 6 {
		return false, fmt.Errorf("malformed %s header", ForwardedHeader)
	}
	seq, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return false, fmt.Errorf("malformed %s header", ForwardedHeader)
	}
	if !hmac.Equal([]byte(f[5]), []byte(n.mac(f[:5], r))) {
		return false, fmt.Errorf("%s header is not signed with this cluster's secret", ForwardedHeader)
	}
	from, fromInc, to, toInc := f[0], f[1], f[3], f[4]
	if to != n.cfg.NodeID || toInc != n.incarnation {
		return false, fmt.Errorf("%w: a request forwarded by node %s to node %s (incarnation %s) reached node %s (incarnation %s): the owner moved or restarted, retry",
			kv.ErrFenced, from, to, toInc, n.cfg.NodeID, n.incarnation)
	}
	if !n.member(from, fromInc) {
		// Unknown yet (it joined or restarted since the last read) or gone.
		if _, err := n.observe(r.Context()); err != nil {
			return false, fmt.Errorf("%w: checking the node that forwarded a request: %w", kv.ErrUnavailable, err)
		}
		if !n.member(from, fromInc) {
			return false, fmt.Errorf("%s header is from node %s incarnation %s, not a member of the cluster", ForwardedHeader, from, fromInc)
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.forwards.from == nil {
		n.forwards.from = map[string]*window{}
	}
	w := n.forwards.from[from]
	if w == nil || w.incarnation != fromInc {
		// The sender's earlier incarnation is no member: its marks fail
		// above, so what was accepted from it need not be kept.
		w = &window{incarnation: fromInc}
		n.forwards.from[from] = w
	}
	if !w.accept(seq) {
		return false, fmt.Errorf("%w: mark %d of node %s (incarnation %s) was used before, or is more than %d behind its newest",
			ErrReplayed, seq, from, fromInc, ForwardWindow)
	}
	return true, nil
}

// member reports whether inc is node id's current incarnation as this
// node last read the members.
func (n *Node) member(id, inc string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[id]
	return p != nil && p.rec.Incarnation == inc
}

func (n *Node) mac(fields []string, r *http.Request) string {
	h := hmac.New(sha256.New, n.cfg.Secret)
	for _, s := range append(slices.Clip(fields), r.Method, r.URL.RequestURI()) {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}
