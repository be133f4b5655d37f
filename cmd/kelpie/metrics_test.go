package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// bearer adds an API key to every request it carries.
type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape returns the series of a /metrics page by their name and labels,
// as written, such as `kelpie_agent_turns_total` or
// `kelpie_kv_commits_total{outcome="ok"}`.
func scrape(t *testing.T, client *http.Client, url string) map[string]float64 {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

// Spec: after a workload of creates, block edits, a turn with a tool call
// and a failed read, /metrics shows the requests by route pattern and
// status, the errors by kind, commits and their timing, the runtime's
// activations, the turn, its steps and tool call, the model call with its
// tokens, and the storage's size. /metrics on the API's address needs the
// key; --metrics-addr serves it without. Every response carries a request
// id, the client's when it sent one, and the request's log lines name it.
func TestMetricsAfterWorkload(t *testing.T) {
	double := llmtest.NewServer(t)
	double.Script(
		llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "send_message", Arguments: `{"message":"hello"}`}}},
		llmtest.Reply{Text: "done"},
	)
	t.Setenv("OPENAI_BASE_URL", double.OpenAIBaseURL())
	t.Setenv("OPENAI_API_KEY", "test")

	var logs bytes.Buffer
	log := slog.New(api.LogRequestIDs(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	metricsAddr := freeAddr(t)
	cfg := serveConfig{addr: "127.0.0.1:0", dataDir: t.TempDir(), storage: "pebble", idleTimeout: time.Minute,
		maxActivations: 100, apiKey: "k", metricsAddr: metricsAddr}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, cfg, log, ready) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + <-ready
	client := &http.Client{Transport: bearer{"k"}}

	var a agentJSON
	body := map[string]any{"name": "m", "model": "openai/gpt-4o-mini", "memory_blocks": []map[string]string{{"label": "human", "value": "Ada"}}}
	if _, err := call(client, "POST", base+"/v1/agents/", body, &a); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"Ada L", "Ada Lovelace"} {
		if _, err := call(client, "PATCH", base+"/v1/agents/"+a.ID+"/core-memory/blocks/human", map[string]string{"value": v}, nil); err != nil {
			t.Fatal(err)
		}
	}
	msg := map[string]any{"messages": []map[string]string{{"role": "user", "content": "hi"}}}
	if _, err := call(client, "POST", base+"/v1/agents/"+a.ID+"/messages", msg, nil); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", base+"/v1/agents/agent-00000000-0000-4000-8000-000000000000", nil)
	req.Header.Set("X-Request-Id", "req-missing-agent")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || resp.Header.Get("X-Request-Id") != "req-missing-agent" {
		t.Fatalf("GET of a missing agent: %d, X-Request-Id %q; want 404 echoing the client's id", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	if !strings.Contains(logs.String(), "request_id=req-missing-agent") {
		t.Errorf("no log line names the request id:\n%s", logs.String())
	}
	if resp, err := http.Get(base + "/v1/health"); err != nil || len(resp.Header.Get("X-Request-Id")) != 32 {
		t.Fatalf("health: %v; a request without an id gets a new one, got %q", err, resp.Header.Get("X-Request-Id"))
	}

	if resp, err := http.Get(base + "/metrics"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("/metrics on the API address without the key: %v %v, want 401", resp.StatusCode, err)
	}
	s := scrape(t, client, base+"/metrics")
	open := scrape(t, http.DefaultClient, "http://"+metricsAddr+"/metrics")
	if open[`kelpie_agent_turns_total`] != s[`kelpie_agent_turns_total`] {
		t.Errorf("--metrics-addr and /metrics disagree on turns: %v vs %v", open[`kelpie_agent_turns_total`], s[`kelpie_agent_turns_total`])
	}
	exact := map[string]float64{
		`kelpie_http_requests_total{method="POST",route="/v1/agents",status="200"}`:                                                 1,
		`kelpie_http_requests_total{method="PATCH",route="/v1/agents/{agent_id}/core-memory/blocks/{block_label}",status="200"}`:    2,
		`kelpie_http_requests_total{method="GET",route="/v1/agents/{agent_id}",status="404"}`:                                       1,
		`kelpie_http_request_duration_seconds_count{method="PATCH",route="/v1/agents/{agent_id}/core-memory/blocks/{block_label}"}`: 2,
		`kelpie_errors_total{kind="not_found"}`:                                         1,
		`kelpie_agent_turns_total`:                                                      1,
		`kelpie_agent_steps_total`:                                                      2,
		`kelpie_agent_tool_calls_total`:                                                 1,
		`kelpie_agent_turns_failed_total`:                                               0,
		`kelpie_llm_calls_total{model="gpt-4o-mini",outcome="ok",provider="openai"}`:    2,
		`kelpie_llm_call_duration_seconds_count{model="gpt-4o-mini",provider="openai"}`: 2,
	}
	for name, want := range exact {
		if got, ok := s[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{
		`kelpie_kv_commits_total{outcome="ok"}`,
		`kelpie_kv_commit_duration_seconds_count`,
		`kelpie_kv_sync_wait_seconds_count`,
		`kelpie_actor_activations_total`,
		`kelpie_actor_activations`,
		`kelpie_llm_tokens_total{direction="prompt",model="gpt-4o-mini",provider="openai"}`,
		`kelpie_llm_tokens_total{direction="completion",model="gpt-4o-mini",provider="openai"}`,
		`kelpie_storage_disk_bytes`,
		`go_goroutines`,
	} {
		if s[name] <= 0 {
			t.Errorf("%s = %v, want more than 0", name, s[name])
		}
	}
	for name := range s {
		if strings.Contains(name, "agent-") {
			t.Errorf("series labelled with a raw path: %s", name)
		}
	}
	// The inspector's status page shows the same figures, summed over
	// their labels.
	resp, err = client.Get(base + "/ui/status")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"<th>kelpie_agent_turns_total</th><td>1</td>", "<th>kelpie_agent_steps_total</th><td>2</td>", "<th>process_resident_memory_bytes</th>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the status page lacks %s:\n%s", want, page)
		}
	}
}
