package tool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kelpie/kelpie/internal/netguard"
)

// Limits of fetch_webpage, each with its unit.
const (
	DefaultFetchTimeout = 30 * time.Second // the whole fetch, redirects and body included
	DefaultFetchBytes   = 2 << 20          // of a page's body; more is cut off
	MaxFetchRedirects   = 5                // redirects followed; more is an error
	maxFetchURLChars    = 2048
)

// FetchConfig configures fetch_webpage. Zero fields take the defaults.
type FetchConfig struct {
	// AllowPrivate lets it fetch loopback, private and internal addresses
	// (kelpie serve --fetch-allow-private-urls).
	AllowPrivate bool
	// AllowHosts, when not empty, are the only hosts it may fetch (a host
	// or any of its subdomains).
	AllowHosts []string
	Timeout    time.Duration
	MaxBytes   int64
}

// Fetcher fetches web pages for fetch_webpage, keeping off internal
// addresses (package netguard) and within its limits.
type Fetcher struct {
	cfg    FetchConfig
	guard  netguard.Guard
	client *http.Client
}

// NewFetcher returns a Fetcher.
func NewFetcher(cfg FetchConfig) *Fetcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultFetchTimeout
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultFetchBytes
	}
	f := &Fetcher{cfg: cfg, guard: netguard.Guard{AllowPrivate: cfg.AllowPrivate, Flag: "kelpie serve --fetch-allow-private-urls"}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // a proxy would reach what the dialer refuses
	tr.DialContext = f.guard.Dialer().DialContext
	f.client = &http.Client{Transport: tr, Timeout: cfg.Timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) > MaxFetchRedirects {
			return fmt.Errorf("more than %d redirects", MaxFetchRedirects)
		}
		return f.check(req.URL.String())
	}}
	return f
}

// check refuses a URL the fetcher may not reach.
func (f *Fetcher) check(raw string) error {
	u, err := f.guard.Check("url", raw)
	if err != nil {
		return err
	}
	if len(f.cfg.AllowHosts) > 0 && !slices.ContainsFunc(f.cfg.AllowHosts, func(h string) bool { return hostWithin(u, h) }) {
		return fmt.Errorf("%s is not among the hosts this server may fetch (kelpie serve --fetch-allow-hosts)", u.Hostname())
	}
	return nil
}

// hostWithin reports whether u's host is host or one of its subdomains.
func hostWithin(u *url.URL, host string) bool {
	h, host := strings.ToLower(u.Hostname()), strings.ToLower(strings.TrimPrefix(host, "."))
	return h == host || strings.HasSuffix(h, "."+host)
}

// Fetch fetches a page and returns its text: HTML as Markdown, other text
// as it is.
func (f *Fetcher) Fetch(ctx context.Context, raw string) (string, error) {
	if err := f.check(raw); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "Mozilla/5.0 (compatible; Kelpie fetch_webpage)")
	req.Header.Set("Accept", "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5")
	resp, err := f.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", fmt.Errorf("the server answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("reading the page: %w", err)
	}
	cut := int64(len(body)) > f.cfg.MaxBytes
	if cut {
		body = body[:f.cfg.MaxBytes]
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var text string
	switch {
	case mt == "text/html" || mt == "application/xhtml+xml" || mt == "" && looksLikeHTML(body):
		text = HTMLToMarkdown(string(body))
	case strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") || mt == "application/xml":
		text = strings.ToValidUTF8(string(body), "\uFFFD")
	default:
		return "", fmt.Errorf("the page is %s, not text", mt)
	}
	if cut {
		text += fmt.Sprintf("\n\n[the page was longer than %d bytes: the rest was not read]", f.cfg.MaxBytes)
	}
	return text, nil
}

func looksLikeHTML(b []byte) bool {
	head := strings.ToLower(string(b[:min(len(b), 512)]))
	return utf8.Valid(b[:min(len(b), 512)]) && (strings.Contains(head, "<html") || strings.Contains(head, "<!doctype html"))
}

var fetchWebpage = defineOutside("fetch_webpage", "letta_builtin",
	"Fetch a web page and return its content as Markdown (HTML converted) or plain text.",
	`{"type":"object","properties":{"url":{"type":"string","description":"The http:// or https:// URL of the page to fetch."}},"required":["url"]}`,
	func(ctx context.Context, x *Outside, _ Call, a struct {
		URL string `json:"url"`
	}) Outcome {
		if x.Web == nil {
			return Failed("fetch_webpage is not available on this server: fetching web pages is not enabled")
		}
		if len(a.URL) > maxFetchURLChars {
			return Failed("the url is longer than %d characters", maxFetchURLChars)
		}
		if u, err := url.Parse(a.URL); err == nil && u.Scheme != "http" && u.Scheme != "https" {
			return Failed("invalid URL scheme %q: only http and https URLs can be fetched, not local files or other protocols", u.Scheme)
		}
		text, err := x.Web.Fetch(ctx, a.URL)
		if err != nil {
			return Failed("fetching %s: %v", a.URL, err)
		}
		return Outcome{Result: text, OK: true}
	})
