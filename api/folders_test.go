package api

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// upload posts a file to a folder's upload route (query: its query
// string) as a multipart form, the way the SDKs do.
func (c *client) uploadFile(path, query, name, contentType string, data []byte) response {
	c.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + name + `"`}
	if contentType != "" {
		h["Content-Type"] = []string{contentType}
	}
	part, err := mw.CreatePart(h)
	if err != nil {
		c.t.Fatal(err)
	}
	part.Write(data)
	mw.Close()
	req, err := http.NewRequest("POST", c.base+path+"?"+query, &body)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, out}
}

// uploadOK uploads a file that must be taken, and waits for its
// processing to end.
func (c *client) uploadOK(folderID, query, name, contentType string, data []byte) letta.FileMetadata {
	c.t.Helper()
	r := c.uploadFile("/v1/folders/"+folderID+"/upload", query, name, contentType, data)
	if r.status != 200 {
		c.t.Fatalf("upload %s: %d %s", name, r.status, r.body)
	}
	var f letta.FileMetadata
	if err := json.Unmarshal(r.body, &f); err != nil {
		c.t.Fatal(err)
	}
	return c.waitFile(folderID, f.ID)
}

// waitFile polls a file until its processing ends, as clients do.
func (c *client) waitFile(folderID, fileID string) letta.FileMetadata {
	c.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var f letta.FileMetadata
		c.ok("GET", "/v1/folders/"+folderID+"/files/"+fileID, "", &f)
		if f.ProcessingStatus == letta.FileCompleted || f.ProcessingStatus == letta.FileError {
			return f
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("file %s still %s", fileID, f.ProcessingStatus)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newFolderServer serves a service with the LLM double as its model and
// embedder, on the real clock: files and views are ordered by time.
func newFolderServer(t *testing.T) (*client, *llmtest.Server) {
	t.Helper()
	double := llmtest.NewServer(t)
	c, _ := newTurnServerAt(t, double.OpenAIProvider(), clock.Real{}, Options{}, func(cfg *agent.Config) { cfg.Embedder = double.EmbeddingRegistry() })
	return c, double
}

const notesMD = "# Launch notes\n\nThe launch code is ZEBRA-42. It opens the hangar.\n\nLunch is served at noon. Bring a badge."

// Spec: folders as Letta serves them under /v1/folders and /v1/sources:
// create (name required and unique, embedding config with its chunk
// size), list by name, count, rename, metadata, delete; malformed and
// missing ids get Letta's 422 and 404.
func TestFolderCRUD(t *testing.T) {
	c, _ := newFolderServer(t)
	c.expect(422, "POST", "/v1/folders", `{"description":"no name"}`)
	var f letta.Folder
	c.ok("POST", "/v1/folders", `{"name":"docs","description":"manuals","instructions":"read me first","embedding_chunk_size":100}`, &f)
	if !strings.HasPrefix(f.ID, "source-") || f.EmbeddingConfig == nil || *f.EmbeddingConfig.EmbeddingChunkSize != 100 ||
		f.EmbeddingConfig.EmbeddingModel != "text-embedding-3-small" || *f.Instructions != "read me first" {
		t.Fatalf("created %+v", f)
	}
	c.expect(409, "POST", "/v1/folders", `{"name":"docs"}`)
	c.expect(400, "POST", "/v1/folders", `{"name":"x","embedding":"nope"}`)
	var other letta.Folder
	c.ok("POST", "/v1/sources", `{"name":"other"}`, &other)
	var list []letta.Folder
	c.ok("GET", "/v1/folders", "", &list)
	if len(list) != 2 || list[0].ID != f.ID {
		t.Errorf("list, oldest first: %+v", list)
	}
	c.ok("GET", "/v1/folders?name=other", "", &list)
	if len(list) != 1 || list[0].ID != other.ID {
		t.Errorf("by name: %+v", list)
	}
	if n := c.count("/v1/folders/count"); n != 2 {
		t.Errorf("count %d", n)
	}
	c.ok("PATCH", "/v1/sources/"+f.ID, `{"name":"manuals"}`, &f)
	if f.Name != "manuals" || *f.Description != "manuals" {
		t.Errorf("renamed %+v", f)
	}
	c.expect(409, "PATCH", "/v1/folders/"+other.ID, `{"name":"manuals"}`)
	c.ok("POST", "/v1/folders", `{"name":"docs"}`, nil) // the old name is free again
	c.expect(422, "GET", "/v1/folders/agent-00000000-0000-4000-8000-000000000000", "")
	c.expect(404, "GET", "/v1/folders/source-00000000-0000-4000-8000-000000000000", "")
	c.ok("DELETE", "/v1/folders/"+other.ID, "", nil)
	c.expect(404, "GET", "/v1/sources/"+other.ID, "")
	c.expect(404, "DELETE", "/v1/folders/"+other.ID, "")
	var meta letta.FoldersMetadata
	c.ok("GET", "/v1/folders/metadata", "", &meta)
	if meta.TotalSources != 2 || meta.TotalFiles != 0 {
		t.Errorf("metadata %+v", meta)
	}
}

// Spec: uploads of Markdown, PDF, HTML, JSON and code are processed in the
// background to completed, their text extracted (PDF text, HTML without
// markup) and chunked into embedded passages; duplicates are handled as
// asked (suffix, error, skip, replace); an unsupported type (415), a file
// over the limit (413) or a bad duplicate_handling (422) stores nothing.
func TestFolderUploads(t *testing.T) {
	c, _ := newFolderServer(t)
	var f letta.Folder
	c.ok("POST", "/v1/folders", `{"name":"docs"}`, &f)
	md := c.uploadOK(f.ID, "", "notes.md", "text/markdown", []byte(notesMD))
	if md.ProcessingStatus != letta.FileCompleted || *md.FileName != "notes.md" || *md.FileType != "text/markdown" ||
		md.TotalChunks == nil || *md.TotalChunks < 1 || *md.ChunksEmbedded != *md.TotalChunks || *md.FileSize != int64(len(notesMD)) {
		t.Fatalf("markdown %+v", md)
	}
	pdf := c.uploadOK(f.ID, "", "launch.pdf", "application/pdf", kelpietest.PDF("Flight manual", "The pilot is Ada Lovelace."))
	var withText letta.FileMetadata
	c.ok("GET", "/v1/folders/"+f.ID+"/files/"+pdf.ID+"?include_content=true", "", &withText)
	if pdf.ProcessingStatus != letta.FileCompleted || withText.Content == nil || !strings.Contains(*withText.Content, "The pilot is Ada Lovelace.") {
		t.Fatalf("pdf %+v content %v", pdf, withText.Content)
	}
	html := c.uploadOK(f.ID, "", "page.html", "", []byte("<html><head><style>p{}</style><script>var x</script></head><body><h1>Title</h1><p>Some <b>bold</b> text.</p></body></html>"))
	c.ok("GET", "/v1/sources/"+f.ID+"/files/"+html.ID+"?include_content=true", "", &withText)
	if got := *withText.Content; strings.Contains(got, "<") || strings.Contains(got, "var x") || !strings.Contains(got, "Title") || !strings.Contains(got, "bold") {
		t.Errorf("html text %q", got)
	}
	c.uploadOK(f.ID, "", "data.json", "application/json", []byte(`{"a": 1}`))
	code := c.uploadOK(f.ID, "", "main.go", "application/octet-stream", []byte("package main\n\nfunc main() {}\n"))
	if *code.FileType != "text/x-go" {
		t.Errorf("a Go file sent as octet-stream: type %q", *code.FileType)
	}

	again := c.uploadOK(f.ID, "", "notes.md", "text/markdown", []byte(notesMD))
	if *again.FileName != "notes_(1).md" || *again.OriginalFileName != "notes.md" {
		t.Errorf("suffixed %+v", again)
	}
	if d := c.uploadFile("/v1/folders/"+f.ID+"/upload", "duplicate_handling=error", "notes.md", "", []byte("x")); d.status != 400 {
		t.Errorf("duplicate error: %d %s", d.status, d.body)
	}
	skip := c.uploadFile("/v1/folders/"+f.ID+"/upload", "duplicate_handling=skip", "notes.md", "", []byte("x"))
	var skipped letta.FileMetadata
	json.Unmarshal(skip.body, &skipped)
	if skip.status != 200 || skip.header.Get("X-Upload-Result") != "skipped" || skipped.ID != md.ID {
		t.Errorf("skip: %d %v %s", skip.status, skip.header, skip.body)
	}
	replaced := c.uploadOK(f.ID, "duplicate_handling=replace", "launch.pdf", "", kelpietest.PDF("Second edition"))
	c.expect(404, "GET", "/v1/folders/"+f.ID+"/files/"+pdf.ID, "")
	if *replaced.FileName != "launch.pdf" {
		t.Errorf("replaced %+v", replaced)
	}
	if r := c.uploadFile("/v1/folders/"+f.ID+"/upload", "duplicate_handling=sometimes", "z.md", "", []byte("x")); r.status != 422 {
		t.Errorf("bad duplicate_handling: %d %s", r.status, r.body)
	}
	named := c.uploadOK(f.ID, "name=renamed.txt", "orig.txt", "text/plain", []byte("hello"))
	if *named.FileName != "renamed.txt" {
		t.Errorf("name override: %+v", named)
	}

	before := c.snapshot()
	if r := c.uploadFile("/v1/folders/"+f.ID+"/upload", "", "tool.exe", "application/octet-stream", []byte("MZ")); r.status != 415 ||
		!strings.Contains(string(r.body), "Unsupported file type") {
		t.Errorf("exe: %d %s", r.status, r.body)
	}
	if r := c.uploadFile("/v1/folders/"+f.ID+"/upload", "", "big.txt", "text/plain", bytes.Repeat([]byte("a"), agent.MaxUploadBytes+1)); r.status != 413 {
		t.Errorf("too large: %d %.200s", r.status, r.body)
	}
	if r := c.uploadFile("/v1/folders/source-00000000-0000-4000-8000-000000000000/upload", "", "a.txt", "", []byte("a")); r.status != 404 {
		t.Errorf("missing folder: %d %s", r.status, r.body)
	}
	if after := c.snapshot(); after != before {
		t.Errorf("refused uploads changed the store")
	}

	var passages []letta.Passage
	c.ok("GET", "/v1/sources/"+f.ID+"/passages?order=asc&limit=1", "", &passages)
	if len(passages) != 1 || !strings.Contains(passages[0].Text, "ZEBRA-42") || *passages[0].FileID != md.ID ||
		*passages[0].SourceID != f.ID || *passages[0].FileName != "docs/notes.md" || len(passages[0].Embedding) != 1536 {
		t.Errorf("folder passages %+v", passages)
	}
	var list []letta.FileMetadata
	c.ok("GET", "/v1/folders/"+f.ID+"/files", "", &list)
	if len(list) != 7 || list[0].ID != named.ID || list[0].Content != nil {
		t.Errorf("files, newest first: %d %+v", len(list), list[0])
	}
	c.ok("GET", "/v1/folders/"+f.ID+"/files?order=asc&limit=2", "", &list)
	if len(list) != 2 || list[0].ID != md.ID {
		t.Errorf("files, oldest first: %+v", list)
	}
	var meta letta.FoldersMetadata
	c.ok("GET", "/v1/folders/metadata?include_detailed_per_source_metadata=true", "", &meta)
	if meta.TotalFiles != 7 || len(meta.Sources[0].Files) != 7 {
		t.Errorf("metadata %+v", meta)
	}
	var g letta.Folder
	c.ok("POST", "/v1/folders", `{"name":"elsewhere"}`, &g)
	c.expect(404, "GET", "/v1/folders/"+g.ID+"/files/"+md.ID, "")
	c.expect(404, "DELETE", "/v1/folders/"+g.ID+"/"+md.ID, "")
	if r := c.do("DELETE", "/v1/folders/"+f.ID+"/"+md.ID, ""); r.status != 204 {
		t.Errorf("delete file: %d %s", r.status, r.body)
	}
	c.expect(404, "GET", "/v1/folders/"+f.ID+"/files/"+md.ID, "")
}

// Spec: attaching a folder opens its files for the agent (within its
// limit), gives it the file tools and shows the folder and its open files
// in its system prompt's <directories>; files can be listed, closed,
// opened and all closed; detaching the last folder removes the files and
// the tools.
func TestFolderAttachAndOpenFiles(t *testing.T) {
	c, _ := newFolderServer(t)
	var f letta.Folder
	c.ok("POST", "/v1/folders", `{"name":"docs","instructions":"Consult before answering."}`, &f)
	md := c.uploadOK(f.ID, "", "notes.md", "", []byte(notesMD))
	txt := c.uploadOK(f.ID, "", "todo.txt", "", []byte("buy milk\n\ncall Bob\n"))
	a := c.createAgent(`{"name":"reader","context_window_limit":8000}`)
	c.expect(404, "PATCH", "/v1/agents/"+a.ID+"/folders/attach/source-00000000-0000-4000-8000-000000000000", "")
	c.expect(422, "PATCH", "/v1/agents/"+a.ID+"/folders/attach/file-00000000-0000-4000-8000-000000000000", "")
	if r := c.do("PATCH", "/v1/agents/"+a.ID+"/folders/attach/"+f.ID, ""); r.status != 200 || string(r.body) != "null" {
		t.Fatalf("attach: %d %s", r.status, r.body)
	}
	var agents []string
	c.ok("GET", "/v1/folders/"+f.ID+"/agents", "", &agents)
	if !slices.Equal(agents, []string{a.ID}) {
		t.Errorf("folder agents %v", agents)
	}
	var folders []letta.Folder
	c.ok("GET", "/v1/agents/"+a.ID+"/folders", "", &folders)
	if len(folders) != 1 || folders[0].ID != f.ID {
		t.Errorf("agent folders %+v", folders)
	}
	var tools []letta.Tool
	c.ok("GET", "/v1/agents/"+a.ID+"/tools", "", &tools)
	for _, n := range []string{"open_files", "grep_files", "semantic_search_files"} {
		if !slices.ContainsFunc(tools, func(t letta.Tool) bool { return t.Name == n }) {
			t.Errorf("tool %s not attached: %v", n, tools)
		}
	}
	var page letta.PaginatedAgentFiles
	c.ok("GET", "/v1/agents/"+a.ID+"/files", "", &page)
	if len(page.Files) != 2 || page.HasMore {
		t.Fatalf("agent files %+v", page)
	}
	for _, af := range page.Files {
		if !af.IsOpen || af.FolderName != "docs" || af.VisibleContent == nil || !strings.HasPrefix(*af.VisibleContent, "[Viewing file start") {
			t.Errorf("attached file %+v", af)
		}
	}
	sys := systemPrompt(t, c, a.ID)
	for _, want := range []string{"<directories>", "- max_files_open=3", `<directory name="docs">`, "<instructions>Consult before answering.</instructions>",
		`<file status="open" name="docs/notes.md">`, "1: # Launch notes The launch code is ZEBRA-42.", "1: buy milk", "2: call Bob"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system prompt lacks %q:\n%s", want, sys)
		}
	}

	if r := c.do("PATCH", "/v1/agents/"+a.ID+"/files/"+md.ID+"/close", ""); r.status != 200 || !strings.Contains(string(r.body), "successfully closed") {
		t.Errorf("close: %d %s", r.status, r.body)
	}
	c.ok("GET", "/v1/agents/"+a.ID+"/files?is_open=false", "", &page)
	if len(page.Files) != 1 || page.Files[0].FileID != md.ID || page.Files[0].VisibleContent != nil {
		t.Errorf("closed files %+v", page)
	}
	if sys := systemPrompt(t, c, a.ID); !strings.Contains(sys, `<file status="closed" name="docs/notes.md">`) || strings.Contains(sys, "ZEBRA") {
		t.Errorf("closed file still shown:\n%s", sys)
	}
	var closed []string
	c.ok("PATCH", "/v1/agents/"+a.ID+"/files/"+md.ID+"/open", "", &closed)
	if len(closed) != 0 {
		t.Errorf("open closed %v", closed)
	}
	c.ok("PATCH", "/v1/agents/"+a.ID+"/files/close-all", "", &closed)
	slices.Sort(closed)
	if !slices.Equal(closed, []string{"docs/notes.md", "docs/todo.txt"}) {
		t.Errorf("close-all %v", closed)
	}
	c.expect(404, "PATCH", "/v1/agents/"+a.ID+"/files/file-00000000-0000-4000-8000-000000000000/open", "")
	var g letta.Folder
	c.ok("POST", "/v1/folders", `{"name":"unattached"}`, &g)
	stray := c.uploadOK(g.ID, "", "x.txt", "", []byte("x"))
	c.expect(404, "PATCH", "/v1/agents/"+a.ID+"/files/"+stray.ID+"/open", "")

	// Three files open at most (a context window of 8k): a fourth file
	// uploaded to the folder opens, closing the one looked at longest ago.
	c.ok("PATCH", "/v1/agents/"+a.ID+"/files/"+md.ID+"/open", "", &closed)
	c.ok("PATCH", "/v1/agents/"+a.ID+"/files/"+txt.ID+"/open", "", &closed)
	c.uploadOK(f.ID, "", "third.txt", "", []byte("three"))
	fourth := c.uploadOK(f.ID, "", "fourth.txt", "", []byte("four"))
	c.ok("GET", "/v1/agents/"+a.ID+"/files?is_open=true", "", &page)
	if len(page.Files) != 3 || slices.ContainsFunc(page.Files, func(af letta.AgentFileAttachment) bool { return af.FileID == md.ID }) {
		t.Errorf("open after the limit: %+v", page.Files)
	}
	c.ok("GET", "/v1/agents/"+a.ID+"/files?limit=2", "", &page)
	if len(page.Files) != 2 || !page.HasMore || page.NextCursor == nil {
		t.Errorf("first page %+v", page)
	}
	c.ok("GET", "/v1/agents/"+a.ID+"/files?limit=2&after="+*page.NextCursor, "", &page)
	if len(page.Files) != 2 || page.HasMore {
		t.Errorf("second page %+v", page)
	}
	// Deleting a file removes it from the agent's view.
	c.do("DELETE", "/v1/folders/"+f.ID+"/"+fourth.ID, "")
	c.ok("GET", "/v1/agents/"+a.ID+"/files", "", &page)
	if len(page.Files) != 3 {
		t.Errorf("after deleting a file: %+v", page.Files)
	}

	var st letta.AgentState
	c.ok("PATCH", "/v1/agents/"+a.ID+"/sources/detach/"+f.ID, "", &st)
	if st.ID != a.ID || slices.ContainsFunc(st.Tools, func(t any) bool { return strings.Contains(jsonOf(t), `"grep_files"`) }) {
		t.Errorf("detach answered %+v", st.Tools)
	}
	c.ok("GET", "/v1/agents/"+a.ID+"/files", "", &page)
	if len(page.Files) != 0 {
		t.Errorf("files after detaching: %+v", page.Files)
	}
	if sys := systemPrompt(t, c, a.ID); strings.Contains(sys, "<directories>") {
		t.Errorf("directories after detaching:\n%s", sys)
	}
	c.ok("PATCH", "/v1/agents/"+a.ID+"/folders/attach/"+f.ID, "", nil)
	c.ok("DELETE", "/v1/folders/"+f.ID, "", nil)
	c.ok("GET", "/v1/agents/"+a.ID+"/folders", "", &folders)
	if len(folders) != 0 {
		t.Errorf("folders after deleting the folder: %+v", folders)
	}
	c.ok("DELETE", "/v1/agents/"+a.ID, "", nil)
	c.ok("GET", "/v1/folders/"+g.ID+"/agents", "", &agents)
	if len(agents) != 0 {
		t.Errorf("agents of a folder after deleting the agent: %v", agents)
	}
}

func jsonOf(v any) string {
	data, _ := json.Marshal(v)
	return string(data)
}

// systemPrompt is the agent's system prompt as a model would see it.
func systemPrompt(t *testing.T, c *client, agentID string) string {
	t.Helper()
	var msgs []map[string]any
	c.ok("GET", "/v1/agents/"+agentID+"/messages?order=asc&limit=1", "", &msgs)
	if len(msgs) == 0 || msgs[0]["message_type"] != "system_message" {
		t.Fatalf("first message %v", msgs)
	}
	s, _ := msgs[0]["content"].(string)
	return s
}

// Spec: an agent with a folder calls grep_files, open_files and
// semantic_search_files as Letta runs them, and sees the files' text.
func TestFileToolsInATurn(t *testing.T) {
	c, double := newFolderServer(t)
	var f letta.Folder
	c.ok("POST", "/v1/folders", `{"name":"docs"}`, &f)
	c.uploadOK(f.ID, "", "notes.md", "", []byte(notesMD))
	c.uploadOK(f.ID, "", "manual.pdf", "", kelpietest.PDF("Chapter one", "The hangar door code is 7731."))
	a := c.createAgent(`{"name":"reader"}`)
	c.ok("PATCH", "/v1/agents/"+a.ID+"/folders/attach/"+f.ID, "", nil)
	c.ok("PATCH", "/v1/agents/"+a.ID+"/files/close-all", "", nil)
	call := func(name, args string) llmtest.Reply {
		return llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: name, Arguments: args}}}
	}
	double.Script(
		call("grep_files", `{"pattern":"zebra-\\d+"}`),
		call("open_files", `{"file_requests":[{"file_name":"docs/manual.pdf","offset":1,"length":1}]}`),
		call("semantic_search_files", `{"query":"lunch badge"}`),
		call("open_files", `{"file_requests":[{"file_name":"docs/nope.md"}]}`),
		llmtest.Reply{Text: "The code is ZEBRA-42."},
	)
	var resp struct {
		Messages []struct {
			MessageType string `json:"message_type"`
			ToolReturn  string `json:"tool_return"`
			Status      string `json:"status"`
		} `json:"messages"`
	}
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"messages":[{"role":"user","content":"What is the launch code?"}]}`, &resp)
	var returns []string
	for _, m := range resp.Messages {
		if m.MessageType == "tool_return_message" {
			returns = append(returns, m.Status+": "+m.ToolReturn)
		}
	}
	if len(returns) != 4 {
		t.Fatalf("tool returns %q", returns)
	}
	for i, want := range []string{
		"success: Found 1 total matches across 1 files (showing matches 1-1 of 1)",
		"success: * Opened docs/manual.pdf (lines 2-2)",
		"success: Found ",
		"error: ",
	} {
		if !strings.HasPrefix(returns[i], want) {
			t.Errorf("return %d = %q, want it to start %q", i, returns[i], want)
		}
	}
	if !strings.Contains(returns[0], "=== docs/notes.md:1 ===\n> 1: # Launch notes The launch code is ZEBRA-42.\n  2: It opens the hangar.") {
		t.Errorf("grep result:\n%s", returns[0])
	}
	if !strings.Contains(returns[2], "Lunch is served at noon.") {
		t.Errorf("semantic search result:\n%s", returns[2])
	}
	if !strings.Contains(returns[3], "docs/nope.md not attached") {
		t.Errorf("open of a missing file: %s", returns[3])
	}
	reqs := double.Requests()
	last := reqs[len(reqs)-1]
	if !strings.Contains(last.System, "[Viewing lines 2 to 2 (out of 2 lines)]\n2: The hangar door code is 7731.") {
		t.Errorf("the opened part is not in the prompt:\n%s", last.System)
	}
}
