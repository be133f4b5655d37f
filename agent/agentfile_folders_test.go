package agent_test

import (
	"context"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Spec: an agent's folders travel in its agent file as Letta writes them
// (sources, files with their text, the agent's source_ids and
// files_agents). Imported into a fresh server, the folder is recreated
// with its file, whose text is embedded to completed; the agent has the
// folder attached, the file open with the same visible text, in its
// system prompt. Imported where the folder's name is taken, the new folder
// gets Letta's "_<8 hex>" suffix. A file whose references are broken is
// refused whole.
func TestAgentFileRoundTripWithFolders(t *testing.T) {
	ctx := context.Background()
	src := folderService(t, kv.NewDB(kv.NewMemEngine()), &stallingEmbedder{})
	name := "docs"
	folder, err := src.Folders.Create(ctx, letta.FolderCreate{Name: &name, Instructions: new("Read me.")})
	if err != nil {
		t.Fatal(err)
	}
	text := "# Notes\n\nThe launch code is 4417.\n"
	up, err := src.Folders.Upload(ctx, folder.ID, agent.Upload{FileName: "notes.md", Data: []byte(text), Duplicate: agent.DuplicateSuffix})
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, src, folder.ID, up.File.ID, letta.FileCompleted)
	a, err := src.Agents.Create(ctx, createReq("Librarian", "The user is Ada."))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Agents.AttachFolder(ctx, a.ID, folder.ID); err != nil {
		t.Fatal(err)
	}

	f, err := src.Agents.Export(ctx, a.ID, agent.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fa := f.Agents[0]
	if len(f.Sources) != 1 || f.Sources[0].ID != "source-0" || f.Sources[0].Name != "docs" || len(f.Files) != 1 ||
		deref(f.Files[0].FileName) != "docs/notes.md" || deref(f.Files[0].Content) != text || f.Files[0].SourceID != "source-0" {
		t.Fatalf("exported sources %s files %s", jsonText(f.Sources), jsonText(f.Files))
	}
	if len(fa.SourceIDs) != 1 || len(fa.FilesAgents) != 1 || fa.FilesAgents[0].FileID != "file-0" || !fa.FilesAgents[0].IsOpen ||
		fa.FilesAgents[0].AgentID != "agent-0" || !strings.Contains(deref(fa.FilesAgents[0].VisibleContent), "4417") {
		t.Fatalf("exported agent's folders %v, views %s", fa.SourceIDs, jsonText(fa.FilesAgents))
	}

	dstStore := kv.NewDB(kv.NewMemEngine())
	dst := folderService(t, dstStore, &stallingEmbedder{})
	b := importOne(t, dst, roundTrip(t, f))
	checkImportedFolder(t, dst, b, "docs", text)

	// Into the server that has a folder of that name.
	c := importOne(t, src, roundTrip(t, f))
	got := checkImportedFolder(t, src, c, "docs_", text)
	if len(got) != len("docs_")+8 {
		t.Errorf("renamed folder %q, want docs_ and 8 hex digits", got)
	}

	before := countFolders(t, dst)
	broken := roundTrip(t, f)
	broken.Files[0].SourceID = "source-7"
	broken.Agents[0].FilesAgents[0].FileID = "file-9"
	_, err = dst.Agents.Import(ctx, broken, agent.ImportOptions{})
	if agent.KindOf(err) != letta.KindInvalid || !strings.Contains(err.Error(), "File file-0 references non-existent source source-7") ||
		!strings.Contains(err.Error(), "File-agent relationship references non-existent file file-9") {
		t.Errorf("a file with broken references: %v", err)
	}
	if n := countFolders(t, dst); n != before {
		t.Errorf("a refused import left %d folders, had %d", n, before)
	}
	checkStore(t, dstStore)
}

func importOne(t *testing.T, svc *agent.Service, f *letta.AgentFile) string {
	t.Helper()
	ids, err := svc.Agents.Import(context.Background(), f, agent.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return ids[0]
}

// checkImportedFolder checks that agent id has one folder whose name
// starts with prefix, holding one file that completes with text, open in
// the agent's system prompt; it returns the folder's name.
func checkImportedFolder(t *testing.T, svc *agent.Service, id, prefix, text string) string {
	t.Helper()
	ctx := context.Background()
	folders, err := svc.Agents.Folders(ctx, id, letta.Page{Order: letta.Asc, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(folders) != 1 || !strings.HasPrefix(folders[0].Name, prefix) || deref(folders[0].Instructions) != "Read me." {
		t.Fatalf("imported agent's folders %s", jsonText(folders))
	}
	fs, err := svc.Folders.ListFiles(ctx, folders[0].ID, letta.Page{Order: letta.Asc, Limit: 10}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || deref(fs[0].FileName) != "notes.md" || deref(fs[0].Content) != text {
		t.Fatalf("imported folder's files %s", jsonText(fs))
	}
	done := waitStatus(t, svc, folders[0].ID, fs[0].ID, letta.FileCompleted)
	if *done.ChunksEmbedded != *done.TotalChunks || *done.TotalChunks < 1 {
		t.Errorf("imported file processed to %+v", done)
	}
	views, err := svc.Agents.Files(ctx, id, agent.FileFilter{}, letta.Page{Order: letta.Asc, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(views.Files) != 1 || !views.Files[0].IsOpen || !strings.Contains(deref(views.Files[0].VisibleContent), "4417") {
		t.Fatalf("imported agent's files %s", jsonText(views))
	}
	ms, err := svc.Messages.List(ctx, id, agent.MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sys, ok := ms[0].(*letta.SystemMessage); !ok || !strings.Contains(sys.Content, "4417") || !strings.Contains(sys.Content, folders[0].Name+"/notes.md") {
		t.Errorf("imported agent's system message does not show its open file: %s", jsonText(ms[0]))
	}
	return folders[0].Name
}

func countFolders(t *testing.T, svc *agent.Service) int {
	t.Helper()
	n, err := svc.Folders.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
