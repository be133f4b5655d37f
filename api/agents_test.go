package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/letta"
)

const fullCreate = `{
	"name": "Kelp Tester",
	"memory_blocks": [
		{"label": "human", "value": "The user is Ada.", "limit": 500},
		{"label": "persona", "value": "I am a helpful kelpie.", "description": "who I am"}
	],
	"tags": ["alpha", "beta"],
	"metadata": {"team": "kelp", "n": 3},
	"system": "You are a test agent.",
	"model": "openai/gpt-4o-mini",
	"embedding": "openai/text-embedding-3-small",
	"description": "an agent under test",
	"some_unknown_field": {"ignored": true}
}`

func TestHealth(t *testing.T) {
	c, _ := newTestServer(t, Options{KelpieVersion: "9.9.9", APIKey: "secret"})
	for _, p := range []string{"/v1/health/", "/v1/health", "/latest/health/", "/latest/health"} {
		var h map[string]string
		c.ok("GET", p, "", &h)
		if h["status"] != "ok" || h["version"] != LettaAPIVersion || h["kelpie_version"] != "9.9.9" || len(h) != 3 {
			t.Errorf("%s: %v", p, h)
		}
	}
	c2, _ := newTestServer(t, Options{})
	var h map[string]string
	c2.ok("GET", "/v1/health/", "", &h)
	if h["version"] != LettaAPIVersion || len(h) != 2 {
		t.Errorf("health without a Kelpie version: %v", h)
	}
	// letta-code warns when the version is below its minimum (0.16.6).
	if !versionAtLeast(LettaAPIVersion, 0, 16, 6) {
		t.Errorf("LettaAPIVersion %s is below letta-code's minimum 0.16.6", LettaAPIVersion)
	}
}

// versionAtLeast compares a dotted version with major.minor.patch.
func versionAtLeast(v string, want ...int) bool {
	parts := strings.Split(v, ".")
	for i, w := range want {
		if i >= len(parts) {
			return false
		}
		n, err := strconv.Atoi(parts[i])
		if err != nil || n != w {
			return err == nil && n > w
		}
	}
	return true
}

func TestAgentCRUD(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	if n := c.count("/v1/agents/count"); n != 0 {
		t.Fatalf("count %d on an empty server", n)
	}
	st := c.createAgent(fullCreate)
	if !letta.ValidID("agent", st.ID) {
		t.Fatalf("id %q", st.ID)
	}
	if st.Name != "Kelp Tester" || st.System != "You are a test agent." || deref(st.Description) != "an agent under test" {
		t.Errorf("create: name %q system %q description %v", st.Name, st.System, st.Description)
	}
	if !slices.Equal(st.Tags, []string{"alpha", "beta"}) {
		t.Errorf("tags %v", st.Tags)
	}
	if st.Metadata["team"] != "kelp" || st.Metadata["n"] != 3.0 {
		t.Errorf("metadata %v", st.Metadata)
	}
	if deref(st.Model) != "openai/gpt-4o-mini" || st.LLMConfig.Model != "gpt-4o-mini" || st.LLMConfig.ContextWindow != 128000 {
		t.Errorf("model %v llm_config %+v", st.Model, st.LLMConfig)
	}
	if deref(st.Embedding) != "openai/text-embedding-3-small" || st.EmbeddingConfig == nil || st.EmbeddingConfig.EmbeddingDim != 1536 {
		t.Errorf("embedding %v %+v", st.Embedding, st.EmbeddingConfig)
	}
	if got := blockLabels(st.Blocks); !slices.Equal(got, []string{"human", "persona"}) {
		t.Errorf("blocks %v", got)
	}
	if st.Blocks[0].Value != "The user is Ada." || st.Blocks[0].Limit != 500 || st.Blocks[1].Limit != memory.DefaultBlockLimitChars {
		t.Errorf("block values %+v", st.Blocks)
	}
	if len(st.Memory.Blocks) != 2 {
		t.Errorf("memory.blocks %v", st.Memory.Blocks)
	}

	// Retrieve: the same agent, in every path form.
	for _, p := range []string{"/v1/agents/" + st.ID, "/v1/agents/" + st.ID + "/", "/latest/agents/" + st.ID} {
		var got letta.AgentState
		c.ok("GET", p, "", &got)
		if got.ID != st.ID || got.Name != st.Name || len(got.Blocks) != 2 {
			t.Errorf("GET %s: %+v", p, got)
		}
	}
	if n := c.count("/v1/agents/count"); n != 1 {
		t.Errorf("count %d", n)
	}

	// Modify.
	var mod letta.AgentState
	c.ok("PATCH", "/v1/agents/"+st.ID, `{"name": "Renamed", "tags": ["gamma"], "metadata": {"x": "y"}, "description": "changed"}`, &mod)
	if mod.Name != "Renamed" || !slices.Equal(mod.Tags, []string{"gamma"}) || mod.Metadata["x"] != "y" || len(mod.Blocks) != 2 {
		t.Errorf("PATCH: %+v", mod)
	}
	got := c.getAgent(st.ID)
	if got.Name != "Renamed" || deref(got.Description) != "changed" || got.System != st.System {
		t.Errorf("after PATCH: %+v", got)
	}

	// Delete, then it is gone.
	var msg map[string]string
	c.ok("DELETE", "/v1/agents/"+st.ID, "", &msg)
	if msg["message"] != "Agent id="+st.ID+" successfully deleted" {
		t.Errorf("delete message %v", msg)
	}
	if d := c.expect(404, "GET", "/v1/agents/"+st.ID, ""); !strings.Contains(d, "not found") {
		t.Errorf("GET after delete: %q", d)
	}
	c.expect(404, "PATCH", "/v1/agents/"+st.ID, `{"name":"x"}`)
	c.expect(404, "DELETE", "/v1/agents/"+st.ID, "")
	c.expect(404, "GET", "/v1/agents/"+st.ID+"/core-memory/blocks", "")
	if n := c.count("/v1/agents/count"); n != 0 {
		t.Errorf("count after delete %d", n)
	}
	// The agent's blocks outlive it, as in Letta.
	var blocks []letta.Block
	c.ok("GET", "/v1/blocks", "", &blocks)
	if len(blocks) != 2 {
		t.Errorf("blocks after agent delete: %d", len(blocks))
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func TestListAgentsFilters(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	a := c.createAgent(`{"name": "alpha one", "tags": ["red", "blue"], "project_id": "p1"}`)
	b := c.createAgent(`{"name": "beta", "tags": ["red"]}`)
	d := c.createAgent(`{"name": "gamma", "tags": ["green"]}`)

	cases := []struct {
		query string
		want  []string // in listing order (desc by default)
	}{
		{"", []string{d.ID, b.ID, a.ID}},
		{"?order=asc", []string{a.ID, b.ID, d.ID}},
		{"?tags=red", []string{b.ID, a.ID}},
		{"?tags=red&tags=blue", []string{b.ID, a.ID}},
		{"?tags=red&tags=blue&match_all_tags=true", []string{a.ID}},
		{"?tags=red&tags=green&match_all_tags=false", []string{d.ID, b.ID, a.ID}},
		{"?name=beta", []string{b.ID}},
		{"?name=bet", []string{}},
		{"?query_text=ALPHA", []string{a.ID}},
		{"?project_id=p1", []string{a.ID}},
		{"?limit=1", []string{d.ID}},
		{"?tags=nope", []string{}},
	}
	for _, tc := range cases {
		var got []*letta.AgentState
		c.ok("GET", "/v1/agents"+tc.query, "", &got)
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("list %s: %v, want %v", tc.query, ids(got), tc.want)
		}
		countQuery := strings.ReplaceAll(tc.query, "order=asc", "")
		if !strings.Contains(tc.query, "limit") {
			if n := c.count("/v1/agents/count" + countQuery); n != len(tc.want) {
				t.Errorf("count %s: %d, want %d", countQuery, n, len(tc.want))
			}
		}
	}
	// A bare array, even when empty.
	r := c.do("GET", "/v1/agents?name=nobody", "")
	if string(r.body) != "[]" {
		t.Errorf("empty list body %s", r.body)
	}
}

// TestPagination walks listings page by page in both orders and checks
// that cursors are exclusive and that every item is seen exactly once.
func TestPagination(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	const n = 11
	var created []string // creation order
	for i := range n {
		created = append(created, c.createAgent(fmt.Sprintf(`{"name": "agent %d", "tags": ["page"]}`, i)).ID)
	}
	desc := slices.Clone(created)
	slices.Reverse(desc)

	for _, order := range []string{"asc", "desc"} {
		want := created
		if order == "desc" {
			want = desc
		}
		for _, limit := range []int{1, 2, 3, 5, n, n + 4} {
			var seen []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > n+1 {
					t.Fatalf("order %s limit %d: pagination does not end", order, limit)
				}
				q := url.Values{"order": {order}, "limit": {fmt.Sprint(limit)}, "tags": {"page"}}
				if after != "" {
					q.Set("after", after)
				}
				var page []*letta.AgentState
				c.ok("GET", "/v1/agents?"+q.Encode(), "", &page)
				if len(page) > limit {
					t.Fatalf("page of %d > limit %d", len(page), limit)
				}
				if len(page) == 0 {
					break
				}
				if slices.Contains(ids(page), after) {
					t.Fatalf("order %s: after=%s is not exclusive", order, after)
				}
				seen = append(seen, ids(page)...)
				after = page[len(page)-1].ID
			}
			if !slices.Equal(seen, want) {
				t.Errorf("order %s limit %d: walked %v, want %v", order, limit, seen, want)
			}
		}
		// before is exclusive too and keeps the listing order.
		var page []*letta.AgentState
		c.ok("GET", "/v1/agents?order="+order+"&before="+want[5], "", &page)
		if !slices.Equal(ids(page), want[:5]) {
			t.Errorf("order %s before=%s: %v, want %v", order, want[5], ids(page), want[:5])
		}
		c.ok("GET", "/v1/agents?order="+order+"&after="+want[2]+"&before="+want[6], "", &page)
		if !slices.Equal(ids(page), want[3:6]) {
			t.Errorf("order %s after&before: %v, want %v", order, ids(page), want[3:6])
		}
		// An unknown cursor is ignored, as in Letta.
		c.ok("GET", "/v1/agents?order="+order+"&after=agent-00000000-0000-4000-8000-000000000000", "", &page)
		if len(page) != n {
			t.Errorf("unknown cursor: %d agents", len(page))
		}
	}
}

func TestCoreMemoryBlocks(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	st := c.createAgent(`{"memory_blocks": [{"label": "human", "value": "h"}, {"label": "persona", "value": "p"}, {"label": "notes/today", "value": "n"}]}`)
	base := "/v1/agents/" + st.ID + "/core-memory/blocks"

	var list []letta.Block
	c.ok("GET", base, "", &list)
	if len(list) != 3 {
		t.Fatalf("blocks %v", blockLabels(list))
	}
	for i := 1; i < len(list); i++ {
		if list[i-1].ID < list[i].ID {
			t.Errorf("default order is not desc by id: %v", list)
		}
	}
	var page []letta.Block
	c.ok("GET", base+"?order=asc&limit=2", "", &page)
	if len(page) != 2 || page[0].ID != list[2].ID || page[1].ID != list[1].ID {
		t.Errorf("asc limit 2: %v", page)
	}
	c.ok("GET", base+"?order=asc&after="+page[1].ID, "", &page)
	if len(page) != 1 || page[0].ID != list[0].ID {
		t.Errorf("asc after: %v", page)
	}

	var b letta.Block
	c.ok("GET", base+"/human", "", &b)
	if b.Label != "human" || b.Value != "h" {
		t.Errorf("get by label %+v", b)
	}
	c.ok("GET", base+"/"+url.PathEscape("notes/today"), "", &b)
	if b.Label != "notes/today" {
		t.Errorf("label with a slash: %+v", b)
	}
	if d := c.expect(404, "GET", base+"/nope", ""); !strings.Contains(d, "No block with label 'nope'") {
		t.Errorf("missing label: %q", d)
	}
	c.ok("PATCH", base+"/human/", `{"value": "The user is Grace."}`, &b)
	if b.Value != "The user is Grace." {
		t.Errorf("patch by label: %+v", b)
	}
	if got := c.getBlock(b.ID); got.Value != "The user is Grace." {
		t.Errorf("block after patch: %+v", got)
	}
	c.expect(404, "PATCH", base+"/nope", `{"value": "x"}`)

	// Attach and detach a standalone block.
	extra := c.createBlock(`{"label": "extra", "value": "e"}`)
	var after letta.AgentState
	c.ok("PATCH", base+"/attach/"+extra.ID, "", &after)
	if !slices.Contains(blockLabels(after.Blocks), "extra") || len(after.Blocks) != 4 {
		t.Errorf("attach: %v", blockLabels(after.Blocks))
	}
	c.ok("PATCH", base+"/attach/"+extra.ID, "", &after) // again: a no-op
	if len(after.Blocks) != 4 {
		t.Errorf("attach twice: %v", blockLabels(after.Blocks))
	}
	// A different block with a label the agent already has: 409.
	dup := c.createBlock(`{"label": "human", "value": "another human"}`)
	before := c.snapshot()
	c.expect(409, "PATCH", base+"/attach/"+dup.ID, "")
	if c.snapshot() != before {
		t.Error("rejected attach changed something")
	}
	c.ok("PATCH", base+"/detach/"+extra.ID, "", &after)
	if slices.Contains(blockLabels(after.Blocks), "extra") || len(after.Blocks) != 3 {
		t.Errorf("detach: %v", blockLabels(after.Blocks))
	}
	if d := c.expect(404, "PATCH", base+"/detach/"+extra.ID, ""); !strings.Contains(d, "No block with id") {
		t.Errorf("detach again: %q", d)
	}
	c.expect(404, "PATCH", base+"/attach/block-00000000-0000-4000-8000-000000000000", "")
	// Attach ignores any body.
	c.ok("PATCH", base+"/attach/"+extra.ID, `not json at all`, &after)
}

func TestSharedBlock(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	shared := c.createBlock(`{"label": "team", "value": "v1", "tags": ["t"], "metadata": {"k": 1}}`)
	a := c.createAgent(`{"name": "a", "block_ids": ["` + shared.ID + `"]}`)
	b := c.createAgent(`{"name": "b"}`)
	c.ok("PATCH", "/v1/agents/"+b.ID+"/core-memory/blocks/attach/"+shared.ID, "", nil)

	var edited letta.Block
	c.ok("PATCH", "/v1/blocks/"+shared.ID, `{"value": "v2", "description": "shared"}`, &edited)
	if edited.Value != "v2" || edited.ID != shared.ID {
		t.Fatalf("edit: %+v", edited)
	}
	for _, id := range []string{a.ID, b.ID} {
		st := c.getAgent(id)
		if len(st.Blocks) != 1 || st.Blocks[0].Value != "v2" || deref(st.Blocks[0].Description) != "shared" {
			t.Errorf("agent %s sees %+v", id, st.Blocks)
		}
	}
	// An edit through one agent is seen by the other.
	c.ok("PATCH", "/v1/agents/"+a.ID+"/core-memory/blocks/team", `{"value": "v3"}`, nil)
	var blk letta.Block
	c.ok("GET", "/v1/agents/"+b.ID+"/core-memory/blocks/team", "", &blk)
	if blk.Value != "v3" {
		t.Errorf("agent b sees %q", blk.Value)
	}

	var agents []*letta.AgentState
	c.ok("GET", "/v1/blocks/"+shared.ID+"/agents", "", &agents)
	if !slices.Equal(ids(agents), []string{b.ID, a.ID}) {
		t.Errorf("block agents %v", ids(agents))
	}
	if len(agents[0].Blocks) != 0 {
		t.Errorf("block agents load blocks without include: %v", agents[0].Blocks)
	}
	c.ok("GET", "/v1/blocks/"+shared.ID+"/agents?order=asc&include=agent.blocks", "", &agents)
	if !slices.Equal(ids(agents), []string{a.ID, b.ID}) || len(agents[0].Blocks) != 1 {
		t.Errorf("block agents asc with blocks: %v", ids(agents))
	}
	c.ok("GET", "/v1/blocks/"+shared.ID+"/agents?order=asc&after="+a.ID, "", &agents)
	if !slices.Equal(ids(agents), []string{b.ID}) {
		t.Errorf("block agents after: %v", ids(agents))
	}
	c.ok("GET", "/v1/blocks/block-00000000-0000-4000-8000-000000000000/agents", "", &agents)
	if len(agents) != 0 {
		t.Errorf("agents of a missing block: %v", agents)
	}

	// Deleting the block detaches it from both agents.
	r := c.do("DELETE", "/v1/blocks/"+shared.ID, "")
	if r.status != 200 || string(r.body) != "null" {
		t.Fatalf("delete block: %d %s", r.status, r.body)
	}
	for _, id := range []string{a.ID, b.ID} {
		if st := c.getAgent(id); len(st.Blocks) != 0 {
			t.Errorf("agent %s still has %v", id, st.Blocks)
		}
	}
	c.expect(404, "GET", "/v1/blocks/"+shared.ID, "")
}

// TestBlocksForSDKVersion checks which clients get blocks in agent reads.
func TestBlocksForSDKVersion(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	st := c.createAgent(`{"memory_blocks": [{"label": "human", "value": "h"}]}`)
	if len(st.Blocks) != 1 {
		t.Fatalf("create returns %d blocks", len(st.Blocks))
	}
	cases := []struct {
		name  string
		hdr   []string
		query string
		want  int
	}{
		{"legacy Go client", nil, "", 1},
		{"curl", []string{"User-Agent", "curl/8.5.0"}, "", 1},
		{"stainless", []string{"X-Stainless-Package-Version", "1.12.1"}, "", 0},
		{"stainless include", []string{"X-Stainless-Package-Version", "1.12.1"}, "?include=agent.blocks", 1},
		{"stainless other include", []string{"X-Stainless-Package-Version", "1.12.1"}, "?include=agent.tools", 0},
		{"letta-client UA", []string{"User-Agent", "@letta-ai/letta-client/1.12.1"}, "", 0},
		{"letta-client 0.x UA", []string{"User-Agent", "letta-client/0.1.3"}, "", 1},
	}
	for _, tc := range cases {
		var got letta.AgentState
		c.ok("GET", "/v1/agents/"+st.ID+tc.query, "", &got, tc.hdr...)
		if len(got.Blocks) != tc.want || len(got.Memory.Blocks) != tc.want {
			t.Errorf("%s: GET agent has %d blocks, want %d", tc.name, len(got.Blocks), tc.want)
		}
		var list []*letta.AgentState
		c.ok("GET", "/v1/agents"+tc.query, "", &list, tc.hdr...)
		if len(list) != 1 || len(list[0].Blocks) != tc.want {
			t.Errorf("%s: list has %d blocks, want %d", tc.name, len(list[0].Blocks), tc.want)
		}
	}
	// No User-Agent at all counts as the 1.x SDK.
	req, _ := http.NewRequest("GET", c.base+"/v1/agents/"+st.ID, nil)
	req.Header.Set("User-Agent", "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got letta.AgentState
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Blocks) != 0 {
		t.Errorf("no User-Agent: %d blocks", len(got.Blocks))
	}
	// Modify, attach and detach always return the full state.
	var mod letta.AgentState
	c.ok("PATCH", "/v1/agents/"+st.ID, `{"description": "d"}`, &mod, "X-Stainless-Package-Version", "1.12.1")
	if len(mod.Blocks) != 1 {
		t.Errorf("PATCH from the SDK: %d blocks", len(mod.Blocks))
	}
}

func (c *client) createBlockKeyed(body, key string) *letta.Block {
	c.t.Helper()
	var b letta.Block
	c.ok("POST", "/v1/blocks", body, &b, "Idempotency-Key", key)
	return &b
}

func TestIdempotency(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	body := `{"name": "once", "memory_blocks": [{"label": "human", "value": "h"}]}`
	var first, second letta.AgentState
	c.ok("POST", "/v1/agents", body, &first, "Idempotency-Key", "key-1")
	c.ok("POST", "/v1/agents/", body, &second, "idempotency-key", "key-1")
	if first.ID != second.ID {
		t.Fatalf("same key created two agents: %s, %s", first.ID, second.ID)
	}
	if n := c.count("/v1/agents/count"); n != 1 {
		t.Fatalf("count %d after a repeated create", n)
	}
	before := c.snapshot()
	c.expect(400, "POST", "/v1/agents", `{"name": "different"}`, "Idempotency-Key", "key-1")
	long := strings.Repeat("k", MaxIdempotencyKeyBytes+1)
	c.expect(422, "POST", "/v1/agents", body, "Idempotency-Key", long)
	if c.snapshot() != before {
		t.Error("rejected creates changed something")
	}
	// A key of exactly the maximum length is fine.
	c.ok("POST", "/v1/agents", body, nil, "Idempotency-Key", long[1:])
	if n := c.count("/v1/agents/count"); n != 2 {
		t.Fatalf("count %d", n)
	}

	// Concurrent repeats of one keyed create make one agent.
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.do("POST", "/v1/agents", `{"name": "racer"}`, "Idempotency-Key", "race")
			var st letta.AgentState
			if r.status == 200 && json.Unmarshal(r.body, &st) == nil {
				got[i] = st.ID
			}
		}()
	}
	wg.Wait()
	for _, id := range got {
		if id == "" || id != got[0] {
			t.Fatalf("concurrent keyed creates: %v", got)
		}
	}
	if n := c.count("/v1/agents/count?name=racer"); n != 1 {
		t.Fatalf("%d racers", n)
	}
	// Block creates are idempotent too.
	blocks := c.count("/v1/blocks/count")
	b1, b2 := c.createBlockKeyed(`{"label": "k"}`, "block-key"), c.createBlockKeyed(`{"label": "k"}`, "block-key")
	if n := c.count("/v1/blocks/count"); b1.ID != b2.ID || n != blocks+1 {
		t.Errorf("keyed block creates: %s %s, %d blocks, want %d", b1.ID, b2.ID, n, blocks+1)
	}

	// A key is scoped to its path: the same key and body on two agents
	// changes both.
	other := c.createAgent(`{"name": "other"}`)
	var m1, m2 letta.AgentState
	c.ok("PATCH", "/v1/agents/"+first.ID, `{"description": "x"}`, &m1, "Idempotency-Key", "patch")
	c.ok("PATCH", "/v1/agents/"+other.ID, `{"description": "x"}`, &m2, "Idempotency-Key", "patch")
	if m1.ID != first.ID || m2.ID != other.ID || deref(c.getAgent(other.ID).Description) != "x" {
		t.Errorf("scoped keys: %s %s", m1.ID, m2.ID)
	}
	// A repeated delete with its key answers as the first did.
	c.ok("DELETE", "/v1/agents/"+other.ID, "", nil, "Idempotency-Key", "del")
	c.ok("DELETE", "/v1/agents/"+other.ID, "", nil, "Idempotency-Key", "del")
	c.expect(404, "DELETE", "/v1/agents/"+other.ID, "")
}
