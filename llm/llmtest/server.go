// Package llmtest is a test double for model providers: an HTTP server on
// 127.0.0.1 that speaks OpenAI's chat-completions wire format and
// Anthropic's Messages wire format, plain and streamed, with tool calls,
// usage and model listing. Tests script its replies, inject errors and
// delays, and inspect every request it received. It validates requests the
// way the real APIs do where that is cheap (Anthropic's alternating roles
// and required max_tokens, tool results answering tool calls, tool names
// and schemas, unknown fields) and answers a violation with 400, so that
// protocol bugs fail tests here instead of in production.
//
//	srv := llmtest.NewServer(t)
//	srv.Script(llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "send_message", Arguments: `{"message":"hi"}`}}},
//		llmtest.Reply{Text: "done"})
//	p := providers.NewOpenAI(providers.OpenAIConfig{BaseURL: srv.OpenAIBaseURL()})
//	... run the code under test with p ...
//	reqs := srv.Requests() // what was sent
package llmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/providers"
)

// Reply is one scripted answer of the double.
type Reply struct {
	// Text is the assistant's text.
	Text string
	// Reasoning, if set, is sent as reasoning: reasoning_content for
	// OpenAI, a thinking block for Anthropic.
	Reasoning string
	// ToolCalls are the tool calls the assistant makes. Missing IDs are
	// generated; empty Arguments are sent as "{}".
	ToolCalls []llm.ToolCall
	// StopReason is why the model stopped: tool_calls if there are
	// ToolCalls, else end_turn, when empty. Other values than the llm
	// constants are sent as they are (such as "content_filter").
	StopReason llm.StopReason
	// Usage overrides the token counts, which are otherwise estimated from
	// the text at about four bytes a token.
	Usage *llm.Usage

	// Status, if 400 or more, answers with that HTTP error in the vendor's
	// error format instead.
	Status int
	// ErrorMessage and ErrorCode go into the error body; ErrorCode is
	// OpenAI's error code (such as "context_length_exceeded") or
	// Anthropic's error type (such as "overloaded_error"). Defaults fit
	// the status.
	ErrorMessage string
	ErrorCode    string
	// RetryAfter, if set, is sent as the Retry-After header of an error.
	RetryAfter time.Duration
	// MidStream, with Status, makes a streamed reply first send Text and
	// then an error event inside the 200 stream, ending it.
	MidStream bool

	// Delay is waited before answering at all.
	Delay time.Duration
	// ChunkDelay is waited between the events of a streamed answer.
	ChunkDelay time.Duration
	// ChunkSize is how many characters of text, or bytes of arguments, a
	// streamed event carries; 4 if 0.
	ChunkSize int
}

// API names a wire format.
type API string

const (
	OpenAI    API = "openai"
	Anthropic API = "anthropic"
)

// Request is a request the double received, decoded.
type Request struct {
	API    API
	Method string
	Path   string
	Header http.Header
	// APIKey is the bearer token or x-api-key sent, if any.
	APIKey string
	Model  string
	// System is the system prompt: Anthropic's system field, or OpenAI's
	// system and developer messages joined by blank lines.
	System   string
	Messages []Message
	Tools    []llm.Tool
	// ToolChoice is "auto", "required", "none", a tool's name, or "" when
	// none was sent (Anthropic's "any" is reported as "required").
	ToolChoice string
	// MaxTokens is max_tokens or max_completion_tokens; MaxTokensField
	// says which one was sent ("" if none).
	MaxTokens      int
	MaxTokensField string
	Stream         bool
	// StreamUsage reports stream_options.include_usage (OpenAI).
	StreamUsage bool
	// Body is the raw request body.
	Body json.RawMessage
	// Rejected, if not empty, is why the double answered 400 instead of
	// a reply: the request broke the vendor's rules.
	Rejected string
}

// Message is one message of a request, as it went over the wire.
type Message struct {
	// Role is the wire role: "system", "developer", "user", "assistant" or
	// "tool" for OpenAI; "user" or "assistant" for Anthropic.
	Role string
	// Content is the text: the content string, or its text parts or
	// blocks joined by newlines.
	Content string
	// ToolCalls are an assistant's tool_calls (OpenAI) or tool_use blocks
	// (Anthropic).
	ToolCalls []llm.ToolCall
	// ToolCallID is the call a tool message answers (OpenAI).
	ToolCallID string
	// ToolResults are a user message's tool_result blocks (Anthropic).
	ToolResults []ToolResult
}

// ToolResult is an Anthropic tool_result block.
type ToolResult struct {
	ToolCallID string
	Content    string
	IsError    bool
}

// LastUserText returns the text of the last user message that has text.
func (r Request) LastUserText() string {
	for i := len(r.Messages) - 1; i >= 0; i-- {
		if m := r.Messages[i]; m.Role == "user" && m.Content != "" {
			return m.Content
		}
	}
	return ""
}

// Model is a model the double lists.
type Model struct {
	ID            string
	ContextWindow int // 0: not reported
}

// Reporter is told what the double finds wrong with how it is used (a
// scripted reply it cannot send, a request it rejects): a *testing.T in
// tests, a logger in a program (see Start).
type Reporter interface {
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// Server is the test double. Its methods are safe for concurrent use.
type Server struct {
	t    Reporter
	hs   *httptest.Server
	done chan struct{}

	mu          sync.Mutex
	script      []Reply
	def         func(Request) Reply
	requests    []Request
	models      map[API][]Model
	modelsFail  int
	modelsCalls map[API]int
	seq         int
	onServed    func(Request, time.Duration)
	clk         clock.Clock // nil: clock.Real{}
	forget      bool        // keep no requests (see ForgetRequests)

	embedRequests, embedTexts int // see EmbeddingCalls
}

// NewServer starts a double on 127.0.0.1, closed when the test ends. Until
// scripted otherwise it answers every request with the text of the last
// user message.
func NewServer(t testing.TB) *Server {
	t.Helper()
	s := Start(t)
	t.Cleanup(s.Close)
	return s
}

// Start starts a double on 127.0.0.1 for a program (kelpie load's model)
// or a test; Close stops it.
func Start(r Reporter) *Server {
	s := newServer(r)
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Listen starts a double on addr, such as 127.0.0.1:8399; Close stops it.
func Listen(r Reporter, addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := newServer(r)
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.hs.Listener.Close()
	s.hs.Listener = ln
	s.hs.Start()
	return s, nil
}

func newServer(r Reporter) *Server {
	s := &Server{
		t:    r,
		done: make(chan struct{}),
		def:  func(r Request) Reply { return Reply{Text: r.LastUserText()} },
		models: map[API][]Model{
			OpenAI:    {{ID: "gpt-4o-mini"}, {ID: "gpt-4o"}},
			Anthropic: {{ID: "claude-sonnet-4-5", ContextWindow: 200000}, {ID: "claude-haiku-4-5", ContextWindow: 200000}},
		},
		modelsCalls: map[API]int{},
	}
	return s
}

// ForgetRequests stops the double keeping the requests it receives, so
// that a long run (kelpie load) does not grow with them; Requests and
// LastRequest see none received from then on.
func (s *Server) ForgetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget, s.requests = true, nil
}

// Close stops the double, ending the replies that are waiting.
func (s *Server) Close() {
	close(s.done)
	s.hs.Close()
}

// URL is the server's root, such as http://127.0.0.1:34567.
func (s *Server) URL() string { return s.hs.URL }

// OpenAIBaseURL is the base URL for an OpenAI client: URL()+"/v1".
func (s *Server) OpenAIBaseURL() string { return s.hs.URL + "/v1" }

// AnthropicBaseURL is the base URL for an Anthropic client: URL().
func (s *Server) AnthropicBaseURL() string { return s.hs.URL }

// Script queues replies, used one per completion request in order (of
// either API), before the default reply.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// Pending returns how many scripted replies are still unused.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.script)
}

// SetDefault sets the reply given when the script is empty.
func (s *Server) SetDefault(f func(Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = f
}

// OnServed sets a function called after each completion request (of either
// API, rejected ones included) has been answered, with the request and how
// long the double took to serve it: from its handler starting, the request
// body unread, to the handler returning, the Delay and any ChunkDelay
// included. Benchmarks use it to tell the double's own latency from their
// subject's. nil stops the calls. f may be called from many goroutines at
// once.
func (s *Server) OnServed(f func(req Request, d time.Duration)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onServed = f
}

// SetClock sets the clock the double reads: for the created time of
// OpenAI answers, for the durations OnServed reports, and to wait out a
// reply's Delay and ChunkDelay. nil, the default, is clock.Real{}.
func (s *Server) SetClock(c clock.Clock) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clk = c
}

// clock returns the clock set by SetClock, else the real one.
func (s *Server) clock() clock.Clock {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clk == nil {
		return clock.Real{}
	}
	return s.clk
}

// served reports a completion request to the OnServed function, if any.
func (s *Server) served(req Request, start time.Time) {
	d := s.clock().Now().Sub(start)
	s.mu.Lock()
	f := s.onServed
	s.mu.Unlock()
	if f != nil && req.API != "" { // "": the body could not be read
		f(req, d)
	}
}

// Requests returns every completion request received so far, in order,
// rejected ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// LastRequest returns the last completion request received; it fails the
// test if there was none.
func (s *Server) LastRequest() Request {
	if h, ok := s.t.(interface{ Helper() }); ok {
		h.Helper()
	}
	reqs := s.Requests()
	if len(reqs) == 0 {
		s.t.Fatalf("llmtest: no request received")
	}
	return reqs[len(reqs)-1]
}

// SetModels sets the models listed by GET /v1/models of api.
func (s *Server) SetModels(api API, models ...Model) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models[api] = append([]Model(nil), models...)
}

// FailModels makes model listing answer with status (0 to stop).
func (s *Server) FailModels(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modelsFail = status
}

// ModelsCalls returns how many model listings of api were received.
func (s *Server) ModelsCalls(api API) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.modelsCalls[api]
}

// OpenAIProvider returns an llm provider named "openai" that talks to the
// double.
func (s *Server) OpenAIProvider() llm.Provider {
	return providers.NewOpenAI(providers.OpenAIConfig{BaseURL: s.OpenAIBaseURL(), APIKey: "sk-llmtest"})
}

// AnthropicProvider returns an llm provider named "anthropic" that talks to
// the double.
func (s *Server) AnthropicProvider() llm.Provider {
	return providers.NewAnthropic(providers.AnthropicConfig{BaseURL: s.AnthropicBaseURL(), APIKey: "sk-ant-llmtest"})
}

// Registry returns a registry, configured as providers.FromEnv would be, whose
// "openai" and "anthropic" providers talk to the double.
// EmbeddingRegistry returns an embeddings registry whose "openai" provider
// is the double (as embedding.FromEnv would configure it).
func (s *Server) EmbeddingRegistry() *embedding.Registry {
	return embedding.FromEnv(func(k string) string {
		return map[string]string{"OPENAI_API_KEY": "sk-llmtest", "OPENAI_BASE_URL": s.OpenAIBaseURL()}[k]
	}, nil)
}

func (s *Server) Registry() *llm.Registry {
	env := map[string]string{
		"OPENAI_API_KEY":     "sk-llmtest",
		"OPENAI_BASE_URL":    s.OpenAIBaseURL(),
		"ANTHROPIC_API_KEY":  "sk-ant-llmtest",
		"ANTHROPIC_BASE_URL": s.AnthropicBaseURL(),
	}
	r := providers.FromEnv(func(k string) string { return env[k] })
	r.ModelsCacheTTL = -1
	return r
}

func (s *Server) nextID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && (path == "/v1/chat/completions" || path == "/chat/completions"):
		s.serveCompletion(w, r, openAIWire{})
	case r.Method == http.MethodPost && path == "/v1/messages":
		s.serveCompletion(w, r, anthropicWire{})
	case r.Method == http.MethodPost && (path == "/v1/embeddings" || path == "/embeddings"):
		s.serveEmbeddings(w, r)
	case r.Method == http.MethodGet && (path == "/v1/models" || path == "/models"):
		if r.Header.Get("anthropic-version") != "" {
			s.serveAnthropicModels(w, r)
		} else {
			s.serveOpenAIModels(w, r)
		}
	case strings.HasSuffix(path, "/messages"):
		anthropicError(w, http.StatusNotFound, "not_found_error", "Not found: "+r.Method+" "+path)
	default:
		openAIError(w, http.StatusNotFound, "invalid_request_error", "unknown_url", "Unknown request URL: "+r.Method+" "+path)
	}
}

// wireFormat is what differs between the completion APIs the double
// speaks; serveCompletion does the rest.
type wireFormat interface {
	// vendor names the API in logs.
	vendor() string
	// toolIDPrefix starts the IDs generated for scripted tool calls.
	toolIDPrefix() string
	// decode decodes and validates a request body; the request's Rejected
	// says why the vendor would answer 400.
	decode(body []byte) Request
	// checkHeaders returns why the vendor would refuse a request with
	// these headers for a reason of its own, or "".
	checkHeaders(h http.Header) string
	// reject answers a request that broke the vendor's rules.
	reject(w http.ResponseWriter, why string)
	// fail answers with a reply's scripted error status.
	fail(w http.ResponseWriter, rep Reply)
	// answer sends a reply, streamed if the request asked for a stream.
	answer(s *Server, w http.ResponseWriter, r *http.Request, req Request, rep Reply, body []byte)
}

// serveCompletion serves a completion request of either API: it records
// the request, then answers it with a rejection, a scripted error or the
// reply, after the reply's Delay.
func (s *Server) serveCompletion(w http.ResponseWriter, r *http.Request, wire wireFormat) {
	start := s.clock().Now()
	var req Request
	defer func() { s.served(req, start) }()
	body, err := readBody(r)
	if err != nil {
		return
	}
	req = received(wire, r, body)
	rep, ok := s.record(req)
	if !ok {
		s.t.Logf("llmtest: rejected %s request: %s", wire.vendor(), req.Rejected)
		wire.reject(w, req.Rejected)
		return
	}
	rep = s.normalize(rep, wire.toolIDPrefix())
	if !s.wait(r.Context(), rep.Delay) {
		return
	}
	if rep.Status >= 400 && !(rep.MidStream && req.Stream) {
		setRetryAfter(w, rep.RetryAfter)
		wire.fail(w, rep)
		return
	}
	wire.answer(s, w, r, req, rep, body)
}

// readBody reads a request's body into a buffer of the size it announces.
func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n < 64<<20 {
		buf.Grow(int(n) + bytes.MinRead) // room to see EOF without growing
	}
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

// received decodes a completion request and adds what its HTTP request
// line and headers say, rejecting it for the headers the vendor requires.
func received(wire wireFormat, r *http.Request, body []byte) Request {
	req := wire.decode(body)
	req.Method, req.Path, req.Header, req.APIKey = r.Method, r.URL.Path, r.Header.Clone(), apiKey(r.Header)
	if req.Rejected == "" {
		req.Rejected = wire.checkHeaders(r.Header)
	}
	if req.Rejected == "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		req.Rejected = "Content-Type must be application/json"
	}
	return req
}

// record stores a request and, if it was valid, picks its reply.
func (s *Server) record(req Request) (Reply, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.forget {
		s.requests = append(s.requests, req)
	}
	if req.Rejected != "" {
		return Reply{}, false
	}
	if len(s.script) > 0 {
		r := s.script[0]
		s.script = s.script[1:]
		return r, true
	}
	return s.def(req), true
}

// wait sleeps d unless the request or the server ends first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-s.clock().After(d):
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// normalize fills a reply's defaults.
func (s *Server) normalize(rep Reply, prefix string) Reply {
	calls := make([]llm.ToolCall, len(rep.ToolCalls))
	for i, c := range rep.ToolCalls {
		if c.ID == "" {
			c.ID = fmt.Sprintf("%s%d", prefix, s.nextID())
		}
		if strings.TrimSpace(c.Arguments) == "" {
			c.Arguments = "{}"
		}
		calls[i] = c
	}
	rep.ToolCalls = calls
	if rep.StopReason == "" {
		rep.StopReason = llm.StopEndTurn
		if len(calls) > 0 {
			rep.StopReason = llm.StopToolCalls
		}
	}
	if rep.ChunkSize <= 0 {
		rep.ChunkSize = 4
	}
	return rep
}

// usage returns the reply's token counts, estimated if not scripted.
func usage(rep Reply, body []byte) llm.Usage {
	if rep.Usage != nil {
		return *rep.Usage
	}
	out := len(rep.Text) + len(rep.Reasoning)
	for _, c := range rep.ToolCalls {
		out += len(c.Name) + len(c.Arguments)
	}
	return llm.Usage{PromptTokens: len(body)/4 + 1, CompletionTokens: out/4 + 1}
}

// chunks splits text into pieces of n runes.
func chunks(text string, n int) []string {
	var out []string
	for text != "" {
		i, count := 0, 0
		for i < len(text) && count < n {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
			count++
		}
		out = append(out, text[:i])
		text = text[i:]
	}
	return out
}

// sse writes server-sent events, flushing each.
type sse struct {
	w     http.ResponseWriter
	f     http.Flusher
	s     *Server
	ctx   context.Context
	delay time.Duration
	n     int
}

func newSSE(s *Server, w http.ResponseWriter, r *http.Request, delay time.Duration) *sse {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	if f != nil {
		f.Flush()
	}
	return &sse{w: w, f: f, s: s, ctx: r.Context(), delay: delay}
}

// send writes one event (event may be empty: data only); false if the
// client went away.
func (e *sse) send(event string, data any) bool {
	if e.n > 0 && !e.s.wait(e.ctx, e.delay) {
		return false
	}
	e.n++
	var b []byte
	switch d := data.(type) {
	case string:
		b = []byte(d)
	default:
		var err error
		if b, err = json.Marshal(d); err != nil {
			panic(err)
		}
	}
	var err error
	if event != "" {
		_, err = fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, b)
	} else {
		_, err = fmt.Fprintf(e.w, "data: %s\n\n", b)
	}
	if e.f != nil {
		e.f.Flush()
	}
	return err == nil && e.ctx.Err() == nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		secs := int((d + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		w.Header().Set("Retry-After-Ms", fmt.Sprint(d.Milliseconds()))
	}
}

func apiKey(h http.Header) string {
	if k := h.Get("X-Api-Key"); k != "" {
		return k
	}
	if a := h.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		return strings.TrimPrefix(a, "Bearer ")
	}
	return ""
}

// toolName reports whether name matches ^[a-zA-Z0-9_-]{1,64}$, the
// pattern of both vendors' tool names.
func toolName(name string) bool {
	return name != "" && len(name) <= 64 && idChars(name)
}

// idChars reports whether s has only the characters [a-zA-Z0-9_-] (so
// matches ^[a-zA-Z0-9_-]*$), without a regular expression's cost on
// every tool and tool call of every request.
func idChars(s string) bool {
	for i := range len(s) {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// bodyWording is how a vendor words the ways a request body can fail to
// parse. Each is a format of one argument.
type bodyWording struct {
	notObject string // the body is not a JSON object (the error)
	unknown   string // the body has fields the API does not know (their names)
	badType   string // a field has the wrong type (the error)
}

// parseBody decodes a JSON object body into in, as the real APIs do: it
// returns why the vendor refuses the body, in its words, or "".
//
// It decodes with opts, decodeOptions or more (the memoized unmarshalers
// of the vendor's types), in one pass that also collects the top-level
// members in does not name.
func parseBody[T any](body []byte, known map[string]bool, words bodyWording, in *T, opts jsonv2.Options) string {
	var top struct {
		In    *T                        `json:",inline"`
		Other map[string]jsontext.Value `json:",unknown"`
	}
	top.In = in
	err := jsonv2.Unmarshal(body, &top, opts)
	if err != nil {
		// Decoded again with decodeOptions alone: the error as the
		// decoder words it.
		*in, top.Other = *new(T), nil
		err = unmarshal(body, &top)
	}
	if err == nil {
		return unknownFields(slices.Collect(maps.Keys(top.Other)), known, words)
	}
	// The vendor reports a body that is not an object first, then unknown
	// fields, then the types of known ones, in encoding/json's words.
	var generic map[string]json.RawMessage
	if err := json.Unmarshal(body, &generic); err != nil {
		return fmt.Sprintf(words.notObject, err)
	}
	if r := unknownFields(slices.Collect(maps.Keys(generic)), known, words); r != "" {
		return r
	}
	if v1 := json.Unmarshal(body, in); v1 != nil {
		err = v1
	}
	return fmt.Sprintf(words.badType, err)
}

// unknownFields returns why the vendor rejects a body with these
// top-level keys, which allowed may not name, or "".
func unknownFields(keys []string, allowed map[string]bool, words bodyWording) string {
	var unknown []string
	for _, k := range keys {
		if !allowed[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	slices.Sort(unknown)
	return fmt.Sprintf(words.unknown, strings.Join(slices.Compact(unknown), ", "))
}
