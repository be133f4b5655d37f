package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"path"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/clock"
)

// DefaultMaxBodyBytes bounds a request body when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 8 << 20

// MaxIdempotencyKeyBytes bounds the Idempotency-Key header.
const MaxIdempotencyKeyBytes = 255

// DefaultWriteTimeout bounds each write of a response when
// Options.WriteTimeout is 0.
const DefaultWriteTimeout = 60 * time.Second

// LettaAPIVersion is the Letta server release whose API Kelpie serves. The
// health route reports it as "version": clients compare it with the Letta
// release they need (letta-code warns below 0.16.6).
const LettaAPIVersion = "0.16.8"

// Options configures the handler.
type Options struct {
	// Logger receives request logs (Debug) and faults (Error); nil means
	// the service's.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// KelpieVersion is Kelpie's own version, reported by the health route
	// as "kelpie_version" (left out when empty).
	KelpieVersion string
	// APIKey, when set, is required on every route but health, as
	// "Authorization: Bearer <key>" or "X-BARE-PASSWORD: password <key>",
	// or as the password of basic auth (how git sends it).
	APIKey string
	// PingInterval is how often streams send keep-alive pings; 0 means
	// DefaultPingInterval.
	PingInterval time.Duration
	// WriteTimeout bounds each write of a response: a client that stops
	// reading is cut off after it. It does not bound how long a response
	// takes to be ready (a turn) or how long a stream lasts. 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Clock times pings and requests; nil means the service's.
	Clock clock.Clock
	// Metrics, if set, is served at GET /metrics, behind the API key like
	// every route but health.
	Metrics http.Handler
	// Observe, if set, is told about each request once it is answered
	// (for metrics and traces: r's context is the request's). It must be
	// quick and safe for concurrent use.
	Observe func(r *http.Request, a Answered)
	// Cluster, if set, makes this node one of a cluster: requests that
	// change an agent another node owns are forwarded to it, and GET
	// /v1/cluster lists the nodes.
	Cluster Cluster
	// ForwardTransport carries forwarded requests to their owner; nil
	// means HTTP over TCP (the simulator passes an in-memory network).
	ForwardTransport http.RoundTripper
	// ForwardResponseTimeout bounds how long a forwarded request waits for
	// the owner's answer to begin (over TCP); 0 means
	// DefaultForwardResponseTimeout.
	ForwardResponseTimeout time.Duration
}

// Answered describes a request that was answered, for Options.Observe.
type Answered struct {
	Method string
	// Route is the pattern of the route that served the request, such as
	// /v1/agents/{agent_id}, so that requests group by route, not by id;
	// "" when no route matched.
	Route    string
	Status   int
	Duration time.Duration
	// ErrorKind is the kind of error answered (see errorKind); "" for a
	// success.
	ErrorKind string
}

// NewHandler returns the REST API over svc.
func NewHandler(svc *agent.Service, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = svc.Logger()
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Clock == nil {
		opts.Clock = svc.Clock()
	}
	s := &server{
		svc:     svc,
		opts:    opts,
		log:     opts.Logger,
		clock:   opts.Clock,
		mux:     http.NewServeMux(),
		paths:   http.NewServeMux(),
		known:   map[string]bool{},
		started: opts.Clock.Now().UTC().Truncate(time.Second),
	}
	if opts.Cluster != nil {
		s.forwarder = s.newForwarder()
	}
	s.routes()
	return s
}

type server struct {
	svc   *agent.Service
	opts  Options
	log   *slog.Logger
	clock clock.Clock
	// mux routes by method and path; paths holds the same paths for any
	// method, to tell 405 from 404.
	mux, paths *http.ServeMux
	known      map[string]bool
	started    time.Time // when the handler was made
	forwarder  http.Handler
}

// handlerFunc handles one route: it returns the value to send with 200, or
// an error.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (any, error)

func (s *server) handle(method, pattern string, h handlerFunc) {
	s.mux.HandleFunc(method+" "+pattern, func(w http.ResponseWriter, r *http.Request) {
		if s.forward(w, r, method) {
			return
		}
		if method != http.MethodGet {
			if key, ok := idempotencyKey(r); ok {
				if len(key) > MaxIdempotencyKeyBytes {
					s.writeError(w, r, validationError(pyErr{
						typ: "string_too_long", loc: pyTuple{"header", "idempotency-key"},
						msg:   "String should have at most 255 characters",
						input: key, ctx: pyDict{{"max_length", MaxIdempotencyKeyBytes}},
					}))
					return
				}
				// The service scopes keys by operation; scoping them by
				// method and path too keeps one key from answering for
				// a different agent or block.
				scoped := method + " " + r.URL.Path + "\x00" + key
				r = r.WithContext(agent.WithIdempotencyKey(r.Context(), scoped))
			}
		}
		v, err := h(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if _, ok := v.(written); ok {
			return
		}
		s.writeJSON(w, r, http.StatusOK, v)
	})
	if !s.known[pattern] {
		s.known[pattern] = true
		s.paths.Handle(pattern, http.NotFoundHandler())
	}
}

func idempotencyKey(r *http.Request) (string, bool) {
	vs := r.Header.Values("Idempotency-Key")
	if len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
		return "", false
	}
	return strings.TrimSpace(vs[0]), true
}

// healthBody is Letta's Health plus the version of Kelpie itself.
type healthBody struct {
	Version       string `json:"version"`
	Status        string `json:"status"`
	KelpieVersion string `json:"kelpie_version,omitempty"`
}

func (s *server) health(http.ResponseWriter, *http.Request) (any, error) {
	return healthBody{Version: LettaAPIVersion, Status: "ok", KelpieVersion: s.opts.KelpieVersion}, nil
}

// methods probed for the Allow header of a 405.
var methods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.clock.Now()
	r = withRequestID(w, r)
	rw := &responseWriter{ResponseWriter: w}
	defer func() {
		d := s.clock.Now().Sub(start)
		s.log.DebugContext(r.Context(), "http request", "method", r.Method, "path", r.URL.Path, "status", rw.status,
			"bytes", rw.bytes, "duration", d)
		if s.opts.Observe != nil {
			s.opts.Observe(r, Answered{Method: r.Method, Route: rw.route, Status: rw.status, Duration: d, ErrorKind: rw.errorKind})
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			rw.errorKind = "panic"
			s.log.ErrorContext(r.Context(), "api: panic serving request", "method", r.Method, "path", r.URL.Path,
				"panic", p, "stack", string(debug.Stack()))
			if !rw.wroteHeader {
				s.writeJSON(rw, r, http.StatusInternalServerError, detail{unknownErrorDetail})
			}
		}
	}()

	r = normalize(r)
	if p := r.URL.EscapedPath(); cleanPath(p) != p {
		// ServeMux would answer with a redirect; no route has such a path.
		s.writeError(rw, r, errorf(http.StatusNotFound, "Not Found"))
		return
	}
	if r.URL.Path != "/v1/health" && !s.authorized(r) {
		s.log.WarnContext(r.Context(), "api: unauthorized request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		// A client without the key gets nothing more on this connection.
		e := errorf(http.StatusUnauthorized, "Unauthorized").withHeader("Connection", "close")
		if strings.HasPrefix(r.URL.Path, "/v1/git/") {
			// Git asks its credential helpers only when challenged.
			e = e.withHeader("WWW-Authenticate", `Basic realm="kelpie"`)
		}
		s.writeError(rw, r, e)
		return
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		if _, p := s.paths.Handler(r); p == "" {
			s.writeError(rw, r, errorf(http.StatusNotFound, "Not Found"))
			return
		}
		var allow []string
		for _, m := range methods {
			probe := r.Clone(context.Background())
			probe.Method = m
			if _, p := s.mux.Handler(probe); p != "" {
				allow = append(allow, m)
			}
		}
		s.writeError(rw, r, errorf(http.StatusMethodNotAllowed, "Method Not Allowed").
			withHeader("Allow", strings.Join(allow, ", ")))
		return
	}
	_, rw.route, _ = strings.Cut(pattern, " ") // the pattern without its method
	s.mux.ServeHTTP(rw, r)
}

// normalize maps /latest to /v1 and strips one trailing slash.
func normalize(r *http.Request) *http.Request {
	fix := func(p string) string {
		if p == "/latest" || strings.HasPrefix(p, "/latest/") {
			p = "/v1" + p[len("/latest"):]
		}
		if len(p) > 1 && strings.HasSuffix(p, "/") {
			p = p[:len(p)-1]
		}
		return p
	}
	p, raw := fix(r.URL.Path), fix(r.URL.RawPath)
	if p == r.URL.Path && raw == r.URL.RawPath {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.Path, u.RawPath = p, raw
	r2.URL = &u
	return r2
}

// cleanPath is the canonical form of p that ServeMux redirects to.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

func (s *server) authorized(r *http.Request) bool {
	key := s.opts.APIKey
	if key == "" {
		return true
	}
	match := func(v, scheme string) bool {
		v = strings.TrimSpace(v)
		if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
			return false
		}
		got := strings.TrimSpace(v[len(scheme):])
		return subtle.ConstantTimeCompare([]byte(got), []byte(key)) == 1
	}
	if _, password, ok := r.BasicAuth(); ok {
		// Git clients (letta-code's memory sync among them) send the key
		// as a basic-auth password; the user name is anything.
		return subtle.ConstantTimeCompare([]byte(password), []byte(key)) == 1
	}
	return match(r.Header.Get("Authorization"), "Bearer ") ||
		match(r.Header.Get("X-BARE-PASSWORD"), "password ")
}

// writeJSON sends v as JSON with status, the answer to r. A list is sent
// item by item (writeList).
func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	_, custom := v.(json.Marshaler)
	if items := reflect.ValueOf(v); !custom && items.Kind() == reflect.Slice && !items.IsNil() && items.Type().Elem().Kind() != reflect.Uint8 {
		s.writeList(w, r, status, items)
		return
	}
	var body []byte
	if e, ok := v.(encoded); ok {
		body = e.JSON()
	} else {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			s.log.ErrorContext(r.Context(), "api: encoding response", "method", r.Method, "path", r.URL.Path, "error", err)
			buf.Reset()
			buf.WriteString(`{"detail":"` + unknownErrorDetail + `"}`)
			status = http.StatusInternalServerError
		}
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	w.Header().Set("Content-Type", "application/json")
	// With its length known, net/http sends the body as it is: a chunked
	// answer (what a body over 2 KB without it gets) costs a write of its
	// own for the last chunk and the client a parse of the chunks.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	s.writeDeadline(w)
	w.Write(body)
}

// writeList sends a list as a JSON array, encoding and writing one item at
// a time: a request holds one item's encoding, not the whole answer's
// (a listing may hold agent.MaxResponseBytes of content, and its encoding
// more). An item that does not encode, once the answer has begun, aborts
// the answer: the client sees a cut connection, never a wrong list.
func (s *server) writeList(w http.ResponseWriter, r *http.Request, status int, items reflect.Value) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	s.writeDeadline(w)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('[')
	for i := range items.Len() {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := enc.Encode(items.Index(i).Interface()); err != nil {
			s.log.ErrorContext(r.Context(), "api: encoding response", "method", r.Method, "path", r.URL.Path, "item", i, "error", err)
			panic(http.ErrAbortHandler)
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		if _, err := w.Write(buf.Bytes()); err != nil {
			return // the client is gone
		}
		buf.Reset()
	}
	buf.WriteByte(']')
	w.Write(buf.Bytes())
}

// encoded is a response the service has encoded already (agent.Encoded):
// it is written as it is.
type encoded interface{ JSON() []byte }

// writeDeadline gives the next write to w WriteTimeout to complete. A
// socket's deadline is in wall time, whatever clock times the requests. (A
// writer without deadlines, as in tests, ignores it.)
func (s *server) writeDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(clock.Real{}.Now().Add(s.opts.WriteTimeout))
}

// writeError sends err's response, logging real faults.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	he, fault := serviceError(err)
	if fault {
		s.log.ErrorContext(r.Context(), "api: request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if rw, ok := w.(*responseWriter); ok {
		rw.errorKind = errorKind(err)
	}
	for k, vs := range he.header {
		w.Header()[k] = vs
	}
	s.writeJSON(w, r, he.status, he.body)
}

// responseWriter records what was sent, for the request log, the
// observer and the panic handler.
type responseWriter struct {
	http.ResponseWriter
	status      int
	bytes       int
	wroteHeader bool
	route       string // the pattern of the route serving the request
	errorKind   string // set by writeError
}

func (w *responseWriter) WriteHeader(status int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Flush lets future streaming routes flush through the wrapper.
func (w *responseWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap serves http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
