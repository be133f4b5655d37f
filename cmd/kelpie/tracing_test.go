package main

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/kelpie/kelpie/llm/llmtest"
)

// otlpReceiver is an OTLP/HTTP trace endpoint that keeps what it receives.
type otlpReceiver struct {
	t     *testing.T
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			o.t.Error(err)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	var req collector.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(data, &req)
	}
	if err != nil || r.URL.Path != "/v1/traces" {
		o.t.Errorf("OTLP export to %s: %v", r.URL.Path, err)
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collector.ExportTraceServiceResponse{})
	w.Write(out)
}

// Spec: with OTEL_EXPORTER_OTLP_ENDPOINT set, each request is a server span
// named by its route, continuing the caller's traceparent; its actor
// invocations, their commits and the turn's model calls are spans of the
// same trace, each under the one that caused it; everything is exported
// over OTLP/HTTP by the time the server has stopped.
func TestTracesOverOTLP(t *testing.T) {
	recv := &otlpReceiver{t: t}
	collectorSrv := httptest.NewServer(recv)
	defer collectorSrv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collectorSrv.URL)
	double := llmtest.NewServer(t)
	t.Setenv("OPENAI_BASE_URL", double.OpenAIBaseURL())
	t.Setenv("OPENAI_API_KEY", "test")

	cfg := serveConfig{addr: "127.0.0.1:0", dataDir: t.TempDir(), storage: "pebble", idleTimeout: time.Minute, maxActivations: 100}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	base := "http://" + <-ready

	var a agentJSON
	body := map[string]any{"model": "openai/gpt-4o-mini", "memory_blocks": []map[string]string{{"label": "human", "value": "Ada"}}}
	if _, err := call(http.DefaultClient, "POST", base+"/v1/agents", body, &a); err != nil {
		t.Fatal(err)
	}
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("POST", base+"/v1/agents/"+a.ID+"/messages",
		strings.NewReader(`{"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("send message: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	byID := map[string]*tracepb.Span{}
	var turn []*tracepb.Span
	for _, s := range recv.spans {
		byID[hex.EncodeToString(s.SpanId)] = s
		if hex.EncodeToString(s.TraceId) == traceID {
			turn = append(turn, s)
		}
	}
	find := func(prefix string) *tracepb.Span {
		for _, s := range turn {
			if strings.HasPrefix(s.Name, prefix) {
				return s
			}
		}
		t.Fatalf("no span %q in the message's trace; its spans: %v", prefix, names(turn))
		return nil
	}
	parentOf := func(s *tracepb.Span) *tracepb.Span { return byID[hex.EncodeToString(s.ParentSpanId)] }
	server := find("POST /v1/agents/{agent_id}/messages")
	if hex.EncodeToString(server.ParentSpanId) != parentID || server.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("server span's parent %x, kind %v; want the caller's %s, server", server.ParentSpanId, server.Kind, parentID)
	}
	step := find("actor agents turn_step")
	if p := parentOf(step); p == nil || p != server {
		t.Errorf("the step's invocation is not under the request's span: parent %v", p)
	}
	llmSpan := find("llm openai gpt-4o-mini")
	if p := parentOf(llmSpan); p != server {
		t.Errorf("the model call is not under the request's span: parent %v", p)
	}
	commits := 0
	for _, s := range turn {
		if s.Name == "kv commit" {
			commits++
			if p := parentOf(s); p == nil || !strings.HasPrefix(p.Name, "actor ") {
				t.Errorf("a commit is not under an actor invocation: parent %v", p)
			}
		}
	}
	if commits == 0 {
		t.Errorf("no commit in the message's trace: %v", names(turn))
	}
}

func names(spans []*tracepb.Span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}
