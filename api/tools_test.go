package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
)

// toolBody is a tool create body with an explicit JSON schema (so that
// no schema derivation is needed) for a function called name.
func toolBody(name, extra string) string {
	src := fmt.Sprintf("def %s(x: int):\n    \"\"\"Doubles.\n\n    Args:\n        x (int): A number.\n    \"\"\"\n    return x * 2\n", name)
	js := fmt.Sprintf(`{"name":%q,"description":"Doubles.","parameters":{"type":"object","properties":{"x":{"type":"integer","description":"A number."}},"required":["x"]}}`, name)
	srcJSON, _ := json.Marshal(src)
	body := fmt.Sprintf(`{"source_code":%s,"json_schema":%s`, srcJSON, js)
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

func (c *client) createTool(body string) *letta.Tool {
	c.t.Helper()
	var tl letta.Tool
	c.ok("POST", "/v1/tools", body, &tl)
	return &tl
}

func toolNames(ts []letta.Tool) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return out
}

// Spec: a tool is created from its source and schema, read back, changed
// and deleted, each write committed before it is answered; POST and PUT
// both upsert by name, as Letta does.
func TestToolCRUD(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	builtins := c.count("/v1/tools/count")
	tl := c.createTool(toolBody("double", `"tags":["math"],"return_char_limit":300`))
	if !letta.ValidID("tool", tl.ID) || tl.Name != "double" || tl.ToolType != "custom" || deref(tl.Description) != "Doubles." ||
		tl.ReturnCharLimit != 300 || !slices.Equal(tl.Tags, []string{"math"}) || deref(tl.SourceType) != "python" {
		t.Fatalf("created %+v", tl)
	}
	var got letta.Tool
	c.ok("GET", "/v1/tools/"+tl.ID, "", &got)
	if got.ID != tl.ID || got.JSONSchema["name"] != "double" || deref(got.SourceCode) == "" {
		t.Errorf("get %+v", got)
	}
	if n := c.count("/v1/tools/count"); n != builtins+1 {
		t.Errorf("count %d, want %d", n, builtins+1)
	}
	// Upsert by name: the same tool, updated.
	var up letta.Tool
	c.ok("PUT", "/v1/tools", toolBody("double", `"description":"Twice."`), &up)
	if up.ID != tl.ID || deref(up.Description) != "Twice." || !slices.Equal(up.Tags, []string{"math"}) {
		t.Errorf("upsert %+v, want id %s and description Twice.", up, tl.ID)
	}
	again := c.createTool(toolBody("double", ""))
	if again.ID != tl.ID {
		t.Errorf("POST of an existing name made tool %s, want the update of %s", again.ID, tl.ID)
	}
	// PATCH.
	var patched letta.Tool
	c.ok("PATCH", "/v1/tools/"+tl.ID, `{"tags":["sdk_test"],"return_char_limit":10,"metadata_":{"k":1}}`, &patched)
	if !slices.Equal(patched.Tags, []string{"sdk_test"}) || patched.ReturnCharLimit != 10 || patched.Metadata["k"] != float64(1) {
		t.Errorf("patched %+v", patched)
	}
	other := c.createTool(toolBody("triple", ""))
	renamed := strings.Replace(toolBody("double", ""), `"name":"double"`, `"name":"triple"`, 1)
	var js struct {
		JSONSchema map[string]any `json:"json_schema"`
	}
	if err := json.Unmarshal([]byte(renamed), &js); err != nil {
		t.Fatal(err)
	}
	patch, _ := json.Marshal(map[string]any{"json_schema": js.JSONSchema})
	if d := c.expect(400, "PATCH", "/v1/tools/"+tl.ID, string(patch)); !strings.Contains(d, "Tool with name 'triple' already exists") {
		t.Errorf("rename onto another tool: %s", d)
	}
	c.expect(400, "PATCH", "/v1/tools/"+tl.ID, `{"source_code":"def other(): pass"}`)
	c.expect(400, "PATCH", "/v1/tools/"+tl.ID, `{"return_char_limit":0}`)
	// Delete.
	c.ok("DELETE", "/v1/tools/"+other.ID, "", nil)
	c.expect(404, "GET", "/v1/tools/"+other.ID, "")
	c.expect(404, "DELETE", "/v1/tools/"+other.ID, "")
	if n := c.count("/v1/tools/count"); n != builtins+1 {
		t.Errorf("count after delete %d, want %d", n, builtins+1)
	}
}

// Spec: bad tools are refused with a clear error and change nothing.
func TestToolCreateRejects(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	before := c.count("/v1/tools/count")
	cases := []struct {
		status int
		body   string
		want   string
	}{
		{422, `{"json_schema":{"name":"f"}}`, "Field required"},
		{400, toolBody("f", `"return_char_limit":0`), "return_char_limit 0 is out of range"},
		{400, toolBody("f", `"return_char_limit":1000001`), "out of range"},
		{400, toolBody("f", `"source_type":"typescript"`), "Python tools only"},
		{400, toolBody("send_message", ""), "built-in tool"},
		{400, `{"source_code":"x","json_schema":{"description":"no name"}}`, "json_schema has no name"},
		{400, `{"source_code":"x","json_schema":{"name":"bad name"}}`, "not a valid function name"},
		{400, `{"source_code":"x","json_schema":{"name":"f","parameters":[]}}`, "parameters must be"},
	}
	for _, tc := range cases {
		if d := c.expect(tc.status, "POST", "/v1/tools", tc.body); !strings.Contains(d, tc.want) && !strings.Contains(string(c.do("POST", "/v1/tools", tc.body).body), tc.want) {
			t.Errorf("%s: %s, want %q", tc.body, d, tc.want)
		}
	}
	c.expect(422, "GET", "/v1/tools/not-an-id", "")
	c.expect(404, "GET", "/v1/tools/tool-00000000-0000-4000-8000-000000000000", "")
	if n := c.count("/v1/tools/count"); n != before {
		t.Errorf("count %d after rejected creates, want %d", n, before)
	}
	var builtin letta.Tool
	c.ok("GET", "/v1/tools?name=send_message", "", &[]letta.Tool{})
	var list []letta.Tool
	c.ok("GET", "/v1/tools?name=send_message", "", &list)
	if len(list) != 1 {
		t.Fatalf("name filter: %v", toolNames(list))
	}
	builtin = list[0]
	c.expect(400, "DELETE", "/v1/tools/"+builtin.ID, "")
	c.expect(400, "PATCH", "/v1/tools/"+builtin.ID, `{"tags":["x"]}`)
	var got letta.Tool
	c.ok("GET", "/v1/tools/"+builtin.ID, "", &got)
	if got.Name != "send_message" {
		t.Errorf("get built-in: %+v", got)
	}
}

// Spec: listings page with limit, after and before in either order, and
// an SDK that follows after= until an empty page stops.
func TestToolListPaginates(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	var made []string
	for i := range 5 {
		made = append(made, c.createTool(toolBody(fmt.Sprintf("f%d", i), "")).ID)
	}
	list := func(q string) []letta.Tool {
		var ts []letta.Tool
		c.ok("GET", "/v1/tools"+q, "", &ts)
		return ts
	}
	total := c.count("/v1/tools/count")
	all := list("?limit=1000&order=asc")
	if len(all) != total {
		t.Fatalf("listed %d, count %d", len(all), total)
	}
	var ids []string
	for _, tl := range all[len(all)-5:] {
		ids = append(ids, tl.ID)
	}
	if !slices.Equal(ids, made) {
		t.Errorf("custom tools in asc order %v, want creation order %v", ids, made)
	}
	if d := list("?limit=1"); len(d) != 1 || d[0].ID != made[4] {
		t.Errorf("desc first page %v, want the newest tool", toolNames(d))
	}
	// Follow after= as the SDKs do, in both orders.
	for _, order := range []string{"asc", "desc"} {
		var seen []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > total {
				t.Fatalf("%s: paging did not end", order)
			}
			page := list("?limit=2&order=" + order + "&after=" + url.QueryEscape(after))
			if len(page) == 0 {
				break
			}
			for _, tl := range page {
				seen = append(seen, tl.ID)
			}
			after = page[len(page)-1].ID
		}
		if len(seen) != total {
			t.Errorf("%s: paged through %d tools, want %d", order, len(seen), total)
		}
	}
	if b := list(fmt.Sprintf("?order=asc&after=%s&before=%s", made[0], made[3])); !slices.Equal(toolNames(b), []string{"f1", "f2"}) {
		t.Errorf("window: %v", toolNames(b))
	}
	if s := list("?search=F3"); !slices.Equal(toolNames(s), []string{"f3"}) {
		t.Errorf("search: %v", toolNames(s))
	}
	if s := list("?tool_types=custom&limit=100"); len(s) != 5 {
		t.Errorf("tool_types=custom: %v", toolNames(s))
	}
	if n := c.count("/v1/tools/count?exclude_letta_tools=true"); n != 5 {
		t.Errorf("count without built-ins %d, want 5", n)
	}
}

// Spec: tools attach to and detach from an agent, by name or id at
// creation too; the agent's state and its tools listing agree; unknown
// names are refused, naming each.
func TestAgentTools(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	tl := c.createTool(toolBody("double", ""))
	a := c.createAgent(`{"name":"a","tools":["double","web_search"],"include_base_tools":false}`)
	names := func(st *letta.AgentState) []string {
		var out []string
		for _, x := range st.Tools {
			m, _ := x.(map[string]any)
			out = append(out, fmt.Sprint(m["name"]))
		}
		slices.Sort(out)
		return out
	}
	if got := names(a); !slices.Equal(got, []string{"double", "web_search"}) {
		t.Errorf("created with tools %v", got)
	}
	agentTools := func(q string) []string {
		var ts []letta.Tool
		c.ok("GET", "/v1/agents/"+a.ID+"/tools"+q, "", &ts)
		return toolNames(ts)
	}
	if got := agentTools("?limit=100"); len(got) != 2 {
		t.Errorf("agent tools %v", got)
	}
	// Paging the agent's tools ends.
	if got := agentTools("?limit=1&after=" + tl.ID + "&order=desc"); len(got) != 1 || got[0] != "web_search" {
		t.Errorf("after the custom tool (desc): %v", got)
	}
	if got := agentTools("?limit=1&after=" + tl.ID + "&order=asc"); len(got) != 0 {
		t.Errorf("after the newest tool (asc): %v", got)
	}

	var st letta.AgentState
	c.ok("PATCH", "/v1/agents/"+a.ID+"/tools/detach/"+tl.ID, "", &st)
	if got := names(&st); !slices.Equal(got, []string{"web_search"}) {
		t.Errorf("after detach %v", got)
	}
	c.ok("PATCH", "/v1/agents/"+a.ID+"/tools/attach/"+tl.ID, "", &st)
	if got := names(c.getAgent(a.ID)); !slices.Equal(got, []string{"double", "web_search"}) {
		t.Errorf("after attach %v", got)
	}
	var list []letta.Tool
	c.ok("GET", "/v1/tools?name=web_search", "", &list)
	c.ok("PATCH", "/v1/agents/"+a.ID+"/tools/detach/"+list[0].ID, "", &st)
	if got := names(&st); !slices.Equal(got, []string{"double"}) {
		t.Errorf("after detaching a built-in %v", got)
	}
	c.expect(404, "PATCH", "/v1/agents/"+a.ID+"/tools/attach/tool-00000000-0000-4000-8000-000000000000", "")

	// Deleting the tool detaches it.
	c.ok("DELETE", "/v1/tools/"+tl.ID, "", nil)
	if got := names(c.getAgent(a.ID)); len(got) != 0 {
		t.Errorf("after deleting the tool %v", got)
	}

	byID := c.createAgent(fmt.Sprintf(`{"tool_ids":[%q],"include_base_tools":false}`, list[0].ID))
	if got := names(byID); !slices.Equal(got, []string{"web_search"}) {
		t.Errorf("created by tool id %v", got)
	}
	before := c.snapshot()
	d := c.expect(400, "POST", "/v1/agents", `{"tools":["nope","web_search","nada"]}`)
	if !strings.Contains(d, "nope, nada") {
		t.Errorf("unknown tools: %s", d)
	}
	c.expect(400, "POST", "/v1/agents", `{"tool_ids":["tool-00000000-0000-4000-8000-000000000000"]}`)
	if c.snapshot() != before {
		t.Error("a refused create changed the store")
	}
}
