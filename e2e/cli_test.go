package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// cliTimeout bounds one run of the letta CLI; a guard against hangs, not a
// performance assertion.
const cliTimeout = 120 * time.Second

// exchange is one request through the logging proxy.
type exchange struct {
	Method, Path string // Path includes the query
	Status       int
	ContentType  string // of the response
	ReqBytes     int
	Duration     time.Duration
	ReqBody      string // kept for small or failed requests, truncated
	RespBody     string // kept for failed requests, truncated
}

func (e exchange) String() string {
	s := fmt.Sprintf("%-6s %-90s %d  %-30s req=%dB %v", e.Method, e.Path, e.Status, e.ContentType, e.ReqBytes, e.Duration.Round(time.Millisecond))
	if e.ReqBody != "" {
		s += "\n        request:  " + e.ReqBody
	}
	if e.Status >= 400 {
		s += "\n        response: " + e.RespBody
	}
	return s
}

// trafficLog is what the proxy saw.
type trafficLog struct {
	mu  sync.Mutex
	all []exchange
}

func (l *trafficLog) add(e exchange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, e)
}

func (l *trafficLog) list() []exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]exchange(nil), l.all...)
}

func (l *trafficLog) String() string {
	var b strings.Builder
	for i, e := range l.list() {
		fmt.Fprintf(&b, "%3d %s\n", i+1, e)
	}
	return b.String()
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return string(b)
}

// loggingProxy is a reverse proxy on loopback in front of target that logs
// every request (streams pass through unbuffered).
func loggingProxy(t *testing.T, target string) (string, *trafficLog) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	log := &trafficLog{}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(u); r.Out.Host = r.In.Host },
		FlushInterval: -1,
	}
	type key struct{}
	rp.ModifyResponse = func(resp *http.Response) error {
		e := resp.Request.Context().Value(key{}).(*exchange)
		e.Status = resp.StatusCode
		e.ContentType = resp.Header.Get("Content-Type")
		if resp.StatusCode >= 400 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			e.RespBody = truncate(body, 600)
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		e := r.Context().Value(key{}).(*exchange)
		e.Status = http.StatusBadGateway
		e.RespBody = "proxy: " + err.Error()
		w.WriteHeader(http.StatusBadGateway)
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		e := &exchange{Method: r.Method, Path: r.URL.RequestURI(), ReqBytes: len(body)}
		rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), key{}, e)))
		e.Duration = time.Since(start)
		if e.Status >= 400 || len(body) <= 400 {
			e.ReqBody = truncate(body, 600)
		}
		log.add(*e)
	}))
	t.Cleanup(hs.Close)
	return hs.URL, log
}

// cliEnv is the environment of the letta CLI: the test's, without anything
// that would point letta at a real home, account or server, plus extra.
func cliEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "LETTA_"), strings.HasPrefix(name, "XDG_"), name == "HOME", name == "NODE_OPTIONS",
			name == "OPENAI_API_KEY", name == "ANTHROPIC_API_KEY", name == "DEBUG":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// cliResult is what `letta -p ... --output-format json` prints.
type cliResult struct {
	Type           string          `json:"type"`
	Subtype        string          `json:"subtype"`
	IsError        bool            `json:"is_error"`
	Result         string          `json:"result"`
	AgentID        string          `json:"agent_id"`
	ConversationID string          `json:"conversation_id"`
	Usage          json.RawMessage `json:"usage"`
}

var agentIDRE = regexp.MustCompile(`^agent-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// lettaRun is one run of the letta CLI against kelpie.
type lettaRun struct {
	llm     *llmtest.Server
	kelpie  string // kelpie's URL (not the proxy's)
	traffic *trafficLog
	result  cliResult
	env     []string // the CLI's environment, for more commands on its state
}

// runLetta runs the real letta CLI (letta-code) headless, `letta -p prompt
// --output-format json`, against a fresh kelpie behind a logging proxy, the
// model being the double as set up by setup. The CLI gets a temporary HOME
// and working directory, no TTY, telemetry and auto-update off, and a preload
// (cli/netguard.mjs) that blocks and records any connection to a host other
// than loopback. It fails t unless letta exits 0 having printed its JSON
// result, and checks what every run must show: type "result", an agent_id
// kelpie knows, no 5xx, the turn streamed as text/event-stream.
func runLetta(t *testing.T, prompt string, setup func(*llmtest.Server)) *lettaRun {
	t.Helper()
	return runLettaWith(t, prompt, nil, nil, setup)
}

// runLettaWith is runLetta with more arguments for letta and more
// environment variables ("NAME=value"), whose values may name the proxy's
// URL as {proxy}.
func runLettaWith(t *testing.T, prompt string, args, env []string, setup func(*llmtest.Server)) *lettaRun {
	t.Helper()
	npmInstall(t)
	llmSrv, _, k := startWithLLM(t)
	setup(llmSrv)
	proxyURL, traffic := loggingProxy(t, k.URL)
	run := &lettaRun{llm: llmSrv, kelpie: k.URL, traffic: traffic}

	e2eDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	home, work := t.TempDir(), t.TempDir()
	netlog := filepath.Join(t.TempDir(), "netguard.log")
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := command(t, ctx, filepath.Join(e2eDir, "node_modules", ".bin", "letta"), append([]string{"-p", prompt, "--output-format", "json"}, args...)...)
	cmd.Dir = work
	for i, kv := range env {
		env[i] = strings.ReplaceAll(kv, "{proxy}", proxyURL)
	}
	cmd.Env = cliEnv(append([]string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"LETTA_BASE_URL=" + proxyURL,
		"LETTA_API_KEY=e2e-any-key",
		"DISABLE_AUTOUPDATER=1", // else: an update check at registry.npmjs.org
		"LETTA_CODE_TELEM=0",    // else: telemetry to api.letta.com
		"DO_NOT_TRACK=1",
		"LETTA_DISABLE_LSP_DOWNLOAD=1",
		"NODE_OPTIONS=--import=" + filepath.Join(e2eDir, "cli", "netguard.mjs"),
		"KELPIE_NETGUARD_LOG=" + netlog,
		"NO_COLOR=1",
	}, env...)...)
	run.env = cmd.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr // stdin is /dev/null: no TTY
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)

	t.Logf("letta ran %v, exit: %v", elapsed.Round(time.Millisecond), runErr)
	t.Logf("requests letta-code made (through the proxy):\n%s", traffic)
	if b, err := os.ReadFile(netlog); err == nil && len(b) > 0 {
		t.Logf("letta-code tried to reach hosts other than loopback (blocked):\n%s", b)
	} else {
		t.Logf("letta-code made no attempt to reach a host other than loopback")
	}
	for i, r := range llmSrv.Requests() {
		var tools []string
		for _, tl := range r.Tools {
			tools = append(tools, tl.Name)
		}
		t.Logf("LLM request %d: model=%s stream=%v messages=%d system=%dB rejected=%q tools=%v", i+1, r.Model, r.Stream, len(r.Messages), len(r.System), r.Rejected, tools)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("letta -p did not finish within %v; stdout:\n%s\nstderr:\n%s", cliTimeout, stdout.String(), stderr.String())
	}
	if runErr != nil {
		t.Fatalf("letta -p: %v\nstdout:\n%s\nstderr:\n%s", runErr, stdout.String(), stderr.String())
	}

	// The JSON result is the last JSON object printed on stdout (it may be
	// pretty-printed over several lines).
	var found bool
	out := stdout.String()
	for i := len(out); i > 0 && !found; {
		i = strings.LastIndex(out[:i], "{")
		if i < 0 {
			break
		}
		if i > 0 && out[i-1] != '\n' {
			continue
		}
		var r cliResult
		if json.NewDecoder(strings.NewReader(out[i:])).Decode(&r) == nil && r.Type != "" {
			run.result, found = r, true
		}
	}
	if !found {
		t.Fatalf("no JSON result on stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	t.Logf("letta printed: %s", strings.TrimSpace(stdout.String()))
	if stderr.Len() > 0 {
		t.Logf("letta stderr: %s", stderr.String())
	}
	res := run.result
	if res.Type != "result" || res.IsError {
		t.Errorf("result type %q is_error %v, want type \"result\" and no error", res.Type, res.IsError)
	}
	if !agentIDRE.MatchString(res.AgentID) {
		t.Errorf("agent_id %q is not an agent id", res.AgentID)
	}
	if resp, err := http.Get(k.URL + "/v1/agents/" + res.AgentID); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/agents/%s: %v %v", res.AgentID, err, resp)
	} else {
		resp.Body.Close()
	}
	var streamed bool
	for _, e := range traffic.list() {
		if e.Status >= 500 {
			t.Errorf("kelpie answered %s %s with %d: %s", e.Method, e.Path, e.Status, e.RespBody)
		}
		if e.Method == "POST" && strings.HasPrefix(e.Path, "/v1/conversations/") && strings.Contains(e.Path, "/messages") && e.Status == 200 {
			streamed = true
			if ct := strings.TrimSpace(strings.Split(e.ContentType, ";")[0]); ct != "text/event-stream" {
				t.Errorf("%s %s answered with content-type %q, want text/event-stream", e.Method, e.Path, e.ContentType)
			}
		}
	}
	if !streamed {
		t.Errorf("letta never got a 200 for POST /v1/conversations/{id}/messages")
	}
	return run
}

// TestLettaCLIHeadless: `letta -p "ping"` with the model answering "pong".
func TestLettaCLIHeadless(t *testing.T) {
	run := runLetta(t, "ping", func(llmSrv *llmtest.Server) {
		llmSrv.SetDefault(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "pong"} })
	})
	if !strings.Contains(run.result.Result, "pong") {
		t.Errorf("result %q does not contain the model's answer \"pong\"", run.result.Result)
	}
	var asked bool
	for _, r := range run.llm.Requests() {
		if strings.Contains(r.LastUserText(), "ping") {
			asked = true
		}
	}
	if !asked {
		t.Errorf("no LLM request carried the prompt \"ping\"")
	}
}

// TestLettaCLIClientTool: the model calls one of letta-code's own tools
// (UpdatePlan, which it runs without asking), so kelpie must stop with an
// approval request, take the CLI's tool result back and give it to the model,
// which then answers "pong".
func TestLettaCLIClientTool(t *testing.T) {
	run := runLetta(t, "make a plan, then say pong", func(llmSrv *llmtest.Server) {
		llmSrv.Script(
			llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_plan_1", Name: "UpdatePlan",
				Arguments: `{"explanation":"e2e","plan":[{"step":"answer with pong","status":"in_progress"}]}`}}},
			llmtest.Reply{Text: "pong"},
		)
		llmSrv.SetDefault(func(r llmtest.Request) llmtest.Reply {
			return llmtest.Reply{Text: "unexpected extra request"}
		})
	})
	if run.result.Result != "pong" {
		t.Errorf("result %q, want the model's final answer \"pong\"", run.result.Result)
	}
	reqs := run.llm.Requests()
	if len(reqs) != 2 {
		t.Fatalf("want 2 LLM requests (the tool call, then the answer), got %d", len(reqs))
	}
	var answered bool
	for _, m := range reqs[1].Messages {
		if m.Role == "tool" && m.ToolCallID == "call_plan_1" {
			answered = true
			t.Logf("tool result the model got: %q", m.Content)
		}
	}
	if !answered {
		t.Errorf("the second LLM request does not carry the CLI's result for call_plan_1: %+v", reqs[1].Messages)
	}
	var approvals int
	for _, e := range run.traffic.list() {
		if e.Method == "POST" && strings.HasSuffix(strings.Split(e.Path, "?")[0], "/messages") && strings.HasPrefix(e.Path, "/v1/conversations/") {
			approvals++
		}
	}
	if approvals < 2 {
		t.Errorf("want the prompt and the approval reply posted to /v1/conversations/{id}/messages, saw %d posts", approvals)
	}
}
