// Package mcptest is a real MCP server for tests, written with the official
// Go SDK's server side: over stdio (the test binary itself, re-run as the
// server: call ServeStdioIfAsked first thing in TestMain) and over
// streamable HTTP and SSE (an httptest server on loopback).
//
// Its tools: echo, add, pid (the server's process id), spawn (starts a
// child that sleeps, and returns its pid), fail (an error result), big (a
// result of n bytes), hang (never answers) and crash (the stdio server
// exits with status 3 after printing "boom" to stderr).
package mcptest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// EnvServe, set to "stdio", makes ServeStdioIfAsked serve.
const EnvServe = "KELPIE_MCPTEST_SERVE"

// Tools are the names of the server's tools.
var Tools = []string{"add", "big", "crash", "echo", "fail", "hang", "pid", "spawn"}

// ServeStdioIfAsked serves MCP over stdin/stdout and exits, when the
// process was started as the stdio server (see Stdio); otherwise it
// returns at once.
func ServeStdioIfAsked() {
	if os.Getenv(EnvServe) != "stdio" {
		return
	}
	err := NewServer(nil, nil).Run(context.Background(), &mcp.StdioTransport{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcptest:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Stdio is how to start the stdio server: this test binary, with EnvServe
// set (the package's TestMain must call ServeStdioIfAsked).
func Stdio(t testing.TB) (command string, args []string, env map[string]string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe, []string{"-test.run=^$"}, map[string]string{EnvServe: "stdio"}
}

// HTTPServer is the server over HTTP, counting the calls of each tool.
type HTTPServer struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
}

// Calls returns how many calls of tool the server has received.
func (h *HTTPServer) Calls(tool string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[tool]
}

// StartHTTP serves the server over streamable HTTP (at /mcp) and SSE (at
// /sse) on loopback until the test ends. Requests must carry the given
// headers (none when nil), else they are answered 401.
func StartHTTP(t testing.TB, headers map[string]string) *HTTPServer {
	t.Helper()
	h := &HTTPServer{calls: map[string]int{}}
	release := make(chan struct{})
	count := func(tool string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.calls[tool]++
	}
	get := func(*http.Request) *mcp.Server { return NewServer(release, count) }
	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp.NewStreamableHTTPHandler(get, nil))
	mux.Handle("/sse", mcp.NewSSEHandler(get, nil))
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			if r.Header.Get(k) != v {
				http.Error(w, "missing or wrong "+k, http.StatusUnauthorized)
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(h.Close)
	// Runs before h.Close, which waits for every handler to return.
	t.Cleanup(func() { close(release) })
	return h
}

type echoIn struct {
	Message string `json:"message" jsonschema:"the message to echo"`
}
type addIn struct {
	A float64 `json:"a" jsonschema:"the first number"`
	B float64 `json:"b" jsonschema:"the second number"`
}
type bigIn struct {
	Bytes int `json:"bytes" jsonschema:"how many bytes to answer"`
}
type none struct{}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// NewServer returns the test server, with its tools; a call of hang
// returns once release is closed (never, if nil) or its client goes away.
// count, if not nil, is told the name of each tool called.
func NewServer(release <-chan struct{}, count func(tool string)) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "kelpie-mcptest", Version: "1"}, nil)
	if count != nil {
		s.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
			return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
				if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok {
					count(p.Name)
				}
				return next(ctx, method, req)
			}
		})
	}
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo a message back."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
			return text(in.Message), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "add", Description: "Add two numbers."},
		func(_ context.Context, _ *mcp.CallToolRequest, in addIn) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(in.A + in.B)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "pid", Description: "The server's process id."},
		func(context.Context, *mcp.CallToolRequest, none) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprint(os.Getpid())), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "spawn", Description: "Start a child that sleeps; its pid."},
		func(context.Context, *mcp.CallToolRequest, none) (*mcp.CallToolResult, any, error) {
			cmd := exec.Command("sleep", "300")
			if err := cmd.Start(); err != nil {
				return nil, nil, err
			}
			return text(fmt.Sprint(cmd.Process.Pid)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "fail", Description: "Always fails."},
		func(context.Context, *mcp.CallToolRequest, none) (*mcp.CallToolResult, any, error) {
			r := text("it failed on purpose")
			r.IsError = true
			return r, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "big", Description: "A result of n bytes."},
		func(_ context.Context, _ *mcp.CallToolRequest, in bigIn) (*mcp.CallToolResult, any, error) {
			return text(strings.Repeat("x", in.Bytes)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "hang", Description: "Never answers."},
		func(ctx context.Context, _ *mcp.CallToolRequest, _ none) (*mcp.CallToolResult, any, error) {
			select {
			case <-ctx.Done():
			case <-release:
			}
			return text("late"), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "crash", Description: "The server dies."},
		func(context.Context, *mcp.CallToolRequest, none) (*mcp.CallToolResult, any, error) {
			if os.Getenv(EnvServe) != "stdio" {
				return nil, nil, fmt.Errorf("crash is a stdio tool")
			}
			fmt.Fprintln(os.Stderr, "boom")
			os.Exit(3)
			return nil, nil, nil
		})
	return s
}
