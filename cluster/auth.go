package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ForwardedHeader marks a request one node forwarded to another:
// "<node-id> <unix ms> <hex HMAC-SHA256 of node, time, method and path
// under the cluster secret>".
const ForwardedHeader = "X-Kelpie-Forwarded"

// MaxForwardAge bounds how old (or how far ahead, for clock skew) a
// forwarded request's mark may be; an older mark is not accepted.
const MaxForwardAge = 30 * time.Second

// Sign marks r as forwarded by this node.
func (n *Node) Sign(r *http.Request) {
	at := strconv.FormatInt(n.cfg.Clock.Now().UnixMilli(), 10)
	r.Header.Set(ForwardedHeader, n.cfg.NodeID+" "+at+" "+n.mac(n.cfg.NodeID, at, r))
}

// Forwarded reports whether r carries a valid mark from a node of this
// cluster (one that knows the secret), made within MaxForwardAge.
func (n *Node) Forwarded(r *http.Request) (bool, error) {
	v := r.Header.Get(ForwardedHeader)
	if v == "" {
		return false, nil
	}
	f := strings.Fields(v)
	if len(f) != 3 {
		return false, fmt.Errorf("malformed %s header", ForwardedHeader)
	}
	ms, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return false, fmt.Errorf("malformed %s header", ForwardedHeader)
	}
	if age := n.cfg.Clock.Now().Sub(time.UnixMilli(ms)); age > MaxForwardAge || age < -MaxForwardAge {
		return false, fmt.Errorf("%s header is %v old, beyond %v", ForwardedHeader, age.Round(time.Millisecond), MaxForwardAge)
	}
	if !hmac.Equal([]byte(f[2]), []byte(n.mac(f[0], f[1], r))) {
		return false, fmt.Errorf("%s header is not signed with this cluster's secret", ForwardedHeader)
	}
	return true, nil
}

func (n *Node) mac(node, at string, r *http.Request) string {
	h := hmac.New(sha256.New, n.cfg.Secret)
	for _, s := range []string{node, at, r.Method, r.URL.RequestURI()} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}
