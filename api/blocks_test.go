package api

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/letta"
)

func TestBlockCRUD(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	if n := c.count("/v1/blocks/count"); n != 0 {
		t.Fatalf("count %d", n)
	}
	b := c.createBlock(`{"label": "facts", "value": "the sky is blue", "limit": 1000, "description": "d",
		"metadata": {"m": true}, "tags": ["x", "y"], "project_id": "proj", "unknown": 1}`)
	if !letta.ValidID("block", b.ID) || b.Label != "facts" || b.Value != "the sky is blue" || b.Limit != 1000 ||
		deref(b.Description) != "d" || b.Metadata["m"] != true || !slices.Equal(b.Tags, []string{"x", "y"}) {
		t.Fatalf("created %+v", b)
	}
	if got := c.getBlock(b.ID); got.Value != b.Value || got.Label != b.Label {
		t.Errorf("get %+v", got)
	}
	tmpl := c.createBlock(`{"label": "facts", "value": "", "is_template": true, "template_name": "tmpl"}`)
	other := c.createBlock(`{"label": "other", "tags": ["y"]}`)
	if other.Value != "" || other.Limit != memory.DefaultBlockLimitChars {
		t.Errorf("defaults %+v", other)
	}
	if n := c.count("/v1/blocks/count/"); n != 3 {
		t.Errorf("count %d, want 3 (templates included)", n)
	}

	listIDs := func(q string) []string {
		var bs []letta.Block
		c.ok("GET", "/v1/blocks"+q, "", &bs)
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = b.ID
		}
		return out
	}
	cases := []struct {
		q    string
		want []string
	}{
		{"", []string{b.ID, other.ID}}, // asc by default, templates left out
		{"?order=desc", []string{other.ID, b.ID}},
		{"?label=facts", []string{b.ID}},
		{"?templates_only=true", []string{tmpl.ID}},
		{"?templates_only=true&name=tmpl", []string{tmpl.ID}},
		{"?name=tmpl", []string{}},
		{"?project_id=proj", []string{b.ID}},
		{"?tags=y", []string{b.ID, other.ID}},
		{"?tags=x&tags=y&match_all_tags=true", []string{b.ID}},
		{"?limit=1", []string{b.ID}},
		{"?after=" + b.ID, []string{other.ID}},
		{"?before=" + other.ID, []string{b.ID}},
	}
	for _, tc := range cases {
		if got := listIDs(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("list %s: %v, want %v", tc.q, got, tc.want)
		}
	}

	var mod letta.Block
	c.ok("PATCH", "/v1/blocks/"+b.ID, `{"value": "the sky is grey", "tags": ["z"], "read_only": true}`, &mod)
	if mod.Value != "the sky is grey" || !slices.Equal(mod.Tags, []string{"z"}) || !mod.ReadOnly || mod.Limit != 1000 {
		t.Errorf("patch %+v", mod)
	}
	// Explicit nulls change nothing.
	c.ok("PATCH", "/v1/blocks/"+b.ID, `{"value": null, "label": null}`, &mod)
	if mod.Value != "the sky is grey" || mod.Label != "facts" {
		t.Errorf("null patch %+v", mod)
	}

	r := c.do("DELETE", "/v1/blocks/"+b.ID+"/", "")
	if r.status != 200 || string(r.body) != "null" {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if d := c.expect(404, "GET", "/v1/blocks/"+b.ID, ""); d != "Block with id '"+b.ID+"' not found" {
		t.Errorf("404 detail %q", d)
	}
	c.expect(404, "PATCH", "/v1/blocks/"+b.ID, `{"value": "x"}`)
	c.expect(404, "DELETE", "/v1/blocks/"+b.ID, "")
	if n := c.count("/v1/blocks/count"); n != 2 {
		t.Errorf("count after delete %d", n)
	}
}

func TestBlockCountManyPages(t *testing.T) {
	c, svc := newTestServer(t, Options{})
	const n = agent.MaxListLimit + 7
	for i := range n {
		label := fmt.Sprintf("b%d", i)
		if _, err := svc.Blocks.Create(t.Context(), letta.CreateBlock{Label: &label}); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.count("/v1/blocks/count"); got != n {
		t.Errorf("count %d, want %d", got, n)
	}
}

func TestBlockLimits(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	st := c.createAgent(`{"memory_blocks": [{"label": "human", "value": "short", "limit": 10}]}`)
	blk := st.Blocks[0]
	before := c.snapshot()

	// Creating over the limit is refused everywhere.
	c.expect(400, "POST", "/v1/blocks", `{"label": "x", "value": "far too long a value", "limit": 5}`)
	c.expect(400, "POST", "/v1/agents", `{"memory_blocks": [{"label": "x", "value": "far too long a value", "limit": 5}]}`)
	// So is editing over it, by id or by label, or shrinking the limit.
	for _, p := range []string{"/v1/blocks/" + blk.ID, "/v1/agents/" + st.ID + "/core-memory/blocks/human"} {
		if d := c.expect(400, "PATCH", p, `{"value": "this is longer than ten"}`); !strings.Contains(d, "Exceeds 10 character limit") {
			t.Errorf("PATCH %s: %q", p, d)
		}
		c.expect(400, "PATCH", p, `{"limit": 2}`)
		c.expect(400, "PATCH", p, `{"limit": -1}`)
		c.expect(400, "PATCH", p, fmt.Sprintf(`{"limit": %d}`, memory.MaxBlockLimitChars+1))
	}
	if c.snapshot() != before {
		t.Error("rejected block edits changed something")
	}
	// Within the limit (counting characters, not bytes) is fine.
	var b letta.Block
	c.ok("PATCH", "/v1/blocks/"+blk.ID, `{"value": "ééééééééé"}`, &b)
	if b.Value != "ééééééééé" {
		t.Errorf("value %q", b.Value)
	}
}

func TestBlockQueryValidation(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	b := c.createBlock(`{"label": "x"}`)
	for _, q := range []string{"limit=x", "limit=-1", "limit=1001", "order=random", "match_all_tags=maybe", "templates_only=2"} {
		c.expect(422, "GET", "/v1/blocks?"+q, "")
	}
	for _, q := range []string{"limit=x", "order=up", "include=agent.everything"} {
		c.expect(422, "GET", "/v1/blocks/"+b.ID+"/agents?"+q, "")
	}
	c.ok("GET", "/v1/blocks?limit=0", "", nil)
	c.expect(422, "GET", "/v1/blocks?order=DESC", "") // Letta's literal is case-sensitive
	c.ok("GET", "/v1/blocks?templates_only=FALSE&match_all_tags=1&label="+url.QueryEscape("a b"), "", nil)
}
