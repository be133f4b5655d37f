package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// Spec: files are named as Letta names them. The upload answers the
// stored file_name, "<folder>/<name>" (a duplicate "<folder>/<base>_(n).ext",
// a custom name as given under the folder's); listings and reads show it
// without its first path component; an agent, its prompt, its file tools,
// the folder's metadata and passages know the stored name. A replacing
// upload is stored under its original name alone, as Letta stores it.
func TestUploadedFileNames(t *testing.T) {
	c, double := newFolderServer(t)
	var f letta.Folder
	c.ok("POST", "/v1/folders", `{"name":"docs"}`, &f)
	upload := func(query, name string) letta.FileMetadata {
		t.Helper()
		r := c.uploadFile("/v1/folders/"+f.ID+"/upload", query, name, "text/markdown", []byte("# Notes\n\nThe code is ZEBRA-42.\n"))
		var m letta.FileMetadata
		if err := json.Unmarshal(r.body, &m); err != nil || r.status != 200 {
			t.Fatalf("upload %s: %d %s", name, r.status, r.body)
		}
		c.waitFile(f.ID, m.ID)
		return m
	}
	listed := func() map[string]string {
		t.Helper()
		var list []letta.FileMetadata
		c.ok("GET", "/v1/folders/"+f.ID+"/files", "", &list)
		out := map[string]string{}
		for _, m := range list {
			out[m.ID] = *m.FileName
		}
		return out
	}
	first, second, third := upload("", "notes.md"), upload("", "notes.md"), upload("", "notes.md")
	custom := upload("name=a/b/custom.md", "ignored.md")
	for _, tc := range []struct {
		m            letta.FileMetadata
		stored, list string
	}{{first, "docs/notes.md", "notes.md"}, {second, "docs/notes_(1).md", "notes_(1).md"}, {third, "docs/notes_(2).md", "notes_(2).md"},
		{custom, "docs/a/b/custom.md", "a/b/custom.md"}} {
		var got letta.FileMetadata
		c.ok("GET", "/v1/folders/"+f.ID+"/files/"+tc.m.ID, "", &got)
		if *tc.m.FileName != tc.stored || *got.FileName != tc.list || listed()[tc.m.ID] != tc.list {
			t.Errorf("uploaded as %q, read as %q, listed as %q; want %q, %q", *tc.m.FileName, *got.FileName, listed()[tc.m.ID], tc.stored, tc.list)
		}
	}

	a := c.createAgent(`{"name":"reader"}`)
	c.ok("PATCH", "/v1/agents/"+a.ID+"/folders/attach/"+f.ID, "", nil)
	replaced := upload("duplicate_handling=replace", "notes.md")
	if *replaced.FileName != "notes.md" || listed()[replaced.ID] != "notes.md" {
		t.Errorf("a replacing upload is named %q, listed %q; Letta names it notes.md", *replaced.FileName, listed()[replaced.ID])
	}
	var page letta.PaginatedAgentFiles
	c.ok("GET", "/v1/agents/"+a.ID+"/files?limit=50", "", &page)
	var views []string
	for _, v := range page.Files {
		views = append(views, v.FileName)
	}
	slices.Sort(views)
	if want := []string{"docs/a/b/custom.md", "docs/notes_(1).md", "docs/notes_(2).md", "notes.md"}; !slices.Equal(views, want) {
		t.Errorf("the agent's files %v, want %v", views, want)
	}
	// The agent's tools and prompt know the stored names.
	double.Script(
		llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "grep_files", Arguments: `{"pattern":"ZEBRA"}`}}},
		llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "open_files", Arguments: `{"file_requests":[{"file_name":"notes.md"}],"close_all_others":true}`}}},
		llmtest.Reply{Text: "ZEBRA-42."},
	)
	var resp struct {
		Messages []struct {
			MessageType string `json:"message_type"`
			ToolReturn  string `json:"tool_return"`
		} `json:"messages"`
	}
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"The code?"}]}`, &resp)
	var returns []string
	for _, m := range resp.Messages {
		if m.MessageType == "tool_return_message" {
			returns = append(returns, m.ToolReturn)
		}
	}
	if len(returns) != 2 || !strings.Contains(returns[0], "=== notes.md:1 ===") || !strings.Contains(returns[0], "=== docs/notes_(1).md:1 ===") ||
		!strings.HasPrefix(returns[1], "* Opened notes.md") {
		t.Errorf("file tools answered %q", returns)
	}
	if sys := double.LastRequest().System; !strings.Contains(sys, `<file status="open" name="notes.md">`) || !strings.Contains(sys, `<file status="closed" name="docs/notes_(1).md">`) {
		t.Errorf("the prompt names the files otherwise:\n%s", sys)
	}
	var meta letta.FoldersMetadata
	c.ok("GET", "/v1/folders/metadata?include_detailed_per_source_metadata=true", "", &meta)
	var stats []string
	for _, s := range meta.Sources {
		for _, fs := range s.Files {
			stats = append(stats, fs.FileName)
		}
	}
	slices.Sort(stats)
	if !slices.Equal(stats, views) {
		t.Errorf("folder metadata names %v, want the stored names %v", stats, views)
	}
	var passages []letta.Passage
	c.ok("GET", "/v1/folders/"+f.ID+"/passages?limit=100", "", &passages)
	names := map[string]bool{}
	for _, p := range passages {
		names[*p.FileName] = true
	}
	if !names["docs/notes_(1).md"] || !names["notes.md"] || names["notes_(1).md"] {
		t.Errorf("passages name files %v", names)
	}
}
