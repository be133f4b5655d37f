package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// Cluster is what the API asks of a cluster of Kelpie nodes on one store
// (package cluster's Node is one); nil in Options means a single node.
type Cluster interface {
	// Route says where a request that changes agentID must be served: ""
	// for here, or the host:port of the node that owns the agent.
	Route(ctx context.Context, agentID string) (addr string, err error)
	// Sign marks a request this node forwards; Forwarded reports whether a
	// request carries a valid mark from a node of the cluster (an error: a
	// mark that is not valid).
	// A mark is good once. An error of a kind agent.KindOf names (the
	// agent moved, the storage is down) is answered as such (retry), any
	// other with 401.
	Sign(r *http.Request)
	Forwarded(r *http.Request) (bool, error)
	// Members is the body of GET /v1/cluster.
	Members(ctx context.Context) (any, error)
}

// DefaultForwardResponseTimeout bounds the wait for an owner's answer to a
// forwarded request: an owner that went silent (a network that drops
// packets rather than refusing connections) is then answered for with a
// retryable 503 rather than holding the client until it gives up. A
// streamed turn's answer begins at once; a non-streamed turn's when the
// turn ends, so the bound is well above a turn's usual length (each of its
// actor invocations is bounded by actor.DefaultInvokeTimeout, 2 minutes).
const DefaultForwardResponseTimeout = 5 * time.Minute

// Forwarding limits: a peer that does not accept a connection this fast is
// treated as unreachable (503, retry); idle connections to peers are kept
// for reuse.
const (
	forwardDialTimeout     = 3 * time.Second
	forwardMaxIdlePerPeer  = 64
	forwardIdleConnTimeout = 90 * time.Second
)

// newForwarder is the reverse proxy that carries requests to an agent's
// owner: it streams (SSE) as the owner writes, and answers a retryable 503
// when the owner cannot be reached.
func (s *server) newForwarder() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			addr := pr.In.Context().Value(forwardToKey{}).(string)
			pr.SetURL(&url.URL{Scheme: "http", Host: addr})
			pr.SetXForwarded()
			// The owner answers under this request's id (see forward).
			pr.Out.Header.Set(RequestIDHeader, RequestID(pr.In.Context()))
			s.opts.Cluster.Sign(pr.Out)
		},
		Transport:     s.forwardTransport(),
		FlushInterval: -1, // flush each write: streams must not wait in a buffer
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.WarnContext(r.Context(), "api: forwarding to the agent's owner failed", "method", r.Method, "path", r.URL.Path,
				"owner", r.Context().Value(forwardToKey{}), "err", err)
			w.Header().Set(RequestIDHeader, RequestID(r.Context()))
			s.writeError(w, r, errorf(http.StatusServiceUnavailable, "The node that owns this agent cannot be reached; please retry").
				withHeader("Retry-After", "1").withHeader("X-Should-Retry", "true"))
		},
	}
}

// forwardTransport is Options.ForwardTransport, or HTTP over TCP.
func (s *server) forwardTransport() http.RoundTripper {
	if s.opts.ForwardTransport != nil {
		return s.opts.ForwardTransport
	}
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: forwardDialTimeout}).DialContext,
		MaxIdleConnsPerHost:   forwardMaxIdlePerPeer,
		IdleConnTimeout:       forwardIdleConnTimeout,
		ResponseHeaderTimeout: cmp.Or(s.opts.ForwardResponseTimeout, DefaultForwardResponseTimeout),
	}
}

type forwardToKey struct{}

// forward sends a request that changes an agent to the node that owns it,
// and reports whether it did (or answered an error). A request a peer
// forwarded is served here: the claim decides, it is never forwarded on.
func (s *server) forward(w http.ResponseWriter, r *http.Request, method string) bool {
	c := s.opts.Cluster
	if c == nil || method == http.MethodGet {
		return false
	}
	if ok, err := c.Forwarded(r); ok || err != nil {
		switch {
		case agent.KindOf(err) != 0:
			// Meant for this node's earlier incarnation (the owner
			// restarted: it moved), or the members could not be read: the
			// client retries and is routed anew.
			s.writeError(w, r, err)
		case err != nil:
			s.log.WarnContext(r.Context(), "api: refused a forwarded request", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			s.writeError(w, r, errorf(http.StatusUnauthorized, "Unauthorized"))
		}
		return err != nil
	}
	agentID := s.agentOf(r)
	if agentID == "" {
		return false
	}
	addr, err := c.Route(r.Context(), agentID)
	if err != nil {
		s.writeError(w, r, err)
		return true
	}
	if addr == "" {
		return false
	}
	// The owner's answer carries the request id it was given, this one's.
	w.Header().Del(RequestIDHeader)
	s.forwarder.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), forwardToKey{}, addr)))
	return true
}

// agentOf names the agent a request is about: its {agent_id}; the agent of
// its {conversation_id} (which may also be an agent id, or "default" with
// the agent_id in the body or the query) or of its {run_id} (a cancel, a
// stream resumed on the node running the turn); or the agent_id of its
// query (a conversation's create). "" when it names none, or one that
// does not exist (the route answers that itself).
func (s *server) agentOf(r *http.Request) string {
	if id := r.PathValue("agent_id"); id != "" {
		return id
	}
	if r.PathValue("conversation_id") == defaultConversation {
		if id := bodyAgentID(r, s.opts.MaxBodyBytes); id != "" {
			return id
		}
		return r.URL.Query().Get("agent_id")
	}
	if id := r.PathValue("conversation_id"); id != "" {
		if letta.ValidID("agent", id) {
			return id
		}
		if c, err := s.svc.Conversations.Get(r.Context(), id); err == nil {
			return c.AgentID
		}
		return ""
	}
	if id := r.PathValue("run_id"); id != "" {
		if run, err := s.svc.Runs.Get(r.Context(), id); err == nil {
			return run.AgentID
		}
		return ""
	}
	return r.URL.Query().Get("agent_id")
}

// bodyAgentID peeks at the agent_id of a JSON body (the default
// conversation names its agent there) and puts the body back for the
// route or the owner; "" when there is none. A body over limit, or not
// JSON, is left for the route to refuse.
func bodyAgentID(r *http.Request, limit int64) string {
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	if err != nil || int64(len(b)) > limit {
		return ""
	}
	var v struct {
		AgentID string `json:"agent_id"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	return v.AgentID
}

// clusterMembers answers GET /v1/cluster: the nodes, their addresses,
// lease ages and live activations, as this node sees them.
func (s *server) clusterMembers(_ http.ResponseWriter, r *http.Request) (any, error) {
	if s.opts.Cluster == nil {
		return nil, errorf(http.StatusNotFound, "This server runs alone, not in a cluster (see kelpie serve --node-id)")
	}
	return s.opts.Cluster.Members(r.Context())
}
