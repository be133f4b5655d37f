package agent

import (
	"fmt"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Folders in agent files, as Letta's serialization manager writes and
// reads them: an agent names its folders (source_ids) and its views of
// their files (files_agents); the file lists those folders (sources) and
// those files with their text (files). An import creates the folders
// anew (a name already taken gets "_" and 8 hex digits, as Letta does),
// stores each file's text and embeds it in the background (so the file is
// "embedding" until its passages are stored, where Letta shows "parsing"),
// attaches the folders and opens the views within the agent's limit.

// folders exports the folders attached to an agent and its views of their
// files, with those files.
func (x *exporter) folders(fa *letta.AgentFileAgent, agentID string) error {
	folderIDs, err := schema.AgentFolderIDs(x.txn, agentID)
	if err != nil {
		return err
	}
	for _, id := range folderIDs {
		sid, err := x.source(id)
		if err != nil {
			return err
		}
		fa.SourceIDs = append(fa.SourceIDs, sid)
	}
	views, err := schema.AgentFileViews(x.txn, agentID)
	if err != nil {
		return err
	}
	for _, v := range views {
		fid, err := x.folderFile(v.FileID)
		if err != nil {
			return err
		}
		fv := letta.AgentFileFileAgent{ID: v.ID, AgentID: fa.ID, FileID: fid, SourceID: x.ids[v.FolderID],
			FileName: v.FileName, IsOpen: v.IsOpen, LastAccessedAt: &letta.Timestamp{Time: v.LastAccessedAt},
			StartLine: v.StartLine, EndLine: v.EndLine}
		if v.IsOpen {
			fv.VisibleContent = new(v.VisibleContent)
		}
		fa.FilesAgents = append(fa.FilesAgents, fv)
	}
	return nil
}

// source is the file's id of a folder, exported when first met.
func (x *exporter) source(folderID string) (string, error) {
	id, fresh := x.fileID("source", folderID)
	if !fresh {
		return id, nil
	}
	f, err := schema.GetFolder(x.txn, folderID)
	if err != nil {
		return "", err
	}
	x.file.Sources = append(x.file.Sources, letta.AgentFileSource{ID: id, Name: f.Name, Description: f.Description,
		Instructions: f.Instructions, Metadata: f.Metadata, EmbeddingConfig: renderFolder(f).EmbeddingConfig})
	return id, nil
}

// folderFile is the file's id of a stored file, exported with its text when
// first met.
func (x *exporter) folderFile(fileID string) (string, error) {
	id, fresh := x.fileID("file", fileID)
	if !fresh {
		return id, nil
	}
	f, err := schema.GetFile(x.txn, fileID)
	if err != nil {
		return "", err
	}
	folder, err := schema.GetFolder(x.txn, f.FolderID)
	if err != nil {
		return "", err
	}
	sid, err := x.source(f.FolderID)
	if err != nil {
		return "", err
	}
	text, err := schema.GetFileText(x.txn, f.ID)
	if err != nil {
		return "", err
	}
	ff := letta.AgentFileFile{ID: id, SourceID: sid, FileName: new(files.ViewName(folder.Name, f)),
		OriginalFileName: new(f.OriginalFileName), FileType: new(f.FileType), FileSize: new(f.FileSize),
		ProcessingStatus: f.Status, TotalChunks: f.TotalChunks, ChunksEmbedded: f.ChunksEmbedded}
	if f.ErrorMessage != "" {
		ff.ErrorMessage = new(f.ErrorMessage)
	}
	if text != "" {
		ff.Content = &text
	}
	x.file.Files = append(x.file.Files, ff)
	return id, nil
}

// checkFileFolders checks a file's folders, files and views as Letta's
// importer does (ids, references), and what this server needs of them
// (names, sizes, an embedding it knows); unique notes each id.
func checkFileFolders(f *letta.AgentFile, unique func(string)) []string {
	var errs []string
	note := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	sources := map[string]bool{}
	for _, s := range f.Sources {
		note(checkFileID("source", s.ID))
		unique(s.ID)
		sources[s.ID] = true
		if err := checkFolderName(s.Name); err != nil {
			errs = append(errs, fmt.Sprintf("source %s: %v", s.ID, err))
		}
	}
	fileIDs, perSource, names := map[string]bool{}, map[string]int{}, map[[2]string]bool{}
	for _, file := range f.Files {
		note(checkFileID("file", file.ID))
		unique(file.ID)
		fileIDs[file.ID] = true
		if !sources[file.SourceID] {
			errs = append(errs, fmt.Sprintf("File %s references non-existent source %s", file.ID, file.SourceID))
		}
		if perSource[file.SourceID]++; perSource[file.SourceID] == MaxFilesPerFolder+1 {
			errs = append(errs, fmt.Sprintf("source %s has more than %d files", file.SourceID, MaxFilesPerFolder))
		}
		if file.Content != nil && len(*file.Content) > files.MaxUploadBytes {
			errs = append(errs, fmt.Sprintf("file %s: its content is %d bytes, over the limit of %d", file.ID, len(*file.Content), files.MaxUploadBytes))
		}
		stored, _ := importedFileName(f, file)
		name := [2]string{file.SourceID, stored}
		if names[name] {
			errs = append(errs, fmt.Sprintf("file %s: source %s has two files named %q", file.ID, file.SourceID, letta.Clip(name[1])))
		}
		names[name] = true
	}
	for _, a := range f.Agents {
		for _, id := range a.SourceIDs {
			if !sources[id] {
				errs = append(errs, fmt.Sprintf("agent %s names source %s, which the file does not have", a.ID, id))
			}
		}
		for _, v := range a.FilesAgents {
			if !fileIDs[v.FileID] {
				errs = append(errs, "File-agent relationship references non-existent file "+v.FileID)
			}
			if !sources[v.SourceID] {
				errs = append(errs, "File-agent relationship references non-existent source "+v.SourceID)
			}
			if v.AgentID != a.ID {
				errs = append(errs, fmt.Sprintf("File-agent relationship has mismatched agent_id %s vs %s", v.AgentID, a.ID))
			}
		}
	}
	return errs
}

// importedFileName is the name a file of the file gets in its folder:
// Letta's file_name without its folder's name, else the original name.
// unprefixed is true for a file_name without its folder's name (one a
// replacing upload stored), kept so.
func importedFileName(f *letta.AgentFile, file letta.AgentFileFile) (name string, unprefixed bool) {
	name = deref(file.FileName)
	if name != "" {
		unprefixed = true
		for _, s := range f.Sources {
			if rest, ok := strings.CutPrefix(name, s.Name+"/"); ok && s.ID == file.SourceID {
				name, unprefixed = rest, false
			}
		}
	}
	if name == "" {
		name = deref(file.OriginalFileName)
	}
	if name == "" {
		name = file.ID
	}
	return name, unprefixed
}

// importedFolder is a folder of the file as the import op writes it.
type importedFolder struct {
	FileID string        `json:"file_id"`
	Folder schema.Folder `json:"folder"`
}

// importedFile is a file of the file as the import op writes it.
type importedFile struct {
	FileID   string      `json:"file_id"`
	SourceID string      `json:"source_id"` // the file's id of its folder
	File     schema.File `json:"file"`
	Text     *string     `json:"text"`
}

// planFolders resolves the file's folders and files into the records the
// import writes (ids and times the op's), embedding handle overridden
// when asked, as Letta's importer does.
func planFolders(f *letta.AgentFile, embedding *string) ([]importedFolder, []importedFile, error) {
	var folders []importedFolder
	for _, s := range f.Sources {
		req := letta.FolderCreate{Name: &s.Name, Description: s.Description, Instructions: s.Instructions,
			Metadata: s.Metadata, EmbeddingConfig: s.EmbeddingConfig}
		if embedding != nil {
			req.Embedding, req.EmbeddingConfig = embedding, nil
		}
		rec, err := newFolder(req)
		if err != nil {
			return nil, nil, importError("source %s: %v", s.ID, err)
		}
		folders = append(folders, importedFolder{FileID: s.ID, Folder: rec})
	}
	var out []importedFile
	for _, file := range f.Files {
		rec := schema.File{OriginalFileName: deref(file.OriginalFileName), FileType: deref(file.FileType), FileSize: deref(file.FileSize)}
		rec.FileName, rec.Unprefixed = importedFileName(f, file)
		if rec.OriginalFileName == "" {
			rec.OriginalFileName = rec.FileName
		}
		if rec.FileType == "" {
			rec.FileType = "text/plain"
		}
		if file.FileSize == nil && file.Content != nil {
			rec.FileSize = int64(len(*file.Content))
		}
		out = append(out, importedFile{FileID: file.ID, SourceID: file.SourceID, File: rec, Text: file.Content})
	}
	return folders, out, nil
}

// noContent is the error of an imported file the agent file gave no text:
// there is nothing to parse (Letta leaves such a file parsing for ever).
const noContent = "the agent file holds no content for this file"

// importFolders writes the file's folders and files, mapping the file's
// ids to the stored ones. A file with text is stored with it, to be
// embedded once the import has committed.
func importFolders(c *core, txn kv.Txn, p importPayload, ids map[string]string, now time.Time) error {
	for i, f := range p.Folders {
		rec := f.Folder
		rec.ID, rec.CreatedAt, rec.UpdatedAt = p.FolderIDs[i], now, now
		taken, err := schema.FolderIDByName(txn, rec.Name)
		if err != nil {
			return err
		}
		if taken != "" {
			suffix, err := c.newID("x")
			if err != nil {
				return err
			}
			rec.Name += "_" + suffix[len("x-"):len("x-")+8]
		}
		if err := schema.PutFolder(txn, &rec, nil); err != nil {
			return err
		}
		ids[f.FileID] = rec.ID
	}
	chunkSize := map[string]int{}
	for _, f := range p.Folders {
		chunkSize[ids[f.FileID]] = f.Folder.ChunkSize
	}
	for i, f := range p.Files {
		rec := f.File
		rec.ID, rec.FolderID, rec.CreatedAt, rec.UpdatedAt = p.FileIDs[i], ids[f.SourceID], now, now
		switch {
		case f.Text == nil || *f.Text == "":
			rec.Status, rec.ErrorMessage, rec.ChunksEmbedded = letta.FileError, noContent, new(0)
		default:
			if err := txn.Set(schema.FileTextKey(rec.ID), []byte(*f.Text)); err != nil {
				return err
			}
			n := len(files.Passages(*f.Text, chunkSize[rec.FolderID]))
			rec.Status, rec.TotalChunks, rec.ChunksEmbedded = letta.FileEmbedding, &n, new(0)
			if n == 0 {
				rec.Status = letta.FileCompleted
			}
		}
		if err := schema.PutFile(txn, &rec, true); err != nil {
			return err
		}
		ids[f.FileID] = rec.ID
	}
	return nil
}

// attachImportedFolders attaches an imported agent's folders (giving it
// the file tools, as attaching does) and opens its views of their files
// with the text they showed, within its limit of open files.
func attachImportedFolders(txn kv.Txn, a *schema.Agent, ia importedAgent, ids map[string]string, now time.Time) error {
	names := map[string]string{}
	for _, sid := range ia.SourceIDs {
		folder, err := schema.GetFolder(txn, ids[sid])
		if err != nil {
			return err
		}
		if err := schema.LinkFolder(txn, a.ID, folder.ID); err != nil {
			return err
		}
		names[folder.ID] = folder.Name
		for _, name := range tool.FileTools {
			addBuiltin(a, name)
		}
	}
	for _, v := range ia.FilesAgents {
		f, err := schema.GetFile(txn, ids[v.FileID])
		if err != nil {
			return err
		}
		name, attached := names[f.FolderID]
		if !attached || f.Status == letta.FileError {
			continue // a view of a folder it lacks, or of a file without text
		}
		visible := deref(v.VisibleContent)
		if visible == "" {
			if visible, err = files.ViewOf(txn, f, -1, -1); err != nil {
				return err
			}
		}
		if _, _, err := files.Open(txn, a, files.Opening{File: f, FolderName: name, Visible: visible}, now); err != nil {
			return err
		}
	}
	return nil
}
