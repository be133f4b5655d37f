package ui

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
	"github.com/kelpie/kelpie/llm/providers"
)

// server is the API and the inspector, as kelpie serve mounts them, over
// an in-memory store and the model double.
type server struct {
	t   testing.TB
	URL string
	svc *agent.Service
	llm *llmtest.Server
	// browser is a client that keeps cookies and does not follow
	// redirects, so tests see them.
	browser *http.Client
}

func newServer(t testing.TB, opts Options) *server {
	t.Helper()
	double := llmtest.NewServer(t)
	reg := llm.NewRegistry()
	reg.Register(providers.NewOpenAI(providers.OpenAIConfig{BaseURL: double.OpenAIBaseURL()}))
	svc, err := agent.New(agent.Config{Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini", LLM: reg})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Prefix, NewHandler(svc, opts))
	mux.Handle("/", api.NewHandler(svc, api.Options{APIKey: opts.APIKey}))
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		svc.Close(ctx)
	})
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &server{t: t, URL: hs.URL, svc: svc, llm: double, browser: browser}
}

// api calls the REST API with the key (if any) and decodes a 2xx answer
// into out.
func (s *server) api(method, path, key, body string, out any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: %v in %s", method, path, err, data)
		}
	}
}

// answer is what the inspector answered.
type answer struct {
	status   int
	location string
	body     string
}

func (s *server) get(path string) answer {
	s.t.Helper()
	resp, err := s.browser.Get(s.URL + path)
	if err != nil {
		s.t.Fatal(err)
	}
	return readPage(s.t, resp)
}

func (s *server) post(path string, form url.Values) answer {
	s.t.Helper()
	resp, err := s.browser.PostForm(s.URL+path, form)
	if err != nil {
		s.t.Fatal(err)
	}
	return readPage(s.t, resp)
}

func readPage(t testing.TB, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(data)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf is the form token of a answer.
func (p answer) csrf(t testing.TB) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no form token in the answer:\n%s", p.body)
	}
	return m[1]
}
