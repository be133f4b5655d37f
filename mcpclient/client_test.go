package mcpclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/internal/mcptest"
	"github.com/kelpie/kelpie/mcpclient"
	"github.com/kelpie/kelpie/schema"
)

func TestMain(m *testing.M) {
	mcptest.ServeStdioIfAsked()
	os.Exit(m.Run())
}

func stdioServer(t *testing.T) *schema.MCPServer {
	cmd, args, env := mcptest.Stdio(t)
	return &schema.MCPServer{ID: "mcp_server-1", Name: "test", Type: schema.MCPStdio, Command: cmd, Args: args, Env: env}
}

// servers are the test server over each transport.
func servers(t *testing.T) map[string]*schema.MCPServer {
	srv := mcptest.StartHTTP(t, map[string]string{"Authorization": "Bearer s3cret", "X-Team": "kelpie"})
	http := func(typ, path string) *schema.MCPServer {
		return &schema.MCPServer{ID: "mcp_server-2", Name: "test-" + typ, Type: typ, URL: srv.URL + path,
			AuthHeader: "Authorization", AuthToken: "Bearer s3cret", CustomHeaders: map[string]string{"X-Team": "kelpie"}}
	}
	return map[string]*schema.MCPServer{
		schema.MCPStdio:          stdioServer(t),
		schema.MCPStreamableHTTP: http(schema.MCPStreamableHTTP, "/mcp"),
		schema.MCPSSE:            http(schema.MCPSSE, "/sse"),
	}
}

// Spec: over every transport, the client lists the server's tools with
// their input schemas and calls them; an error result is status error.
func TestListAndCallEveryTransport(t *testing.T) {
	c := mcpclient.New(mcpclient.Config{AllowPrivate: true})
	ctx := context.Background()
	for typ, s := range servers(t) {
		t.Run(typ, func(t *testing.T) {
			tools, err := c.ListTools(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tl := range tools {
				names = append(names, tl.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, mcptest.Tools) {
				t.Fatalf("tools %v, want %v", names, mcptest.Tools)
			}
			i := slices.IndexFunc(tools, func(tl tool.MCPTool) bool { return tl.Name == "add" })
			props, _ := tools[i].InputSchema["properties"].(map[string]any)
			if _, ok := props["a"]; !ok || tools[i].Description != "Add two numbers." {
				t.Errorf("add listed as %+v", tools[i])
			}
			if out := c.Call(ctx, s, "add", json.RawMessage(`{"a": 2, "b": 40}`)); !out.OK || out.Result != "42" {
				t.Errorf("add answered %+v", out)
			}
			if out := c.Call(ctx, s, "fail", nil); out.OK || out.Result != "it failed on purpose" {
				t.Errorf("fail answered %+v", out)
			}
			if out := c.Call(ctx, s, "nope", nil); out.OK || !strings.HasPrefix(out.Result, "Error: ") {
				t.Errorf("unknown tool answered %+v", out)
			}
		})
	}
}

// Spec: the HTTP client sends the server's headers: without them the
// server refuses, and the error says the server could not be reached.
func TestHTTPHeadersAreSent(t *testing.T) {
	s := servers(t)[schema.MCPStreamableHTTP]
	s.AuthToken = "Bearer wrong"
	c := mcpclient.New(mcpclient.Config{AllowPrivate: true})
	if _, err := c.ListTools(context.Background(), s); err == nil || !strings.Contains(err.Error(), "could not connect") {
		t.Fatalf("wrong token: %v", err)
	}
	out := c.Call(context.Background(), s, "echo", json.RawMessage(`{"message":"hi"}`))
	if out.OK || !strings.Contains(out.Result, "could not connect to MCP server") {
		t.Fatalf("wrong token call: %+v", out)
	}
}

func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// waitGone waits a little for a killed process to be reaped by its
// parent (a grandchild is reaped by init).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for range 100 {
		if gone(pid) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("process %d still exists", pid)
}

// Spec: a stdio server runs for one use: once the call returns, the server
// and whatever it started are gone.
func TestStdioServerEndsWithTheCall(t *testing.T) {
	c := mcpclient.New(mcpclient.Config{AllowPrivate: true})
	s := stdioServer(t)
	for _, name := range []string{"pid", "spawn"} {
		out := c.Call(context.Background(), s, name, nil)
		pid, err := strconv.Atoi(out.Result)
		if !out.OK || err != nil {
			t.Fatalf("%s answered %+v", name, out)
		}
		waitGone(t, pid)
	}
}

// Spec: a server that dies during a call, hangs, or cannot start gives the
// model a clear error result, within the call timeout.
func TestFailingServersGiveClearErrors(t *testing.T) {
	c := mcpclient.New(mcpclient.Config{CallTimeout: 500 * time.Millisecond, AllowPrivate: true})
	s := stdioServer(t)
	out := c.Call(context.Background(), s, "crash", nil)
	if out.OK || !strings.Contains(out.Result, "failed during the call of crash") || !strings.Contains(out.Result, "exit status 3") || !strings.Contains(out.Result, "boom") {
		t.Errorf("crash answered %+v", out)
	}
	for typ, s := range servers(t) {
		start := time.Now()
		out := c.Call(context.Background(), s, "hang", nil)
		if out.OK || !strings.Contains(out.Result, "did not answer the call of hang within 500ms; its outcome is unknown") {
			t.Errorf("%s: hang answered %+v", typ, out)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: hang took %s", typ, d)
		}
	}
	bad := &schema.MCPServer{Name: "missing", Type: schema.MCPStdio, Command: "/nonexistent/mcp-server"}
	if out := c.Call(context.Background(), bad, "echo", nil); out.OK || !strings.Contains(out.Result, `could not connect to MCP server "missing"`) {
		t.Errorf("missing command answered %+v", out)
	}
	down := servers(t)[schema.MCPStreamableHTTP]
	down.URL = "http://127.0.0.1:1/mcp"
	if out := c.Call(context.Background(), down, "echo", nil); out.OK || !strings.Contains(out.Result, "could not connect") {
		t.Errorf("server down answered %+v", out)
	}
	off := mcpclient.New(mcpclient.Config{DisableStdio: true})
	if out := off.Call(context.Background(), stdioServer(t), "echo", nil); out.OK || !strings.Contains(out.Result, "disabled") {
		t.Errorf("disabled stdio answered %+v", out)
	}
}

// Spec: a result larger than a message may be is refused, not buffered.
func TestHugeResultIsRefused(t *testing.T) {
	c := mcpclient.New(mcpclient.Config{AllowPrivate: true})
	for typ, s := range servers(t) {
		out := c.Call(context.Background(), s, "big", json.RawMessage(`{"bytes": 20000000}`))
		if out.OK || !strings.HasPrefix(out.Result, "Error: ") {
			t.Errorf("%s: a 20 MB result answered %.200s", typ, out.Result)
		}
		if out := c.Call(context.Background(), s, "big", json.RawMessage(`{"bytes": 100000}`)); !out.OK || len(out.Result) != 100000 {
			t.Errorf("%s: a 100 kB result answered ok=%v len=%d", typ, out.OK, len(out.Result))
		}
	}
}

// Spec: unless allowed, HTTP servers on internal names or non-public
// addresses are refused, both by Check and when connecting.
func TestPrivateAddressesRefused(t *testing.T) {
	c := mcpclient.New(mcpclient.Config{})
	for _, u := range []string{"http://localhost:8000/mcp", "http://127.0.0.1:9/mcp", "http://10.1.2.3/mcp", "http://db.svc/mcp", "ftp://example.com/mcp", "example.com/mcp"} {
		if err := c.Check(&schema.MCPServer{Type: schema.MCPStreamableHTTP, URL: u}); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	if err := c.Check(&schema.MCPServer{Type: schema.MCPSSE, URL: "https://mcp.example.com/sse"}); err != nil {
		t.Errorf("a public URL refused: %v", err)
	}
	s := servers(t)[schema.MCPStreamableHTTP]
	if out := c.Call(context.Background(), s, "echo", nil); out.OK || !strings.Contains(out.Result, "non-public IP not allowed: 127.0.0.1") {
		t.Errorf("loopback server answered %+v", out)
	}
}

// BenchmarkCall measures a call of a trivial tool, connect to result and
// disconnect (a stdio server started and stopped per call), per transport.
func BenchmarkCall(b *testing.B) {
	c := mcpclient.New(mcpclient.Config{AllowPrivate: true})
	cmd, args, env := mcptest.Stdio(b)
	srv := mcptest.StartHTTP(b, nil)
	for _, s := range []*schema.MCPServer{
		{Name: "stdio", Type: schema.MCPStdio, Command: cmd, Args: args, Env: env},
		{Name: "streamable_http", Type: schema.MCPStreamableHTTP, URL: srv.URL + "/mcp"},
		{Name: "sse", Type: schema.MCPSSE, URL: srv.URL + "/sse"},
	} {
		b.Run(s.Name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if out := c.Call(context.Background(), s, "add", json.RawMessage(`{"a":1,"b":2}`)); !out.OK || out.Result != "3" {
					b.Fatalf("add answered %+v", out)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
