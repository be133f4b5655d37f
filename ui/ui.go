// Package ui is Kelpie's web inspector, served at /ui: server-rendered HTML
// pages over the agent service for looking at agents (by name or tag), their
// memory blocks, conversations, messages with their tool calls and results,
// runs with their timing and token usage, and the server's live figures.
//
// Guarantees:
//   - A block edited here goes through the same service call as PATCH
//     /v1/agents/{id}/core-memory/blocks/{label}: the page says "saved" only
//     after the edit is committed, and a rejected edit changes nothing.
//   - Every page reads a bounded amount: listings are pages of at most
//     PageSize items fetched through the same indexes as the API, so a page
//     costs the same with 100 agents or 1,000,000.
//   - When an API key is set, every page but the login form and the
//     stylesheet needs it: as the API's Authorization header, or as the
//     session cookie the login form sets (derived from the key, never the
//     key itself).
//   - Every form that changes something carries a token only pages served
//     by this process hold, so another site cannot make a browser edit
//     memory (cross-site request forgery).
//   - Nothing is fetched from outside: the stylesheet is embedded.
package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent"
)

// Prefix is the path the inspector is served under.
const Prefix = "/ui/"

const (
	// PageSize is how many items a listing page shows.
	PageSize = 50
	// maxFormBytes bounds a form body: a block's value and the fields
	// around it.
	maxFormBytes = 16 << 20
	// sessionCookie names the cookie the login form sets.
	sessionCookie = "kelpie_ui_session"
	// sessionMaxAge is how long a login lasts.
	sessionMaxAge = 12 * time.Hour
	// statusRefresh is how often the status page reloads itself.
	statusRefresh = 5 * time.Second
)

// Figure is one live figure on the status page.
type Figure struct {
	Name  string
	Value string
}

// Options configure the inspector. The zero value serves it without a key
// and with the service's own figures.
type Options struct {
	// APIKey, when set, is required on every page (see the package
	// comment).
	APIKey string
	// Figures adds figures to the status page, such as those of the
	// metrics registry; nil adds none.
	Figures func(context.Context) []Figure
	// Logger receives errors the pages meet; nil means the service's.
	Logger *slog.Logger
}

//go:embed templates/*.html static/style.css
var files embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"ago":      ago,
	"when":     when,
	"view":     view,
	"duration": func(ns *int64) string { return nsDuration(ns) },
	"deref":    func(p *string) string { return deref(p) },
}).ParseFS(files, "templates/*.html"))

// handler serves the inspector.
type handler struct {
	svc  *agent.Service
	opts Options
	mux  *http.ServeMux
	// csrf is the token every changing form carries: an HMAC of a secret
	// drawn at start, so only pages this process served hold it.
	csrf string
	// session is the cookie value a login sets; "" without a key.
	session string
}

// NewHandler returns the inspector, to be served under Prefix.
func NewHandler(svc *agent.Service, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = svc.Logger()
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		// crypto/rand does not fail on the platforms Go supports.
		panic(fmt.Sprintf("ui: crypto/rand: %v", err))
	}
	h := &handler{svc: svc, opts: opts, mux: http.NewServeMux(), csrf: mac(secret, "csrf")}
	if opts.APIKey != "" {
		h.session = mac([]byte(opts.APIKey), "kelpie-ui-session")
	}
	h.routes()
	return h
}

func mac(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func (h *handler) routes() {
	h.mux.HandleFunc("GET /ui/static/style.css", h.style)
	h.mux.HandleFunc("GET /ui/login", h.loginForm)
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.mux.HandleFunc("POST /ui/logout", h.guard(h.logout))
	h.mux.HandleFunc("GET /ui/{$}", h.guard(h.agents))
	h.mux.HandleFunc("GET /ui/agents/{agent_id}", h.guard(h.agent))
	h.mux.HandleFunc("POST /ui/agents/{agent_id}/blocks/{label}", h.guard(h.editBlock))
	h.mux.HandleFunc("GET /ui/agents/{agent_id}/messages", h.guard(h.messages))
	h.mux.HandleFunc("GET /ui/runs/{run_id}", h.guard(h.run))
	h.mux.HandleFunc("GET /ui/status", h.guard(h.status))
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

// guard lets a request through if it is authenticated and, when it
// changes something, carries the form token.
func (h *handler) guard(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !h.authenticated(r) {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
				return
			}
			h.fail(w, r, http.StatusUnauthorized, errors.New("log in first"))
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				h.fail(w, r, http.StatusBadRequest, fmt.Errorf("reading the form: %w", err))
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(h.csrf)) != 1 {
				h.fail(w, r, http.StatusForbidden, errors.New("this form is not from this server's pages (or the server restarted since): reload the page and try again"))
				return
			}
		}
		next(w, r)
	}
}

func (h *handler) authenticated(r *http.Request) bool {
	if h.session == "" {
		return true
	}
	if c, err := r.Cookie(sessionCookie); err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(h.session)) == 1 {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(h.opts.APIKey)) == 1
}

func (h *handler) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=3600")
	http.ServeFileFS(w, r, files, "static/style.css")
}

func (h *handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "login.html", page{Title: "Log in", Keyed: h.session != ""})
}

func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		h.fail(w, r, http.StatusBadRequest, fmt.Errorf("reading the form: %w", err))
		return
	}
	if h.session == "" {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("key")), []byte(h.opts.APIKey)) != 1 {
		h.opts.Logger.WarnContext(r.Context(), "ui: failed login", "remote", r.RemoteAddr)
		h.render(w, r, http.StatusUnauthorized, "login.html", page{Title: "Log in", Keyed: true, Error: "That is not the server's API key."})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: h.session, Path: Prefix, MaxAge: int(sessionMaxAge / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: Prefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// page is what every template gets.
type page struct {
	Title string
	// Keyed is whether the server has an API key (a logout button).
	Keyed bool
	CSRF  string
	Error string
	// Notice is a one-line confirmation, such as "saved".
	Notice string
	// Refresh, when above 0, reloads the page every Refresh seconds.
	Refresh int
	// Now is the service's time, for "3m0s ago".
	Now  time.Time
	Data any
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.CSRF, p.Keyed, p.Now = h.csrf, h.session != "", h.svc.Clock().Now()
	var b strings.Builder
	if err := pages.ExecuteTemplate(&b, name, p); err != nil {
		h.opts.Logger.ErrorContext(r.Context(), "ui: rendering a page", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail answers a page saying what went wrong.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		h.opts.Logger.ErrorContext(r.Context(), "ui: a page failed", "path", r.URL.Path, "err", err)
	}
	h.render(w, r, status, "error.html", page{Title: http.StatusText(status), Error: err.Error()})
}

// failService answers a service error with the status the API gives it.
func (h *handler) failService(w http.ResponseWriter, r *http.Request, err error) {
	h.fail(w, r, agent.KindOf(err).HTTPStatus(), err)
}
