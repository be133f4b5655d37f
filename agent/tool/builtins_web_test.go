package tool_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
)

// fetch runs fetch_webpage on url with web.
func fetch(t *testing.T, web *tool.Fetcher, url string) tool.Outcome {
	t.Helper()
	f, ok := tool.Lookup("fetch_webpage")
	if !ok {
		t.Fatal("fetch_webpage is not a built-in tool")
	}
	args, _ := json.Marshal(map[string]string{"url": url})
	return f.RunOutside(context.Background(), &tool.Outside{Web: web}, tool.Call{AgentID: "agent-1"}, args)
}

const page = `<!doctype html><html><head><title>Kelp forests</title><style>body{color:red}</style>
<script>alert("no")</script></head><body><nav><a href="/">Home</a></nav>
<h2>Where kelp grows</h2><p>Kelp grows in <b>cold</b>, nutrient-rich water. See <a href="https://example.org/kelp">the survey</a>.</p>
<ul><li>Giant kelp</li><li>Bull kelp</li></ul><pre>depth  = 30m
growth = 0.5m/day</pre></body></html>`

// Spec: with private addresses allowed, fetch_webpage fetches a page on
// loopback and answers its text as Markdown: title, headings, lists,
// links and code kept; scripts, styles and navigation left out.
func TestFetchWebpageAsMarkdown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, page)
		case "/plain":
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "just text")
		case "/image":
			w.Header().Set("Content-Type", "image/png")
			w.Write([]byte{0x89, 'P', 'N', 'G'})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	web := tool.NewFetcher(tool.FetchConfig{AllowPrivate: true})
	out := fetch(t, web, srv.URL+"/page")
	if !out.OK {
		t.Fatalf("fetch failed: %q", out.Result)
	}
	for _, want := range []string{"# Kelp forests", "## Where kelp grows", "Kelp grows in **cold**, nutrient-rich water.", "[the survey](https://example.org/kelp)", "- Giant kelp", "- Bull kelp", "```\ndepth  = 30m\ngrowth = 0.5m/day\n```"} {
		if !strings.Contains(out.Result, want) {
			t.Errorf("the page lacks %q:\n%s", want, out.Result)
		}
	}
	for _, banned := range []string{"alert", "color:red", "Home"} {
		if strings.Contains(out.Result, banned) {
			t.Errorf("the page shows %q:\n%s", banned, out.Result)
		}
	}
	if out := fetch(t, web, srv.URL+"/plain"); !out.OK || out.Result != "just text" {
		t.Errorf("plain text: %+v", out)
	}
	for path, want := range map[string]string{"/image": "image/png, not text", "/missing": "404 Not Found"} {
		if out := fetch(t, web, srv.URL+path); out.OK || !strings.Contains(out.Result, want) {
			t.Errorf("%s: %+v, want an error with %q", path, out, want)
		}
	}
}

// Spec: by default fetch_webpage refuses loopback, private and internal
// addresses, naming the flag that allows them; it refuses other schemes
// than http(s); an allowlist refuses every other host; and without a
// fetcher it says fetching is not enabled.
func TestFetchWebpageRefuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secret") }))
	defer srv.Close()
	closed := tool.NewFetcher(tool.FetchConfig{})
	for url, want := range map[string]string{
		srv.URL:                       "non-public IP not allowed: 127.0.0.1 (kelpie serve --fetch-allow-private-urls allows it)",
		"http://localhost:1/":         "blocked internal hostname: localhost",
		"http://10.1.2.3/":            "non-public IP not allowed: 10.1.2.3",
		"http://169.254.169.254/meta": "non-public IP not allowed",
		"file:///etc/passwd":          `invalid URL scheme "file"`,
		"ftp://example.org/":          `invalid URL scheme "ftp"`,
	} {
		if out := fetch(t, closed, url); out.OK || !strings.Contains(out.Result, want) {
			t.Errorf("%s: %+v, want an error with %q", url, out, want)
		}
	}
	listed := tool.NewFetcher(tool.FetchConfig{AllowPrivate: true, AllowHosts: []string{"example.org"}})
	if out := fetch(t, listed, srv.URL); out.OK || !strings.Contains(out.Result, "not among the hosts this server may fetch") {
		t.Errorf("allowlist: %+v", out)
	}
	if out := fetch(t, nil, srv.URL); out.OK || !strings.Contains(out.Result, "fetching web pages is not enabled") {
		t.Errorf("no fetcher: %+v", out)
	}
}

// Spec: fetch_webpage's limits: a page over MaxBytes is cut there and says
// so; more than MaxFetchRedirects redirects, and a page slower than the
// timeout, are errors.
func TestFetchWebpageLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, strings.Repeat("k", 5000))
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}))
	defer srv.Close()
	web := tool.NewFetcher(tool.FetchConfig{AllowPrivate: true, MaxBytes: 1000, Timeout: 300 * time.Millisecond})
	out := fetch(t, web, srv.URL+"/big")
	if !out.OK || !strings.HasPrefix(out.Result, strings.Repeat("k", 1000)+"\n\n[the page was longer than 1000 bytes") {
		t.Errorf("big page: %.80q... (%d chars)", out.Result, len(out.Result))
	}
	if out := fetch(t, web, srv.URL+"/loop"); out.OK || !strings.Contains(out.Result, fmt.Sprintf("more than %d redirects", tool.MaxFetchRedirects)) {
		t.Errorf("redirect loop: %+v", out)
	}
	if out := fetch(t, web, srv.URL+"/slow"); out.OK || !strings.Contains(out.Result, "Timeout") {
		t.Errorf("slow page: %+v", out)
	}
}
