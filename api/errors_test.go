package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

const (
	missingAgent = "agent-00000000-0000-4000-8000-000000000000"
	missingBlock = "block-00000000-0000-4000-8000-000000000000"
)

func TestRouting(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	st := c.createAgent(`{"name": "r"}`)
	for _, p := range []string{"/v1/agents", "/v1/agents/", "/latest/agents", "/latest/agents/"} {
		var list []*letta.AgentState
		c.ok("GET", p, "", &list)
		if len(list) != 1 {
			t.Errorf("%s: %d agents", p, len(list))
		}
	}
	c.ok("POST", "/latest/agents/", `{}`, nil)
	c.ok("GET", "/latest/agents/"+st.ID+"/core-memory/blocks/", "", nil)
	if n := c.count("/latest/agents/count/"); n != 2 {
		t.Errorf("count %d", n)
	}

	for _, p := range []string{"/", "/v1", "/v2/agents", "/v1/nothing", "/v1/agents/" + st.ID + "/nothing",
		"/v1/agents//", "/v1//agents", "/v1/agents/../blocks", "/v1/agents/./x", "/latestagents", "/v1/health//"} {
		r := c.do("GET", p, "")
		if r.status != 404 || string(r.body) != `{"detail":"Not Found"}` {
			t.Errorf("GET %s: %d %s", p, r.status, r.body)
		}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/v1/agents", "GET, POST"},
		{"DELETE", "/v1/agents/", "GET, POST"},
		{"POST", "/v1/agents/" + st.ID, "GET, PATCH, DELETE"},
		{"POST", "/v1/health", "GET"},
		{"GET", "/v1/agents/" + st.ID + "/core-memory/blocks/attach/" + missingBlock, "PATCH"},
		{"POST", "/latest/blocks/count", "GET, PATCH, DELETE"},
	} {
		r := c.do(tc.method, tc.path, "")
		if r.status != 405 || string(r.body) != `{"detail":"Method Not Allowed"}` {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, r.status, r.body)
		}
		if got := r.header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
	}
}

func TestMalformedIDs(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	st := c.createAgent(`{"memory_blocks": [{"label": "human"}]}`)
	blk := st.Blocks[0].ID
	before := c.snapshot()

	badAgents := []string{"agent-123", "nope", "AGENT-" + st.ID[6:], strings.ToUpper(st.ID), st.ID + "0",
		"agent-00000000-0000-1000-8000-000000000000", blk, "%27quoted%22"}
	for _, bad := range badAgents {
		for _, rt := range []struct{ method, path, body string }{
			{"GET", "/v1/agents/" + bad, ""},
			{"PATCH", "/v1/agents/" + bad, `{"name": "x"}`},
			{"DELETE", "/v1/agents/" + bad, ""},
			{"GET", "/v1/agents/" + bad + "/core-memory/blocks", ""},
			{"GET", "/v1/agents/" + bad + "/core-memory/blocks/human", ""},
			{"PATCH", "/v1/agents/" + bad + "/core-memory/blocks/human", `{"value": "x"}`},
			{"PATCH", "/v1/agents/" + bad + "/core-memory/blocks/attach/" + blk, ""},
			{"PATCH", "/v1/agents/" + bad + "/core-memory/blocks/detach/" + blk, ""},
		} {
			r := c.do(rt.method, rt.path, rt.body)
			checkBadID(t, r, rt.method+" "+rt.path, "agent")
		}
	}
	for _, bad := range []string{"block-123", st.ID, "x", strings.ToUpper(blk)} {
		for _, rt := range []struct{ method, path, body string }{
			{"GET", "/v1/blocks/" + bad, ""},
			{"PATCH", "/v1/blocks/" + bad, `{"value": "x"}`},
			{"DELETE", "/v1/blocks/" + bad, ""},
			{"GET", "/v1/blocks/" + bad + "/agents", ""},
			{"PATCH", "/v1/agents/" + st.ID + "/core-memory/blocks/attach/" + bad, ""},
			{"PATCH", "/v1/agents/" + st.ID + "/core-memory/blocks/detach/" + bad, ""},
		} {
			r := c.do(rt.method, rt.path, rt.body)
			checkBadID(t, r, rt.method+" "+rt.path, "block")
		}
	}
	// Both ids bad: both reported, examples sorted.
	r := c.do("PATCH", "/v1/agents/x/core-memory/blocks/attach/y", "")
	var body validationBody
	json.Unmarshal(r.body, &body)
	if r.status != 422 || len(body.Examples) != 2 || !strings.HasPrefix(body.Examples[0], "agent-") ||
		!strings.Contains(body.Detail, "'agent_id'") || !strings.Contains(body.Detail, "'block_id'") {
		t.Errorf("two bad ids: %d %s", r.status, r.body)
	}
	if c.snapshot() != before {
		t.Error("requests with malformed ids changed something")
	}
}

func checkBadID(t *testing.T, r response, what, prefix string) {
	t.Helper()
	if r.status != 422 {
		t.Errorf("%s: status %d: %s", what, r.status, r.body)
		return
	}
	var raw map[string]any
	if err := json.Unmarshal(r.body, &raw); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("String should match pattern '%s-{uuid4}'", prefix)
	d, _ := raw["detail"].(string)
	ex, _ := raw["examples"].([]any)
	if raw["trace_id"] != "" || !strings.Contains(d, want) || !strings.Contains(d, "string_pattern_mismatch") ||
		len(ex) != 1 || ex[0] != prefix+"-123e4567-e89b-42d3-8456-426614174000" {
		t.Errorf("%s: body %s", what, r.body)
	}
}

func TestUnknownIDs(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	st := c.createAgent(`{"memory_blocks": [{"label": "human"}]}`)
	blk := st.Blocks[0].ID
	before := c.snapshot()
	if d := c.expect(404, "GET", "/v1/agents/"+missingAgent, ""); d != "Agent with ID "+missingAgent+" not found" {
		t.Errorf("GET agent: %q", d)
	}
	c.expect(404, "PATCH", "/v1/agents/"+missingAgent, `{"name": "x"}`)
	c.expect(404, "DELETE", "/v1/agents/"+missingAgent, "")
	c.expect(404, "GET", "/v1/agents/"+missingAgent+"/core-memory/blocks", "")
	c.expect(404, "GET", "/v1/agents/"+missingAgent+"/core-memory/blocks/human", "")
	c.expect(404, "PATCH", "/v1/agents/"+missingAgent+"/core-memory/blocks/human", `{"value": "x"}`)
	c.expect(404, "PATCH", "/v1/agents/"+missingAgent+"/core-memory/blocks/attach/"+blk, "")
	c.expect(404, "PATCH", "/v1/agents/"+missingAgent+"/core-memory/blocks/detach/"+blk, "")
	c.expect(404, "PATCH", "/v1/agents/"+st.ID+"/core-memory/blocks/attach/"+missingBlock, "")
	c.expect(404, "PATCH", "/v1/agents/"+st.ID+"/core-memory/blocks/detach/"+missingBlock, "")
	c.expect(404, "GET", "/v1/blocks/"+missingBlock, "")
	c.expect(404, "PATCH", "/v1/blocks/"+missingBlock, `{"value": "x"}`)
	c.expect(404, "DELETE", "/v1/blocks/"+missingBlock, "")
	c.expect(404, "POST", "/v1/agents", `{"block_ids": ["`+missingBlock+`"]}`)
	c.expect(404, "PATCH", "/v1/agents/"+st.ID, `{"block_ids": ["`+missingBlock+`"]}`)
	if c.snapshot() != before {
		t.Error("requests for missing things changed something")
	}
}

func TestBadBodies(t *testing.T) {
	c, _ := newTestServer(t, Options{MaxBodyBytes: 4096})
	st := c.createAgent(`{"name": "keep", "memory_blocks": [{"label": "human", "value": "h"}]}`)
	blk := st.Blocks[0].ID
	before := c.snapshot()

	big := `{"name": "x", "system": "` + strings.Repeat("a", 5000) + `"}`
	agentTypeErrs := []string{`{"tags": 5}`, `{"tags": [1, 2]}`, `{"name": 5}`, `{"metadata": []}`,
		`{"block_ids": "` + blk + `"}`, `{"context_window_limit": 1.5}`, `{"system": {}}`}
	blockTypeErrs := []string{`{"value": 5}`, `{"limit": "ten"}`, `{"limit": 1.5}`, `{"limit": 1e400}`,
		`{"limit": 99999999999999999999}`, `{"tags": 5}`, `{"read_only": "yes"}`, `{"metadata": []}`, `{"label": 5}`}
	mutations := []struct {
		method, path string
		typeErrs     []string
	}{
		{"POST", "/v1/agents", append(agentTypeErrs, `{"memory_blocks": {}}`, `{"memory_blocks": [{"label": 5}]}`)},
		{"PATCH", "/v1/agents/" + st.ID, agentTypeErrs},
		{"POST", "/v1/blocks", blockTypeErrs},
		{"PATCH", "/v1/blocks/" + blk, blockTypeErrs},
		{"PATCH", "/v1/agents/" + st.ID + "/core-memory/blocks/human", blockTypeErrs},
	}
	for _, m := range mutations {
		if d := c.expect(413, m.method, m.path, big); d != "Request body too large: limit is 4096 bytes" {
			t.Errorf("%s %s oversize: %q", m.method, m.path, d)
		}
		for _, body := range append([]string{
			"",                  // no body
			"   \n",             // only whitespace
			"null",              // JSON null
			"{",                 // truncated
			`{"name": "x",}`,    // trailing comma
			`{"name" "x"}`,      // missing colon
			`{"name": "x"} {}`,  // two values
			`{"name": "x"} xyz`, // trailing garbage
			"[]",                // not an object
			`"a string"`,
			"42",
			"\xff\xfe",
		}, m.typeErrs...) {
			r := c.do(m.method, m.path, body)
			if r.status != 422 {
				t.Errorf("%s %s %q: status %d: %s", m.method, m.path, body, r.status, r.body)
				continue
			}
			var vb validationBody
			if err := json.Unmarshal(r.body, &vb); err != nil || vb.Detail == "" {
				t.Errorf("%s %s %q: body %s", m.method, m.path, body, r.body)
			}
		}
	}
	// Type errors name the field.
	for _, tc := range []struct{ body, field string }{
		{`{"tags": 5}`, "'tags'"},
		{`{"name": ["x"]}`, "'name'"},
		{`{"memory_blocks": [{"label": 5}]}`, "'memory_blocks', 'label'"},
	} {
		if d := c.expect(422, "POST", "/v1/agents", tc.body); !strings.Contains(d, tc.field) {
			t.Errorf("%s: detail %q does not name %s", tc.body, d, tc.field)
		}
	}
	// Required labels are a request-shape error, as in Letta.
	if d := c.expect(422, "POST", "/v1/blocks", `{"value": "v"}`); !strings.Contains(d, "'missing'") {
		t.Errorf("block without label: %q", d)
	}
	if d := c.expect(422, "POST", "/v1/agents", `{"memory_blocks": [{"label": "a"}, {"value": "v"}, null]}`); !strings.Contains(d, "'memory_blocks', 1, 'label'") ||
		!strings.Contains(d, "'memory_blocks', 2, 'label'") {
		t.Errorf("memory block without label: %q", d)
	}
	// The service's own validation is a 400.
	for _, body := range []string{
		`{"name": "bad/name"}`,
		`{"model": "no-slash"}`,
		`{"agent_type": "robot"}`,
		`{"memory_blocks": [{"label": "a"}, {"label": "a"}]}`,
		`{"block_ids": ["not-a-block"]}`,
		`{"memory_blocks": [{"label": ""}]}`,
		`{"context_window_limit": -5}`,
	} {
		c.expect(400, "POST", "/v1/agents", body)
	}
	if c.snapshot() != before {
		t.Error("rejected bodies changed something")
	}
	// Unknown fields are ignored, even when every field is unknown.
	c.ok("PATCH", "/v1/agents/"+st.ID, `{"no_such_field": [1, {"a": null}]}`, nil)
	c.ok("PATCH", "/v1/blocks/"+blk, `{}`, nil)
}

// TestTooLargeToStore sends bodies under the body limit whose stored form
// is over the storage limits (Go's JSON encoding of '<' is six bytes).
func TestTooLargeToStore(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	c.createAgent(`{"memory_blocks": [{"label": "human"}]}`)
	before := c.snapshot()
	big := strings.Repeat("<", 3<<20)
	for _, body := range []string{
		`{"memory_blocks": [{"label": "a", "metadata": {"x": "` + big + `"}}]}`,
		`{"identity_ids": ["` + big + `"]}`,
	} {
		if r := c.do("POST", "/v1/agents", body); r.status != 400 && r.status != 413 {
			t.Errorf("status %d: %.200s", r.status, r.body)
		}
	}
	if c.snapshot() != before {
		t.Error("rejected creates changed something")
	}
}

func TestBadQueries(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	st := c.createAgent(`{}`)
	for _, p := range []string{
		"/v1/agents?limit=abc", "/v1/agents?limit=-1", "/v1/agents?limit=1001", "/v1/agents?limit=",
		"/v1/agents?limit=99999999999999999999", "/v1/agents?order=sideways", "/v1/agents?match_all_tags=perhaps",
		"/v1/agents?include=agent.blocks&include=agent.nothing", "/v1/agents/count?match_all_tags=2",
		"/v1/agents/" + st.ID + "?include=blocks",
		"/v1/agents/" + st.ID + "/core-memory/blocks?limit=x", "/v1/agents/" + st.ID + "/core-memory/blocks?order=1",
	} {
		c.expect(422, "GET", p, "")
	}
	// Several problems are reported together.
	d := c.expect(422, "GET", "/v1/agents?limit=x&order=y", "")
	if !strings.Contains(d, "'limit'") || !strings.Contains(d, "'order'") {
		t.Errorf("combined detail %q", d)
	}
	for _, p := range []string{"/v1/agents?limit=1000", "/v1/agents?limit=0", "/v1/agents?limit=+5",
		"/v1/agents?match_all_tags=YES&order=asc", "/v1/agents?include=agent.tools&include=agent.tags"} {
		c.ok("GET", p, "", nil)
	}
}

func TestAuth(t *testing.T) {
	c, _ := newTestServer(t, Options{APIKey: "s3cret"})
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"},
		{"X-BARE-PASSWORD", "s3cret"}, {"X-BARE-PASSWORD", "password wrong"}} {
		if d := c.expect(401, "GET", "/v1/agents", "", hdr...); d != "Unauthorized" {
			t.Errorf("%v: %q", hdr, d)
		}
	}
	c.expect(401, "POST", "/v1/agents", `{}`)
	c.expect(401, "GET", "/v1/nothing", "")
	for _, hdr := range [][]string{{"Authorization", "Bearer s3cret"}, {"Authorization", "bearer  s3cret"},
		{"X-BARE-PASSWORD", "password s3cret"}} {
		c.ok("GET", "/latest/agents/", "", nil, hdr...)
	}
	c.ok("POST", "/v1/agents", `{}`, nil, "Authorization", "Bearer s3cret")
	c.ok("GET", "/v1/health/", "", nil)
}

func TestPanicRecovery(t *testing.T) {
	var logs strings.Builder
	h := NewHandler(nil, Options{Logger: slogTo(&logs), Clock: clock.Real{}}) // a nil service panics on use
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/agents", ""},
		{"POST", "/v1/agents", `{}`},
		{"GET", "/v1/blocks/count", ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
		if rec.Code != 500 || rec.Body.String() != `{"detail":"An unknown error occurred"}` ||
			rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, rec.Code, rec.Body)
		}
	}
	if !strings.Contains(logs.String(), "panic") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("panic not logged with a stack: %s", logs.String())
	}
	// Routing, validation and health still work without touching the service.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/agents/bad-id", nil))
	if rec.Code != 422 {
		t.Errorf("bad id: %d", rec.Code)
	}
}

func TestServiceErrors(t *testing.T) {
	cases := []struct {
		err    error
		status int
		header string
		fault  bool
	}{
		{&letta.Error{Kind: letta.KindInvalid, Message: "m"}, 400, "", false},
		{fmt.Errorf("wrapped: %w", &letta.Error{Kind: letta.KindNotFound, Message: "m"}), 404, "", false},
		{&letta.Error{Kind: letta.KindConflict, Message: "m"}, 409, "X-Should-Retry", false},
		{fmt.Errorf("x: %w", actor.ErrBusy), 429, "Retry-After", false},
		{actor.ErrOverloaded, 429, "Retry-After", false},
		{actor.ErrClosed, 503, "X-Should-Retry", false},
		{kv.ErrConflict, 409, "X-Should-Retry", false},
		{fmt.Errorf("actor: gave up: %w", context.Canceled), 503, "X-Should-Retry", false},
		{context.DeadlineExceeded, 503, "X-Should-Retry", false},
		{kv.ErrTooLarge, 413, "", false},
		{kv.ErrCorrupt, 500, "", true},
		{fmt.Errorf("%w: postgres get: %w", kv.ErrUnavailable, context.DeadlineExceeded), 503, "X-Should-Retry", true},
		{errors.New("disk on fire"), 500, "", true},
	}
	for _, tc := range cases {
		he, fault := serviceError(tc.err)
		if he.status != tc.status || fault != tc.fault || (tc.header != "" && he.header.Get(tc.header) == "") {
			t.Errorf("%v: %d %v %v", tc.err, he.status, fault, he.header)
		}
	}
	if he, _ := serviceError(actor.ErrBusy); he.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q", he.header.Get("Retry-After"))
	}
}

func TestClosedService(t *testing.T) {
	c, svc := newTestServer(t, Options{})
	st := c.createAgent(`{}`)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := c.do("PATCH", "/v1/agents/"+st.ID, `{"name": "late"}`)
	if r.status != 503 || r.header.Get("X-Should-Retry") != "true" {
		t.Errorf("mutation after close: %d %s", r.status, r.body)
	}
	// Reads go to storage and keep working.
	if got := c.getAgent(st.ID); got.Name != st.Name {
		t.Errorf("read after close: %+v", got)
	}
}

func TestPyRepr(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{"plain", `'plain'`},
		{"it's", `"it's"`},
		{`it's "q"`, `'it\'s "q"'`},
		{"a\\b\n\t\x00\x7f", `'a\\b\n\t\x00\x7f'`},
		{"é😀", `'é😀'`},
		{"\xff", `'\xff'`},
		{"\u200b", `'\u200b'`},
		{pyTuple{"body"}, `('body',)`},
		{pyTuple{"query", "include", 1}, `('query', 'include', 1)`},
		{pyList{pyDict{{"a", nil}, {"b", true}}}, `[{'a': None, 'b': True}]`},
	}
	for _, tc := range cases {
		if got := pyRepr(tc.v); got != tc.want {
			t.Errorf("pyRepr(%#v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}
