package api

import (
	"slices"
	"testing"

	"github.com/kelpie/kelpie/letta"
)

func (c *client) identity(method, path, body string) *letta.Identity {
	c.t.Helper()
	var id letta.Identity
	c.ok(method, path, body, &id)
	return &id
}

// TestIdentities: identities are created (a (project, identifier_key) at
// most once), upserted, listed with filters, read, changed (properties
// merged, agents and blocks added), given new properties, counted and
// deleted; agents and blocks belong to them from either side, and deleting
// either end removes the link.
func TestIdentities(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	a := c.createAgent(`{"name":"a1"}`)
	b := c.createBlock(`{"label":"prefs","value":"tea"}`)
	ada := c.identity("POST", "/v1/identities", `{"identifier_key":"u-ada","name":"Ada","identity_type":"user","agent_ids":["`+a.ID+`"],`+
		`"block_ids":["`+b.ID+`"],"properties":[{"key":"plan","value":"pro","type":"string"}]}`)
	if !letta.ValidID("identity", ada.ID) || !slices.Equal(ada.AgentIDs, []string{a.ID}) || !slices.Equal(ada.BlockIDs, []string{b.ID}) ||
		len(ada.Properties) != 1 || ada.IdentityType != "user" {
		t.Fatalf("created %+v", ada)
	}
	if st := c.getAgent(a.ID); !slices.Equal(st.IdentityIDs, []string{ada.ID}) {
		t.Errorf("agent identity_ids %v", st.IdentityIDs)
	}
	// The key is unique; bad input changes nothing.
	c.expect(409, "POST", "/v1/identities", `{"identifier_key":"u-ada","name":"Other","identity_type":"user"}`)
	c.expect(422, "POST", "/v1/identities", `{"identifier_key":"u-x","name":"X","identity_type":"robot"}`)
	c.expect(422, "POST", "/v1/identities", `{"name":"X","identity_type":"user"}`)
	c.expect(404, "POST", "/v1/identities", `{"identifier_key":"u-y","name":"Y","identity_type":"user","agent_ids":["agent-123e4567-e89b-42d3-8456-426614174000"]}`)
	if n := c.count("/v1/identities/count"); n != 1 {
		t.Fatalf("count %d after refused creates", n)
	}
	// Upsert creates, then replaces by key.
	org := c.identity("PUT", "/v1/identities", `{"identifier_key":"o-acme","name":"Acme","identity_type":"org"}`)
	again := c.identity("PUT", "/v1/identities", `{"identifier_key":"o-acme","name":"Acme Inc","identity_type":"org","properties":[{"key":"seats","value":3,"type":"number"}]}`)
	if again.ID != org.ID || again.Name != "Acme Inc" || len(again.Properties) != 1 {
		t.Errorf("upsert %+v, first %+v", again, org)
	}
	// Listing and its filters.
	var list []letta.Identity
	c.ok("GET", "/v1/identities", "", &list)
	if len(list) != 2 || list[0].ID != org.ID {
		t.Errorf("list (newest first) %v", list)
	}
	c.ok("GET", "/v1/identities?identity_type=user", "", &list)
	if len(list) != 1 || list[0].ID != ada.ID {
		t.Errorf("by type %v", list)
	}
	c.ok("GET", "/v1/identities?identifier_key=o-acme", "", &list)
	if len(list) != 1 || list[0].ID != org.ID {
		t.Errorf("by key %v", list)
	}
	c.ok("GET", "/v1/identities?name=acme", "", &list)
	if len(list) != 1 || list[0].ID != org.ID {
		t.Errorf("by name %v", list)
	}
	c.ok("GET", "/v1/identities?order=asc&after="+ada.ID, "", &list)
	if len(list) != 1 || list[0].ID != org.ID {
		t.Errorf("after a cursor %v", list)
	}
	// Modify merges properties and adds agents.
	a2 := c.createAgent(`{"name":"a2","identity_ids":["` + org.ID + `"]}`)
	mod := c.identity("PATCH", "/v1/identities/"+ada.ID, `{"name":"Ada L","agent_ids":["`+a2.ID+`"],"properties":[{"key":"tz","value":"UTC","type":"string"}]}`)
	if mod.Name != "Ada L" || len(mod.Properties) != 2 || len(mod.AgentIDs) != 2 {
		t.Errorf("modified %+v", mod)
	}
	props := c.identity("PUT", "/v1/identities/"+ada.ID+"/properties", `[{"key":"vip","value":true,"type":"boolean"}]`)
	if len(props.Properties) != 1 || props.Properties[0].Key != "vip" {
		t.Errorf("properties replaced: %+v", props.Properties)
	}
	if got := c.identity("GET", "/v1/identities/"+ada.ID, ""); got.Name != "Ada L" || len(got.Properties) != 1 {
		t.Errorf("read back %+v", got)
	}
	// The identity's agents and blocks.
	var agents []letta.AgentState
	c.ok("GET", "/v1/identities/"+ada.ID+"/agents", "", &agents)
	if len(agents) != 2 {
		t.Errorf("identity agents %v", agents)
	}
	var blocks []letta.Block
	c.ok("GET", "/v1/identities/"+ada.ID+"/blocks", "", &blocks)
	if len(blocks) != 1 || blocks[0].ID != b.ID {
		t.Errorf("identity blocks %v", blocks)
	}
	// Agent listings and counts filter by identity.
	var listed []*letta.AgentState
	c.ok("GET", "/v1/agents?identity_id="+org.ID, "", &listed)
	if len(listed) != 1 || listed[0].ID != a2.ID {
		t.Errorf("agents of %s: %v", org.ID, ids(listed))
	}
	if n := c.count("/v1/agents/count?identity_id=" + ada.ID); n != 2 {
		t.Errorf("count of the agents of %s: %d", ada.ID, n)
	}
	// a2 joined org as it was created.
	if n := c.count("/v1/agents/count?identity_id=" + org.ID); n != 1 {
		t.Errorf("count of the agents of %s: %d", org.ID, n)
	}
	// Attach and detach from the agent's side.
	var st letta.AgentState
	c.ok("PATCH", "/v1/agents/"+a2.ID+"/identities/detach/"+ada.ID, "", &st)
	if !slices.Equal(st.IdentityIDs, []string{org.ID}) {
		t.Errorf("after detach %v", st.IdentityIDs)
	}
	c.ok("PATCH", "/v1/agents/"+a2.ID+"/identities/attach/"+ada.ID, "", &st)
	if len(st.IdentityIDs) != 2 {
		t.Errorf("after attach %v", st.IdentityIDs)
	}
	c.expect(404, "PATCH", "/v1/agents/"+a2.ID+"/identities/attach/identity-123e4567-e89b-42d3-8456-426614174000", "")
	c.expect(422, "PATCH", "/v1/agents/"+a2.ID+"/identities/attach/identity-1", "")
	c.ok("PATCH", "/v1/agents/"+a2.ID, `{"identity_ids":[]}`, &st)
	if len(st.IdentityIDs) != 0 {
		t.Errorf("identity_ids replaced by none: %v", st.IdentityIDs)
	}
	// Deleting an agent or a block removes its links; deleting an
	// identity removes the agents' links to it.
	c.ok("DELETE", "/v1/agents/"+a2.ID, "", nil)
	c.ok("DELETE", "/v1/blocks/"+b.ID, "", nil)
	if got := c.identity("GET", "/v1/identities/"+ada.ID, ""); !slices.Equal(got.AgentIDs, []string{a.ID}) || len(got.BlockIDs) != 0 {
		t.Errorf("after deleting an agent and a block: %+v", got)
	}
	c.ok("DELETE", "/v1/identities/"+ada.ID, "", nil)
	c.expect(404, "GET", "/v1/identities/"+ada.ID, "")
	if st := c.getAgent(a.ID); len(st.IdentityIDs) != 0 {
		t.Errorf("agent still belongs to a deleted identity: %v", st.IdentityIDs)
	}
	if n := c.count("/v1/identities/count"); n != 1 {
		t.Errorf("count %d", n)
	}
}

// TestTags: GET /v1/tags lists the distinct tags of listed agents in
// alphabetical order, pages by tag, filters by name and drops a tag when
// its last agent loses it.
func TestTags(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	c.createAgent(`{"name":"t1","tags":["red","blue","a/b"]}`)
	c.createAgent(`{"name":"t2","tags":["blue","green"]}`)
	c.createAgent(`{"name":"t3","tags":["secret"],"hidden":true}`)
	b := c.createAgent(`{"name":"t4","tags":["Redwood"]}`)
	tags := func(q string) []string {
		var out []string
		c.ok("GET", "/v1/tags"+q, "", &out)
		return out
	}
	if got := tags(""); !slices.Equal(got, []string{"Redwood", "a/b", "blue", "green", "red"}) {
		t.Errorf("tags %v", got)
	}
	if got := tags("?order=desc&limit=2"); !slices.Equal(got, []string{"red", "green"}) {
		t.Errorf("desc page %v", got)
	}
	if got := tags("?after=blue&limit=2"); !slices.Equal(got, []string{"green", "red"}) {
		t.Errorf("after blue %v", got)
	}
	if got := tags("?order=desc&after=green&before=Redwood"); !slices.Equal(got, []string{"blue", "a/b"}) {
		t.Errorf("desc between %v", got)
	}
	if got := tags("?name=RED"); !slices.Equal(got, []string{"Redwood", "red"}) {
		t.Errorf("name filter %v", got)
	}
	if got := tags("?query_text=gre"); !slices.Equal(got, []string{"green"}) {
		t.Errorf("query_text filter %v", got)
	}
	c.ok("PATCH", "/v1/agents/"+b.ID, `{"tags":[]}`, nil)
	if got := tags(""); slices.Contains(got, "Redwood") || len(got) != 4 {
		t.Errorf("after removing a tag %v", got)
	}
	c.expect(422, "GET", "/v1/tags?limit=-1", "")
	c.expect(422, "PUT", "/v1/identities/identity-123e4567-e89b-42d3-8456-426614174000/properties", `{"key":"k"}`)
}
