package api

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm"
)

// scripted is a fake llm.Provider named "openai": each Complete takes the
// next function of its script, or answers "ok" past its end.
type scripted struct {
	mu     sync.Mutex
	script []func(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error)
	calls  int
}

func (s *scripted) Name() string { return "openai" }

func (s *scripted) Complete(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
	s.mu.Lock()
	i := s.calls
	s.calls++
	var f func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error)
	if i < len(s.script) {
		f = s.script[i]
	}
	s.mu.Unlock()
	if f == nil {
		f = textReply("ok")
	}
	return f(ctx, req, onDelta)
}

func (s *scripted) add(fs ...func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, fs...)
}

func textReply(text string) func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
	return func(_ context.Context, _ llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
		if onDelta != nil {
			for _, w := range strings.SplitAfter(text, " ") {
				onDelta(llm.Delta{Content: w})
			}
		}
		return &llm.Response{Content: text, StopReason: llm.StopEndTurn, Usage: llm.Usage{PromptTokens: 100, CompletionTokens: 10}}, nil
	}
}

func toolCallReply(id, name, args string) func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
	return func(context.Context, llm.Request, func(llm.Delta)) (*llm.Response, error) {
		return &llm.Response{ToolCalls: []llm.ToolCall{{ID: id, Name: name, Arguments: args}}, StopReason: llm.StopToolCalls,
			Usage: llm.Usage{PromptTokens: 100, CompletionTokens: 20}}, nil
	}
}

// resolver serves "openai/..." with one provider and lists one model.
type resolver struct{ p llm.Provider }

func (r resolver) Resolve(handle string) (llm.Provider, string, error) {
	provider, model, _ := strings.Cut(handle, "/")
	if provider != "openai" {
		return nil, "", fmt.Errorf("provider %q is not configured", provider)
	}
	return r.p, model, nil
}

func (r resolver) Models(context.Context) []llm.ModelInfo {
	return []llm.ModelInfo{{Handle: "openai/gpt-4o-mini", Provider: "openai", Name: "gpt-4o-mini", ContextWindow: 128000}}
}

// fixedClock reads a fixed time but times tickers for real.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time                         { return c.t }
func (c fixedClock) NewTicker(d time.Duration) clock.Ticker { return clock.Real{}.NewTicker(d) }
func (c fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

var testNow = time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)

// newTurnServer serves a service whose "openai" provider is p (none when
// p is nil), with a fixed clock and seeded ids.
func newTurnServer(t testing.TB, p llm.Provider, opts Options) (*client, *agent.Service) {
	t.Helper()
	return newTurnServerAt(t, p, fixedClock{testNow}, opts)
}

// newTurnServerAt is newTurnServer with the service's clock.
func newTurnServerAt(t testing.TB, p llm.Provider, clk clock.Clock, opts Options) (*client, *agent.Service) {
	t.Helper()
	cfg := agent.Config{
		Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini",
		Rand:  rand.NewChaCha8([32]byte{1}),
		Clock: clk,
	}
	if p != nil {
		cfg.LLM = resolver{p}
	}
	svc, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	srv := httptest.NewServer(NewHandler(svc, opts))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Close(ctx)
	})
	return &client{t: t, base: srv.URL, header: http.Header{}}, svc
}

// stream sends a request expected to answer with an event stream and
// returns the raw body.
func (c *client) stream(method, path, body string, hdr ...string) (string, http.Header) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json") // as the SDK sends, even for streams
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
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, data)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		c.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return string(data), resp.Header
}

var (
	uuidPart = `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`
	idRE     = regexp.MustCompile(`"(message|run|step|conv|passage)-` + uuidPart + `"`)
	otidRE   = regexp.MustCompile(`"otid":"` + uuidPart + `"`)
)

// normalize replaces generated ids with placeholders, so that bodies can
// be compared byte for byte.
func normalizeIDs(s string) string {
	s = idRE.ReplaceAllString(s, `"$1-X"`)
	return otidRE.ReplaceAllString(s, `"otid":"X"`)
}
