package api

import (
	"net/http"
	"testing"

	"github.com/kelpie/kelpie/letta"
)

// Spec: GET /v1/folders/name/{name} (and /v1/sources/name/{name}) answers
// the id of the folder of that name as a JSON string, also for names that
// are words of the folder routes ("files", "agents", "passages"), and 404
// for none; the routes of the same shape still serve a folder's files,
// and a GET of a file's delete path is 405.
func TestFolderIDByName(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	ids := map[string]string{}
	for _, name := range []string{"docs", "files", "agents", "passages", "two words"} {
		var f letta.Folder
		c.ok("POST", "/v1/folders", `{"name":"`+name+`"}`, &f)
		ids[name] = f.ID
	}
	for _, tc := range []struct{ path, name string }{
		{"/v1/folders/name/docs", "docs"}, {"/v1/sources/name/docs", "docs"},
		{"/v1/folders/name/files", "files"}, {"/v1/sources/name/agents", "agents"},
		{"/v1/folders/name/passages", "passages"}, {"/v1/folders/name/two%20words", "two words"},
	} {
		var id string
		c.ok("GET", tc.path, "", &id)
		if id != ids[tc.name] {
			t.Errorf("GET %s: %q, want %q", tc.path, id, ids[tc.name])
		}
	}
	if d := c.expect(http.StatusNotFound, "GET", "/v1/folders/name/nope", ""); d != "Source with name=nope not found." {
		t.Errorf("unknown name: %q", d)
	}
	var files []letta.FileMetadata
	c.ok("GET", "/v1/folders/"+ids["docs"]+"/files", "", &files)
	var agents []string
	c.ok("GET", "/v1/sources/"+ids["docs"]+"/agents", "", &agents)
	r := c.do("GET", "/v1/folders/"+ids["docs"]+"/file-00000000-0000-4000-8000-000000000000", "")
	if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "DELETE" {
		t.Errorf("GET of a file's delete path: %d %s (Allow %q)", r.status, r.body, r.header.Get("Allow"))
	}
}
