package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// serve runs one request against h and checks the invariants every
// response keeps: never a 5xx, always a JSON body with a JSON content type.
func serve(t *testing.T, h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("%s %q: status %d: %s", req.Method, req.URL.Path, rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %q: Content-Type %q", req.Method, req.URL.Path, ct)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("%s %q: body is not JSON: %q", req.Method, req.URL.Path, rec.Body)
	}
	return rec
}

func newRequest(method, path string, body []byte) *http.Request {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	req.URL.Path, req.URL.RawPath = path, ""
	return req
}

// fuzzHandler is one handler over one service for a whole fuzz run, with
// a small body limit so that oversized inputs are cheap.
func fuzzHandler(t testing.TB) (http.Handler, *agent.Service) {
	svc := newService(t)
	return NewHandler(svc, Options{Logger: quietLogger(), MaxBodyBytes: 64 << 10}), svc
}

func FuzzCreateAgentBody(f *testing.F) {
	for _, s := range []string{
		fullCreate,
		`{}`,
		`{"name": "x", "memory_blocks": [{"label": "human", "value": "v", "limit": 1}]}`,
		`{"memory_blocks": [{"label": "a"}, {"label": "a"}]}`,
		`{"block_ids": ["block-00000000-0000-4000-8000-000000000000"]}`,
		`{"model": "openai/", "embedding": "x"}`,
		`{"tags": [null, "a"], "metadata": {"a": [1e308, -0, "\u0000"]}}`,
		`{"metadata": {"0": [1e1000]}}`,
		`{"llm_config": {"model": "m", "context_window": -1}, "context_window_limit": 0}`,
		`null`, `[]`, `{"name": "a"} {}`, `{"name":`, "",
	} {
		f.Add([]byte(s))
	}
	h, _ := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(t, h, newRequest("POST", "/v1/agents", body))
		if rec.Code == 200 {
			var st letta.AgentState
			if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || !letta.ValidID("agent", st.ID) {
				t.Fatalf("created agent %s: %v", rec.Body, err)
			}
		}
	})
}

func FuzzBlockUpdateBody(f *testing.F) {
	for _, s := range []string{
		`{"value": "new"}`,
		`{"value": "this value is far longer than its limit", "limit": 5}`,
		`{"limit": 0}`, `{"limit": -1}`, `{"limit": 2000000}`,
		`{"label": "", "tags": ["x"]}`, `{"label": "persona"}`,
		`{"metadata": {"k": {"deep": [1, 2, {"x": null}]}}, "read_only": true, "hidden": false}`,
		`{"value": null, "is_template": true, "template_name": "t", "project_id": "p"}`,
		`{"value": "\ud800"}`, `{"value": 5}`, `null`, `{`, "",
	} {
		f.Add([]byte(s))
	}
	h, svc := fuzzHandler(f)
	label, other, value, limit := "human", "persona", "value", 100
	st, err := svc.Agents.Create(f.Context(), letta.CreateAgentRequest{MemoryBlocks: []letta.CreateBlock{
		{Label: &label, Value: &value, Limit: &limit},
		{Label: &other},
	}})
	if err != nil {
		f.Fatal(err)
	}
	blockID := st.Blocks[0].ID
	empty, noTags, meta := "", []string{}, map[string]any{}
	reset := letta.BlockUpdate{Value: &value, Limit: &limit, Label: &label, Description: &empty, Metadata: &meta,
		ReadOnly: new(bool), Hidden: new(bool), ProjectID: &empty, IsTemplate: new(bool), TemplateName: &empty, Tags: &noTags}

	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/v1/blocks/" + blockID, "/v1/agents/" + st.ID + "/core-memory/blocks/human"} {
			if _, err := svc.Blocks.Update(t.Context(), blockID, reset); err != nil {
				t.Fatal(err)
			}
			before := serve(t, h, newRequest("GET", "/v1/blocks/"+blockID, nil)).Body.String()
			rec := serve(t, h, newRequest("PATCH", path, body))
			after := serve(t, h, newRequest("GET", "/v1/blocks/"+blockID, nil)).Body.String()
			if rec.Code != 200 && after != before {
				t.Fatalf("PATCH %s answered %d but changed the block:\n%s\n%s", path, rec.Code, before, after)
			}
			if rec.Code == 200 {
				var b letta.Block
				if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.ID != blockID {
					t.Fatalf("PATCH %s: %s", path, rec.Body)
				}
			}
		}
	})
}

// pathTemplates are the routes FuzzAgentPath fills in; each %s takes a
// fuzzed segment.
var pathTemplates = []string{
	"/v1/agents/%s",
	"/v1/agents/%s/core-memory/blocks",
	"/v1/agents/%s/core-memory/blocks/%s",
	"/v1/agents/%s/core-memory/blocks/attach/%s",
	"/v1/agents/%s/core-memory/blocks/detach/%s",
	"/v1/blocks/%s",
	"/v1/blocks/%s/agents",
	"/latest/agents/%s/core-memory/blocks/%s/",
	"/v1/%s/%s",
}

var fuzzMethods = []string{"GET", "PATCH", "DELETE", "POST", "PUT"}

func FuzzAgentPath(f *testing.F) {
	h, svc := fuzzHandler(f)
	label := "human"
	st, err := svc.Agents.Create(f.Context(), letta.CreateAgentRequest{MemoryBlocks: []letta.CreateBlock{{Label: &label}}})
	if err != nil {
		f.Fatal(err)
	}
	blk := st.Blocks[0].ID
	for _, s := range []struct {
		op     uint8
		a, b   string
		method uint8
	}{
		{0, st.ID, "", 0}, {2, st.ID, "human", 0}, {2, st.ID, "human", 1}, {3, st.ID, blk, 1},
		{4, st.ID, blk, 1}, {5, blk, "", 0}, {6, blk, "limit=5&order=asc", 0}, {7, st.ID, "..", 0},
		{0, "agent-123", "", 2}, {2, st.ID, "a/b", 0}, {5, "block-%zz", "", 1}, {8, "agents", "count", 0},
		{1, st.ID, "limit=-1&include=agent.blocks", 0}, {0, "", "", 3}, {2, "\x00", "\xff", 4},
	} {
		f.Add(s.op, s.a, s.b, s.method)
	}
	f.Fuzz(func(t *testing.T, op uint8, a, b string, method uint8) {
		tmpl := pathTemplates[int(op)%len(pathTemplates)]
		p := strings.Replace(tmpl, "%s", a, 1)
		p = strings.Replace(p, "%s", b, 1)
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		var body []byte
		if m == "PATCH" || m == "POST" {
			body = []byte(`{}`)
		}
		req := newRequest(m, p, body)
		if strings.Count(tmpl, "%s") == 1 {
			req.URL.RawQuery = b // the second input doubles as a query string
		}
		serve(t, h, req)
	})
}
