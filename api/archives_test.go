package api

import (
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
)

// Spec: shared archives as Letta serves them: create (name required),
// list (by name, by agent), get, rename, passages one at a time and in a
// batch (embedded, with their archive), attached to agents whose archival
// search then finds them, listed agents, 204 deletes; bad and missing ids
// get Letta's 422 and 404.
func TestArchives(t *testing.T) {
	c, _ := newEmbeddingServer(t)
	c.expect(422, "POST", "/v1/archives", `{"description":"no name"}`)
	var ar letta.Archive
	c.ok("POST", "/v1/archives", `{"name":"team","description":"shared notes"}`, &ar)
	if !strings.HasPrefix(ar.ID, "archive-") || ar.Name != "team" || ar.EmbeddingConfig == nil ||
		ar.EmbeddingConfig.EmbeddingModel != "text-embedding-3-small" || ar.VectorDBProvider != "native" || ar.OrganizationID == "" {
		t.Fatalf("created %+v", ar)
	}
	c.ok("POST", "/v1/archives", `{"name":"other"}`, nil)
	var list []letta.Archive
	c.ok("GET", "/v1/archives?name=team", "", &list)
	if len(list) != 1 || list[0].ID != ar.ID {
		t.Errorf("by name: %+v", list)
	}
	c.ok("GET", "/v1/archives", "", &list)
	if len(list) != 2 || list[0].Name != "other" {
		t.Errorf("all, newest first: %+v", list)
	}
	c.ok("PATCH", "/v1/archives/"+ar.ID, `{"name":"team notes"}`, &ar)
	if ar.Name != "team notes" || ar.Description == nil || *ar.Description != "shared notes" {
		t.Errorf("renamed %+v", ar)
	}

	var p letta.Passage
	c.ok("POST", "/v1/archives/"+ar.ID+"/passages", `{"text":"The office wifi password is on the fridge.","tags":["office"]}`, &p)
	if p.ArchiveID == nil || *p.ArchiveID != ar.ID || len(p.Embedding) != 1536 {
		t.Fatalf("archive passage %+v", p)
	}
	var batch []letta.Passage
	c.ok("POST", "/v1/archives/"+ar.ID+"/passages/batch", `{"passages":[{"text":"Lunch is at noon."},{"text":"Standup is at nine.","created_at":"2025-01-02T03:04:05Z"}]}`, &batch)
	if len(batch) != 2 || batch[1].CreatedAt.Year() != 2025 {
		t.Fatalf("batch %+v", batch)
	}
	c.expect(422, "POST", "/v1/archives/"+ar.ID+"/passages", `{}`)
	c.expect(400, "POST", "/v1/archives/"+ar.ID+"/passages/batch", `{"passages":[]}`)

	a := c.createAgent(`{"name":"reader"}`)
	search := "/v1/agents/" + a.ID + "/archival-memory/search?query=WIFI%3F%20PASSWORD%3F"
	var found letta.ArchivalSearchResponse
	c.ok("GET", search, "", &found)
	if found.Count != 0 {
		t.Errorf("found before attaching: %+v", found)
	}
	c.ok("PATCH", "/v1/agents/"+a.ID+"/archives/attach/"+ar.ID, "", nil)
	c.ok("GET", search, "", &found)
	if found.Count == 0 || found.Results[0].ID != p.ID {
		t.Errorf("after attaching: %+v", found)
	}
	var hits []letta.PassageSearchResult
	c.ok("POST", "/v1/passages/search", `{"query":"when is lunch","archive_id":"`+ar.ID+`"}`, &hits)
	if len(hits) == 0 || hits[0].Passage.Text != "Lunch is at noon." {
		t.Errorf("archive search: %+v", hits)
	}
	c.ok("GET", "/v1/archives?agent_id="+a.ID, "", &list)
	if len(list) != 1 || list[0].ID != ar.ID {
		t.Errorf("by agent: %+v", list)
	}
	var agents []letta.AgentState
	c.ok("GET", "/v1/archives/"+ar.ID+"/agents", "", &agents)
	if len(agents) != 1 || agents[0].ID != a.ID {
		t.Errorf("archive agents: %+v", agents)
	}

	if r := c.do("DELETE", "/v1/archives/"+ar.ID+"/passages/"+p.ID, ""); r.status != 204 || len(r.body) != 0 {
		t.Errorf("delete passage: %d %s", r.status, r.body)
	}
	c.expect(404, "DELETE", "/v1/archives/"+ar.ID+"/passages/"+p.ID, "")
	c.ok("PATCH", "/v1/agents/"+a.ID+"/archives/detach/"+ar.ID, "", nil)
	c.ok("GET", "/v1/archives?agent_id="+a.ID, "", &list)
	if len(list) != 0 {
		t.Errorf("after detaching: %+v", list)
	}
	c.ok("PATCH", "/v1/agents/"+a.ID+"/archives/attach/"+ar.ID, "", nil)
	if r := c.do("DELETE", "/v1/archives/"+ar.ID, ""); r.status != 204 {
		t.Errorf("delete archive: %d %s", r.status, r.body)
	}
	c.expect(404, "GET", "/v1/archives/"+ar.ID, "")
	c.ok("GET", "/v1/archives?agent_id="+a.ID, "", &list)
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory/search?query=lunch", "", &found)
	if len(list) != 0 || found.Count != 0 {
		t.Errorf("a deleted archive is still attached or searched: %+v %+v", list, found)
	}
	c.expect(422, "GET", "/v1/archives/nope", "")
	c.expect(404, "GET", "/v1/archives/archive-123e4567-e89b-42d3-8456-426614174000", "")
	c.expect(404, "PATCH", "/v1/agents/"+a.ID+"/archives/attach/archive-123e4567-e89b-42d3-8456-426614174000", "")
}

// Spec: an archive passage keeps the metadata it was given; an agent's
// archival listing holds its own passages and those of its attached
// archives, by creation time, and no longer those of a detached one.
func TestAgentListsArchivePassages(t *testing.T) {
	c, _ := newEmbeddingServer(t)
	var ar letta.Archive
	c.ok("POST", "/v1/archives", `{"name":"team"}`, &ar)
	var p letta.Passage
	c.ok("POST", "/v1/archives/"+ar.ID+"/passages", `{"text":"Lunch is at noon.","metadata":{"source":"wiki","page":3},"created_at":"2025-01-02T03:04:05Z"}`, &p)
	if p.Metadata["source"] != "wiki" || p.Metadata["page"] != float64(3) {
		t.Fatalf("created with metadata %+v", p.Metadata)
	}
	c.expect(400, "POST", "/v1/archives/"+ar.ID+"/passages", `{"text":"big","metadata":{"x":"`+strings.Repeat("x", letta.MaxMetadataBytes)+`"}}`)
	a := c.createAgent(`{"name":"reader"}`)
	var own []letta.Passage
	c.ok("POST", "/v1/agents/"+a.ID+"/archival-memory", `{"text":"My own note."}`, &own)
	c.ok("PATCH", "/v1/agents/"+a.ID+"/archives/attach/"+ar.ID, "", nil)
	var list []letta.Passage
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory", "", &list)
	if len(list) != 2 || list[0].ID != p.ID || list[1].ID != own[0].ID {
		t.Fatalf("listing, oldest first: %+v", list)
	}
	if list[0].Metadata["source"] != "wiki" || list[0].ArchiveID == nil || *list[0].ArchiveID != ar.ID {
		t.Errorf("listed archive passage %+v", list[0])
	}
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory?ascending=false&limit=1", "", &list)
	if len(list) != 1 || list[0].ID != own[0].ID {
		t.Errorf("newest first, one: %+v", list)
	}
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory?ascending=false&after="+own[0].ID, "", &list)
	if len(list) != 1 || list[0].ID != p.ID {
		t.Errorf("after the newest: %+v", list)
	}
	c.ok("PATCH", "/v1/agents/"+a.ID+"/archives/detach/"+ar.ID, "", nil)
	c.ok("GET", "/v1/agents/"+a.ID+"/archival-memory", "", &list)
	if len(list) != 1 || list[0].ID != own[0].ID {
		t.Errorf("after detaching: %+v", list)
	}
}
