package tool_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/kelpie/kelpie/agent/tool"
)

// exaDouble speaks Exa's search API on loopback: it records each request
// and answers with canned results (text, highlights and summary filled
// in only when the request's contents ask for them, as Exa does).
type exaDouble struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []map[string]any
	keys []string
}

func newExaDouble(t *testing.T) *exaDouble {
	d := &exaDouble{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req map[string]any
		if r.Method != http.MethodPost || r.URL.Path != "/search" || json.Unmarshal(body, &req) != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		d.mu.Lock()
		d.reqs, d.keys = append(d.reqs, req), append(d.keys, r.Header.Get("x-api-key"))
		d.mu.Unlock()
		if r.Header.Get("x-api-key") != "exa-good" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"error":"Invalid API key"}`)
			return
		}
		contents, _ := req["contents"].(map[string]any)
		result := map[string]any{"id": "https://kelp.example/forests", "title": "Kelp <forests>", "url": "https://kelp.example/forests",
			"publishedDate": "2026-03-01T00:00:00.000Z", "author": nil, "score": 0.9}
		if contents["text"] == true {
			result["text"] = "Kelp grows in cold water."
		}
		if contents["highlights"] != nil {
			result["highlights"] = []string{"Kelp grows fast.", "Up to 0.5 m a day."}
		}
		if contents["summary"] != nil {
			result["summary"] = "Kelp forests are underwater forests."
		}
		json.NewEncoder(w).Encode(map[string]any{"requestId": "r1", "results": []any{result}})
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *exaDouble) last() (map[string]any, string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reqs[len(d.reqs)-1], d.keys[len(d.keys)-1]
}

// search runs web_search with args.
func search(t *testing.T, s *tool.Searcher, env map[string]string, args string) tool.Outcome {
	t.Helper()
	ws, ok := tool.Lookup("web_search")
	if !ok {
		t.Fatal("web_search is not a built-in tool")
	}
	return ws.RunOutside(context.Background(), &tool.Outside{Search: s}, tool.Call{AgentID: "agent-1", Env: env}, json.RawMessage(args))
}

// Spec: web_search sends Exa the request Letta's Exa client sends
// (camelCase fields, contents with highlights and a summary, the key in
// x-api-key) and answers Letta's indented JSON, the page's text only when
// asked for.
func TestWebSearchSpeaksExa(t *testing.T) {
	exa := newExaDouble(t)
	s := tool.NewSearcher(tool.SearchConfig{APIKey: "exa-good", BaseURL: exa.URL})
	out := search(t, s, nil, `{"query":"kelp","num_results":3,"category":"news","include_domains":["kelp.example"],"start_published_date":"2026-01-01","user_location":"US"}`)
	want := `{
  "query": "kelp",
  "results": [
    {
      "title": "Kelp <forests>",
      "url": "https://kelp.example/forests",
      "published_date": "2026-03-01T00:00:00.000Z",
      "author": null,
      "highlights": [
        "Kelp grows fast.",
        "Up to 0.5 m a day."
      ],
      "summary": "Kelp forests are underwater forests."
    }
  ]
}`
	if !out.OK || out.Result != want {
		t.Errorf("web_search answered (ok %v):\n%s\nwant:\n%s", out.OK, out.Result, want)
	}
	req, key := exa.last()
	got, _ := json.Marshal(req)
	wantReq := `{"category":"news","contents":{"highlights":{"highlightsPerUrl":3,"numSentences":2,"query":"kelp"},"summary":{"query":"Summarize the key information from this content related to: kelp"},"text":false},"includeDomains":["kelp.example"],"numResults":3,"query":"kelp","startPublishedDate":"2026-01-01","type":"auto","userLocation":"US"}`
	if string(got) != wantReq || key != "exa-good" {
		t.Errorf("Exa was sent %s with key %q\nwant %s", got, key, wantReq)
	}

	out = search(t, s, nil, `{"query":"kelp","include_text":true}`)
	if !strings.Contains(out.Result, `"text": "Kelp grows in cold water."`) {
		t.Errorf("include_text: %s", out.Result)
	}
	if req, _ := exa.last(); req["numResults"] != 10.0 {
		t.Errorf("default num_results: sent %v", req["numResults"])
	}
	for args, want := range map[string]float64{`{"query":"k","num_results":0}`: 1, `{"query":"k","num_results":500}`: 100} {
		search(t, s, nil, args)
		if req, _ := exa.last(); req["numResults"] != want {
			t.Errorf("%s: sent numResults %v, want %v (Letta clamps to 1..100)", args, req["numResults"], want)
		}
	}
}

// Spec: the agent's EXA_API_KEY wins over the server's; without either,
// the call is an error saying so; a search Exa refuses, and an empty
// query, are results that say so (as Letta answers them), with nothing
// sent for the empty query.
func TestWebSearchKeysAndFailures(t *testing.T) {
	exa := newExaDouble(t)
	bad := tool.NewSearcher(tool.SearchConfig{APIKey: "exa-bad", BaseURL: exa.URL})
	if out := search(t, bad, map[string]string{"EXA_API_KEY": "exa-good"}, `{"query":"kelp"}`); !out.OK || !strings.Contains(out.Result, `"summary"`) {
		t.Errorf("with the agent's key: %+v", out)
	}
	if _, key := exa.last(); key != "exa-good" {
		t.Errorf("sent key %q, want the agent's", key)
	}
	out := search(t, bad, nil, `{"query":"kelp"}`)
	if !out.OK || !strings.HasPrefix(out.Result, `{"query": "kelp", "error": "Search failed: exa answered 401 Unauthorized: {\"error\":\"Invalid API key\"}`) {
		t.Errorf("refused search: %+v", out)
	}
	none := tool.NewSearcher(tool.SearchConfig{BaseURL: exa.URL})
	for _, s := range []*tool.Searcher{none, nil} {
		if out := search(t, s, nil, `{"query":"kelp"}`); out.OK || !strings.Contains(out.Result, "EXA_API_KEY is not set") {
			t.Errorf("no key: %+v", out)
		}
	}
	n := len(exa.reqs)
	if out := search(t, bad, nil, `{"query":"  "}`); !out.OK || out.Result != `{"error": "Query cannot be empty", "query": "  "}` {
		t.Errorf("empty query: %+v", out)
	}
	if len(exa.reqs) != n {
		t.Error("an empty query was sent to Exa")
	}
}
