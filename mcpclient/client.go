// Package mcpclient is Kelpie's client of MCP servers, built on the
// official Go SDK (github.com/modelcontextprotocol/go-sdk): stdio servers,
// which it starts as subprocesses, and SSE and streamable-HTTP servers,
// which it reaches with the server's stored headers.
//
// Guarantees:
//   - Every use connects afresh and disconnects when done, as Letta's
//     client does: a server that died or restarted since the last call is
//     simply reached again, and no connection outlives its call.
//   - A stdio server runs in a process group of its own with only a small
//     default environment (HOME, LOGNAME, PATH, SHELL, TERM, USER) and the
//     server's configured env; when the use ends its stdin is closed, and
//     after StopGrace the whole group is killed and reaped, so nothing it
//     started outlives the call.
//   - Time is bounded: connecting (start and MCP initialisation) by
//     ConnectTimeout, listing by ListTimeout, a call by CallTimeout.
//   - Size is bounded: one message from a server is at most
//     MaxMessageBytes, an HTTP response body at most MaxResponseBytes.
//   - Call never fails: a server that cannot be reached, refuses, hangs,
//     dies or floods gives an Outcome whose result says so, for the model.
//
// A stdio server is not sandboxed (it needs what it was configured with:
// npx, network, files); registering one is running a command on this host,
// so --mcp-stdio=false refuses them on servers that do not trust their API
// clients that far.
package mcpclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/schema"
)

// Limits. The timeouts are Letta's defaults (mcp_connect_to_server_timeout,
// mcp_list_tools_timeout, mcp_execute_tool_timeout).
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultListTimeout    = 30 * time.Second
	DefaultCallTimeout    = 60 * time.Second
	MaxMessageBytes       = 4 << 20  // one JSON-RPC message or SSE event from a server
	MaxResponseBytes      = 16 << 20 // one HTTP response body from a server
	MaxStderrBytes        = 8 << 10  // of a stdio server's stderr, kept to explain its failures
	StopGrace             = 2 * time.Second
)

// Config configures a Client; zero durations mean the defaults.
type Config struct {
	ConnectTimeout, ListTimeout, CallTimeout time.Duration
	// DisableStdio refuses stdio servers (Letta's MCP_DISABLE_STDIO).
	DisableStdio bool
	// AllowPrivate lets HTTP servers be on loopback, private or
	// link-local addresses and internal host names, which Letta refuses
	// (a guard against requests into the server's own network).
	AllowPrivate bool
}

// Client connects to MCP servers; it implements tool.MCPClient.
type Client struct{ cfg Config }

var _ tool.MCPClient = (*Client)(nil)

// New returns a client.
func New(cfg Config) *Client {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ListTimeout <= 0 {
		cfg.ListTimeout = DefaultListTimeout
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	return &Client{cfg: cfg}
}

// ErrStdioDisabled is the error for a stdio server on a client that
// refuses them.
var ErrStdioDisabled = errors.New("MCP stdio servers are disabled on this server (kelpie serve --mcp-stdio=false)")

// StdioDisabled reports whether the client refuses stdio servers.
func (c *Client) StdioDisabled() bool { return c.cfg.DisableStdio }

// session is one connection to a server, and the process behind it for a
// stdio server.
type session struct {
	cs     *mcp.ClientSession
	proc   *process
	cancel context.CancelFunc // ends what the transport runs (an SSE stream)
}

func (s *session) close() {
	_ = s.cs.Close()
	s.cancel()
	if s.proc != nil {
		s.proc.stop()
	}
}

// exitWait is how long a failure waits for a stdio server whose output
// ended to be reaped, to say how it exited.
const exitWait = time.Second

// failure explains err, with how a stdio server ended and what it printed
// if it died.
func (s *session) failure(err error) string {
	if s.proc != nil {
		select {
		case <-s.proc.done:
			return s.proc.exited()
		case <-time.After(exitWait):
		}
	}
	return err.Error()
}

// connect starts or reaches s and initialises an MCP session with it.
func (c *Client) connect(ctx context.Context, s *schema.MCPServer) (_ *session, err error) {
	// The transport keeps ctx for the session's life (SSE reads its
	// stream under it), so the connect timeout cancels it only until the
	// session is up.
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(c.cfg.ConnectTimeout, cancel)
	defer func() {
		if err != nil {
			timer.Stop()
			cancel()
		}
	}()
	if err := c.Check(s); err != nil {
		return nil, err
	}
	var (
		t    mcp.Transport
		proc *process
	)
	switch s.Type {
	case schema.MCPStdio:
		if proc, err = startProcess(s); err != nil {
			return nil, err
		}
		t = &mcp.IOTransport{Reader: proc.stdout, Writer: proc.stdin, MaxLineLength: MaxMessageBytes}
	case schema.MCPSSE:
		t = &mcp.SSEClientTransport{Endpoint: s.URL, HTTPClient: c.httpClient(s), MaxEventSize: MaxMessageBytes}
	case schema.MCPStreamableHTTP:
		t = &mcp.StreamableClientTransport{Endpoint: s.URL, HTTPClient: c.httpClient(s), MaxEventSize: MaxMessageBytes,
			MaxRetries: 1, DisableStandaloneSSE: true}
	default:
		return nil, fmt.Errorf("unknown MCP server type %q", s.Type)
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "kelpie", Version: "1"}, nil)
	cs, err := client.Connect(ctx, t, nil)
	if err == nil && !timer.Stop() {
		_ = cs.Close()
		err = ctx.Err()
	}
	if err != nil {
		if proc != nil {
			proc.stop()
			if why := proc.exited(); why != "" {
				return nil, errors.New(why)
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no answer within %s", c.cfg.ConnectTimeout)
		}
		return nil, err
	}
	return &session{cs: cs, proc: proc, cancel: cancel}, nil
}

// ListTools lists the tools s offers.
func (c *Client) ListTools(ctx context.Context, s *schema.MCPServer) ([]tool.MCPTool, error) {
	sess, err := c.connect(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("could not connect to MCP server %q: %w", s.Name, err)
	}
	defer sess.close()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ListTimeout)
	defer cancel()
	var out []tool.MCPTool
	for t, err := range sess.cs.Tools(ctx, nil) {
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("MCP server %q did not list its tools within %s", s.Name, c.cfg.ListTimeout)
			}
			return nil, fmt.Errorf("MCP server %q failed to list its tools: %s", s.Name, sess.failure(err))
		}
		var schema map[string]any
		if data, err := json.Marshal(t.InputSchema); err == nil {
			_ = json.Unmarshal(data, &schema)
		}
		out = append(out, tool.MCPTool{Name: t.Name, Description: t.Description, InputSchema: schema})
	}
	return out, nil
}

// Call calls tool name of s with args.
func (c *Client) Call(ctx context.Context, s *schema.MCPServer, name string, args json.RawMessage) tool.Outcome {
	sess, err := c.connect(ctx, s)
	if err != nil {
		return tool.Failed("could not connect to MCP server %q to call %s: %v", s.Name, name, err)
	}
	defer sess.close()
	var params map[string]any
	if len(args) > 0 {
		if err := json.Unmarshal(args, &params); err != nil {
			return tool.Failed("the arguments of %s are not a JSON object: %v", name, err)
		}
	}
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.CallTimeout)
	defer cancel()
	res, err := sess.cs.CallTool(callCtx, &mcp.CallToolParams{Name: name, Arguments: params})
	switch {
	case err != nil && callCtx.Err() != nil && ctx.Err() == nil:
		return tool.Failed("MCP server %q did not answer the call of %s within %s; its outcome is unknown", s.Name, name, c.cfg.CallTimeout)
	case err != nil:
		return tool.Failed("MCP server %q failed during the call of %s: %s", s.Name, name, sess.failure(err))
	}
	return render(res)
}

// render turns a call's result into what the model reads, as Letta does:
// the text parts joined by spaces (other parts as their JSON), an error
// result's status "error".
func render(res *mcp.CallToolResult) tool.Outcome {
	var parts []string
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, t.Text)
			continue
		}
		data, err := json.Marshal(c)
		if err != nil {
			data = []byte(fmt.Sprintf("%T", c))
		}
		parts = append(parts, string(data))
	}
	text := strings.Join(parts, " ")
	if text == "" {
		text = "Empty response from tool"
	}
	return tool.Outcome{Result: text, OK: !res.IsError}
}

// httpClient is the HTTP client of a server: its custom headers, then its
// auth header, on every request; response bodies bounded.
func (c *Client) httpClient(s *schema.MCPServer) *http.Client {
	h := http.Header{}
	for k, v := range s.CustomHeaders {
		h.Set(k, v)
	}
	if s.AuthHeader != "" && s.AuthToken != "" {
		h.Set(s.AuthHeader, s.AuthToken)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DialContext = c.dial
	return &http.Client{Transport: &headerTransport{base: base, header: h}}
}

type headerTransport struct {
	base   http.RoundTripper
	header http.Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.header {
		r.Header[k] = v
	}
	res, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	res.Body = &boundedBody{ReadCloser: res.Body, left: MaxResponseBytes}
	return res, nil
}
