package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

func newService(t testing.TB) *agent.Service {
	t.Helper()
	svc, err := agent.New(agent.Config{Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Close(ctx)
	})
	return svc
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// client talks to one test server.
type client struct {
	t    testing.TB
	base string
	// header is sent with every request.
	header http.Header
}

func newTestServer(t testing.TB, opts Options) (*client, *agent.Service) {
	t.Helper()
	svc := newService(t)
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	srv := httptest.NewServer(NewHandler(svc, opts))
	t.Cleanup(srv.Close)
	return &client{t: t, base: srv.URL, header: http.Header{}}, svc
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; hdr holds extra header name/value pairs.
func (c *client) do(method, path, body string, hdr ...string) response {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if resp.StatusCode == http.StatusNoContent {
		if len(data) != 0 {
			c.t.Errorf("%s %s: 204 with a body: %q", method, path, data)
		}
		return response{resp.StatusCode, resp.Header, data}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if method != http.MethodHead && !json.Valid(data) {
		c.t.Errorf("%s %s: body is not JSON: %q", method, path, data)
	}
	return response{resp.StatusCode, resp.Header, data}
}

// ok sends a request that must succeed and decodes its body into out.
func (c *client) ok(method, path, body string, out any, hdr ...string) {
	c.t.Helper()
	r := c.do(method, path, body, hdr...)
	if r.status != http.StatusOK {
		c.t.Fatalf("%s %s: status %d: %s", method, path, r.status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, r.body, err)
		}
	}
}

// expect sends a request that must fail with status and returns its detail.
func (c *client) expect(status int, method, path, body string, hdr ...string) string {
	c.t.Helper()
	r := c.do(method, path, body, hdr...)
	if r.status != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
	}
	var d struct {
		Detail any `json:"detail"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil {
		c.t.Fatalf("%s %s: error body %s: %v", method, path, r.body, err)
	}
	s, ok := d.Detail.(string)
	if !ok || s == "" {
		c.t.Fatalf("%s %s: error body without a string detail: %s", method, path, r.body)
	}
	return s
}

func (c *client) createAgent(body string) *letta.AgentState {
	c.t.Helper()
	var st letta.AgentState
	c.ok("POST", "/v1/agents", body, &st)
	return &st
}

func (c *client) getAgent(id string) *letta.AgentState {
	c.t.Helper()
	var st letta.AgentState
	c.ok("GET", "/v1/agents/"+id, "", &st)
	return &st
}

func (c *client) createBlock(body string) *letta.Block {
	c.t.Helper()
	var b letta.Block
	c.ok("POST", "/v1/blocks", body, &b)
	return &b
}

func (c *client) getBlock(id string) *letta.Block {
	c.t.Helper()
	var b letta.Block
	c.ok("GET", "/v1/blocks/"+id, "", &b)
	return &b
}

func (c *client) count(path string) int {
	c.t.Helper()
	var n int
	c.ok("GET", path, "", &n)
	return n
}

// snapshot is the raw JSON of every agent and block, to show that a
// rejected request changed nothing.
func (c *client) snapshot() string {
	c.t.Helper()
	var buf bytes.Buffer
	for _, p := range []string{"/v1/agents?limit=1000&order=asc", "/v1/blocks?limit=1000", "/v1/blocks?limit=1000&templates_only=true"} {
		r := c.do("GET", p, "")
		if r.status != http.StatusOK {
			c.t.Fatalf("snapshot %s: %d %s", p, r.status, r.body)
		}
		buf.Write(r.body)
	}
	return buf.String()
}

func blockLabels(bs []letta.Block) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.Label
	}
	return out
}

func ids(agents []*letta.AgentState) []string {
	out := make([]string, len(agents))
	for i, a := range agents {
		out[i] = a.ID
	}
	return out
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
