package api

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeCluster routes agents by a table and marks forwarded requests with
// "good"; a mark "bad" is invalid.
type fakeCluster struct {
	routes map[string]string // agent id -> owner's host:port
}

func (f fakeCluster) Route(_ context.Context, agentID string) (string, error) {
	return f.routes[agentID], nil
}
func (fakeCluster) Sign(r *http.Request) { r.Header.Set("X-Kelpie-Forwarded", "good") }
func (fakeCluster) Forwarded(r *http.Request) (bool, error) {
	switch r.Header.Get("X-Kelpie-Forwarded") {
	case "":
		return false, nil
	case "good":
		return true, nil
	}
	return false, errors.New("bad mark")
}
func (fakeCluster) Members(context.Context) (any, error) {
	return map[string]any{"nodes": []string{"n1", "n2"}}, nil
}

// owner is a stand-in for the node that owns an agent: it records what
// reached it.
type owner struct {
	mu     sync.Mutex
	seen   []*http.Request
	bodies []string
	srv    *httptest.Server
}

func newOwner(t *testing.T) *owner {
	o := &owner{}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		o.seen = append(o.seen, r)
		o.bodies = append(o.bodies, string(body))
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(RequestIDHeader, r.Header.Get(RequestIDHeader))
		w.Write([]byte(`{"served_by":"owner"}`))
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// Spec: an owner that accepts a forwarded request but never answers (a
// network that went silent) is answered for with a retryable 503 once the
// forward's response timeout passes, not left to hold the client.
func TestForwardToSilentOwner(t *testing.T) {
	release := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(silent.Close)
	t.Cleanup(func() { close(release) })
	agentID := "agent-00000000-0000-4000-8000-000000000001"
	c, _ := newTestServer(t, Options{Cluster: fakeCluster{routes: map[string]string{agentID: silent.Listener.Addr().String()}},
		ForwardResponseTimeout: 100 * time.Millisecond})
	r := c.do("PATCH", "/v1/agents/"+agentID, `{"name":"x"}`)
	if r.status != 503 || r.header.Get("X-Should-Retry") != "true" {
		t.Errorf("silent owner: %d %v %s", r.status, r.header, r.body)
	}
}

// Spec: a change to an agent another node owns is forwarded to it, signed,
// under the request's id, and its answer returned; reads, requests a peer
// forwarded, and agents owned here are served here; an invalid mark is
// refused; an unreachable owner is a retryable 503.
func TestForwardToOwner(t *testing.T) {
	o := newOwner(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	fc := fakeCluster{routes: map[string]string{"agent-00000000-0000-4000-8000-000000000001": o.srv.Listener.Addr().String(), "agent-00000000-0000-4000-8000-000000000002": gone}}
	c, _ := newTestServer(t, Options{Cluster: fc})

	var got map[string]string
	c.ok("PATCH", "/v1/agents/agent-00000000-0000-4000-8000-000000000001/core-memory/blocks/human", `{"value":"v"}`, &got, RequestIDHeader, "req-1")
	if got["served_by"] != "owner" || len(o.seen) != 1 {
		t.Fatalf("forwarded answer %v, owner saw %d requests", got, len(o.seen))
	}
	in := o.seen[0]
	if in.Header.Get("X-Kelpie-Forwarded") != "good" || in.Header.Get(RequestIDHeader) != "req-1" || in.URL.Path != "/v1/agents/agent-00000000-0000-4000-8000-000000000001/core-memory/blocks/human" {
		t.Errorf("the owner got %s %s with headers %v", in.Method, in.URL.Path, in.Header)
	}
	r := c.do("POST", "/v1/agents/agent-00000000-0000-4000-8000-000000000001/messages", `{"messages":[]}`, RequestIDHeader, "req-2")
	if ids := r.header.Values(RequestIDHeader); len(ids) != 1 || ids[0] != "req-2" {
		t.Errorf("forwarded answer's request ids: %v", ids)
	}

	c.expect(404, "GET", "/v1/agents/agent-00000000-0000-4000-8000-000000000001", "")                                             // a read: here
	c.expect(404, "PATCH", "/v1/agents/agent-00000000-0000-4000-8000-000000000001", `{"name":"x"}`, "X-Kelpie-Forwarded", "good") // forwarded once: here
	c.expect(404, "PATCH", "/v1/agents/agent-00000000-0000-4000-8000-000000000003", `{"name":"x"}`)                               // owned here
	c.expect(401, "PATCH", "/v1/agents/agent-00000000-0000-4000-8000-000000000001", `{"name":"x"}`, "X-Kelpie-Forwarded", "bad")  // forged
	if len(o.seen) != 2 {
		t.Errorf("the owner saw %d requests, want 2", len(o.seen))
	}
	r = c.do("PATCH", "/v1/agents/agent-00000000-0000-4000-8000-000000000002", `{"name":"x"}`)
	if r.status != 503 || r.header.Get("X-Should-Retry") != "true" {
		t.Errorf("owner unreachable: %d %v %s", r.status, r.header, r.body)
	}

	// A conversation's requests go to its agent's owner, found from the
	// conversation (or the query, for a create).
	near := c.createAgent(`{"name":"near"}`)
	var conv struct {
		ID string `json:"id"`
	}
	c.ok("POST", "/v1/conversations?agent_id="+near.ID, "", &conv)
	fc.routes[near.ID] = o.srv.Listener.Addr().String()
	c.ok("POST", "/v1/conversations/"+conv.ID+"/messages", `{"input":"hi"}`, nil)
	c.ok("POST", "/v1/conversations?agent_id="+near.ID, "", nil)
	if len(o.seen) != 4 || o.seen[2].URL.Path != "/v1/conversations/"+conv.ID+"/messages" || o.seen[3].URL.Query().Get("agent_id") != near.ID {
		t.Errorf("the owner saw %d requests; want the conversation's two", len(o.seen))
	}
	// The default conversation names its agent in the body: forwarded
	// whole.
	body := `{"agent_id":"` + near.ID + `","input":"hi"}`
	c.ok("POST", "/v1/conversations/default/messages", body, nil)
	if len(o.seen) != 5 || o.seen[4].URL.Path != "/v1/conversations/default/messages" || o.bodies[4] != body {
		t.Errorf("the owner saw %d requests; want the default conversation's message with its body %s", len(o.seen), body)
	}

	var members map[string]any
	c.ok("GET", "/v1/cluster", "", &members)
	if members["nodes"] == nil {
		t.Errorf("GET /v1/cluster: %v", members)
	}
	alone, _ := newTestServer(t, Options{})
	alone.expect(404, "GET", "/v1/cluster", "")
}
