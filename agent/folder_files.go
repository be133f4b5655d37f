package agent

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Duplicate is what an upload does when its folder has a file of its name
// (Letta's DuplicateFileHandling).
type Duplicate string

const (
	DuplicateSuffix  Duplicate = "suffix"  // store it under a new name: "name_(1).ext"
	DuplicateError   Duplicate = "error"   // refuse it
	DuplicateSkip    Duplicate = "skip"    // keep the file there is and answer it
	DuplicateReplace Duplicate = "replace" // delete the file there is, then store it
)

// Upload is a file to add to a folder.
type Upload struct {
	FileName    string // as the client named it
	Name        string // the name to store it under, if not FileName's base
	ContentType string // MIME type the client sent; "" if none
	Data        []byte
	Duplicate   Duplicate
}

// UploadResult is what an upload stored: the new file, or with Skipped the
// file of that name already there.
type UploadResult struct {
	File    *letta.FileMetadata
	Skipped bool
}

// addFile is the payload of opAddFile.
type addFile struct {
	File      schema.File `json:"file"`
	Data      []byte      `json:"data"`
	Duplicate Duplicate   `json:"duplicate"`
}

// Upload stores a file in a folder and starts its processing in the
// background; the file answered is "parsing". A file of a type Kelpie does
// not take is refused with ErrUnsupportedFile.
func (s *Folders) Upload(ctx context.Context, folderID string, u Upload) (*UploadResult, error) {
	if err := letta.CheckID("folder_id", "source", folderID); err != nil {
		return nil, err
	}
	if !slices.Contains([]Duplicate{DuplicateSuffix, DuplicateError, DuplicateSkip, DuplicateReplace}, u.Duplicate) {
		return nil, letta.Invalidf("duplicate_handling must be one of suffix, error, skip, replace; got %q", letta.Clip(string(u.Duplicate)))
	}
	if len(u.Data) > files.MaxUploadBytes {
		return nil, &letta.Error{Kind: letta.KindTooLarge, Message: fmt.Sprintf("the file is %d bytes, over the limit of %d", len(u.Data), files.MaxUploadBytes)}
	}
	mime, ok := files.MediaType(u.FileName, u.ContentType)
	if !ok {
		return nil, &UnsupportedFileError{MediaType: mime, FileName: u.FileName}
	}
	name := u.Name
	if name == "" {
		name = path.Base(strings.ReplaceAll(u.FileName, "\\", "/"))
	}
	if name == "" || name == "." || name == "/" || strings.HasPrefix(name, ".") && u.Name == "" {
		return nil, letta.Invalidf("invalid file name %q", letta.Clip(u.FileName))
	}
	if len(name) > files.MaxFileNameBytes || !utf8.ValidString(name) {
		return nil, letta.Invalidf("the file name must be valid UTF-8 of at most %d bytes", files.MaxFileNameBytes)
	}
	id, err := s.c.newIDFor(ctx, "file")
	if err != nil {
		return nil, err
	}
	p := addFile{
		File: schema.File{ID: id, FolderID: folderID, OriginalFileName: name, FileType: mime, FileSize: int64(len(u.Data)), Status: letta.FileParsing},
		Data: u.Data, Duplicate: u.Duplicate,
	}
	var out UploadResult
	if err := s.c.invoke(ctx, schema.FolderActor(folderID), opAddFile, p, &out); err != nil {
		return nil, err
	}
	if !out.Skipped {
		s.c.ingest.start(out.File.ID)
	}
	return &out, nil
}

// UnsupportedFileError refuses an upload of a type Kelpie does not take
// (Letta answers 415).
type UnsupportedFileError struct{ MediaType, FileName string }

func (e *UnsupportedFileError) Error() string {
	mt := e.MediaType
	if mt == "" {
		mt = "unknown"
	}
	return fmt.Sprintf("Unsupported file type: %s (filename: %s). Supported types: PDF, text files (.txt, .md), JSON, and code files (.py, .js, .java, etc.).", mt, e.FileName)
}

func addFileOp(call *actor.Call) ([]byte, error) {
	p, err := decodePayload[addFile](call)
	if err != nil {
		return nil, err
	}
	folder, err := schema.GetFolder(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	existing, err := schema.ListFolderFiles(call.Txn, folder.ID)
	if err != nil {
		return nil, err
	}
	f := p.File
	same := 0
	for _, e := range existing {
		if e.OriginalFileName == f.OriginalFileName {
			same++
		}
	}
	if same > 0 {
		dup := existing[slices.IndexFunc(existing, func(e *schema.File) bool { return e.OriginalFileName == f.OriginalFileName })]
		switch p.Duplicate {
		case DuplicateError:
			return nil, letta.Invalidf("File '%s' already exists in folder '%s'", f.OriginalFileName, folder.Name)
		case DuplicateSkip:
			return schema.Encode(UploadResult{File: renderFile(dup, files.ViewName(folder.Name, dup), nil), Skipped: true})
		case DuplicateReplace:
			if err := deleteFile(call.Txn, dup); err != nil {
				return nil, err
			}
			existing = slices.DeleteFunc(existing, func(e *schema.File) bool { return e.ID == dup.ID })
			// Letta names the replacing file by its original name alone,
			// without its folder's.
			f.FileName, f.Unprefixed = f.OriginalFileName, true
		}
	}
	if len(existing) >= MaxFilesPerFolder {
		return nil, letta.Invalidf("folder '%s' already holds %d files, the most a folder holds", folder.Name, MaxFilesPerFolder)
	}
	if !f.Unprefixed {
		f.FileName = uniqueName(f.OriginalFileName, same)
	}
	f.CreatedAt, f.UpdatedAt = call.Now, call.Now
	if err := schema.PutFile(call.Txn, &f, true); err != nil {
		return nil, err
	}
	if err := call.Txn.Set(schema.FileUploadKey(f.ID), p.Data); err != nil {
		return nil, err
	}
	// The upload answers the name as stored; listings and reads show it
	// without its folder's (fileMetadata), as Letta's do.
	return schema.Encode(UploadResult{File: renderFile(&f, files.ViewName(folder.Name, &f), nil)})
}

// uniqueName is the name of the n-th other file of a name: Letta's
// "base_(n).ext".
func uniqueName(name string, n int) string {
	if n <= 0 {
		return name
	}
	ext := path.Ext(name)
	return fmt.Sprintf("%s_(%d)%s", strings.TrimSuffix(name, ext), n, ext)
}

// ListFiles lists a folder's files by creation time.
func (s *Folders) ListFiles(ctx context.Context, folderID string, p letta.Page, withContent bool) ([]*letta.FileMetadata, error) {
	if err := letta.CheckID("folder_id", "source", folderID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultFileListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.FileMetadata{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		folder, err := schema.GetFolder(txn, folderID)
		if err != nil {
			return err
		}
		fs, err := schema.ListFolderFiles(txn, folderID)
		if err != nil {
			return err
		}
		ids := make([]string, len(fs))
		byID := map[string]*schema.File{}
		for i, f := range fs {
			ids[i], byID[f.ID] = f.ID, f
		}
		for _, id := range pageInOrder(ids, p) {
			m, err := fileMetadata(txn, folder, byID[id], withContent)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// pageInOrder is the page p of ids given oldest first, by id cursors.
func pageInOrder(ids []string, p letta.Page) []string {
	if p.Order == letta.Desc {
		slices.Reverse(ids)
	}
	from, to := 0, len(ids)
	if i := slices.Index(ids, p.After); p.After != "" && i >= 0 {
		from = i + 1
	}
	if i := slices.Index(ids, p.Before); p.Before != "" && i >= 0 {
		to = i
	}
	if from > to {
		return nil
	}
	return ids[from:min(to, from+p.Limit)]
}

// fileMetadata is a file as listings and reads show it: its name without
// its first path component, as Letta's do.
func fileMetadata(txn kv.Txn, folder *schema.Folder, f *schema.File, withContent bool) (*letta.FileMetadata, error) {
	name := files.ListedName(files.ViewName(folder.Name, f))
	if !withContent {
		return renderFile(f, name, nil), nil
	}
	text, err := schema.GetFileText(txn, f.ID)
	if err != nil {
		return nil, err
	}
	return renderFile(f, name, &text), nil
}

// GetFile reads a file of a folder.
func (s *Folders) GetFile(ctx context.Context, folderID, fileID string, withContent bool) (*letta.FileMetadata, error) {
	if err := letta.CheckID("folder_id", "source", folderID); err != nil {
		return nil, err
	}
	if err := letta.CheckID("file_id", "file", fileID); err != nil {
		return nil, err
	}
	var out *letta.FileMetadata
	err := s.c.read(ctx, func(txn kv.Txn) error {
		f, err := schema.GetFile(txn, fileID)
		if err != nil {
			return err
		}
		if f.FolderID != folderID {
			return letta.NotFoundf("File with id=%s not found in folder %s", fileID, folderID)
		}
		folder, err := schema.GetFolder(txn, folderID)
		if err != nil {
			return schema.Dangling(err, "file %s", f.ID)
		}
		out, err = fileMetadata(txn, folder, f, withContent)
		return err
	})
	return out, err
}

// DeleteFile deletes a file of a folder, its passages and the agents'
// views of it.
func (s *Folders) DeleteFile(ctx context.Context, folderID, fileID string) error {
	if err := letta.CheckID("folder_id", "source", folderID); err != nil {
		return err
	}
	if err := letta.CheckID("file_id", "file", fileID); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.FolderActor(folderID), opDeleteFile, fileID, nil)
}

func deleteFileOp(call *actor.Call) ([]byte, error) {
	id, err := decodePayload[string](call)
	if err != nil {
		return nil, err
	}
	f, err := schema.GetFile(call.Txn, id)
	if err != nil {
		return nil, err
	}
	if f.FolderID != call.ID.Key {
		return nil, letta.NotFoundf("File with id=%s not found in folder %s", id, call.ID.Key)
	}
	return nil, deleteFile(call.Txn, f)
}

// deleteFile deletes a file with its passages (and their vector index
// entries) and every agent's view of it.
func deleteFile(txn kv.Txn, f *schema.File) error {
	if err := memory.DeleteFilePassages(txn, f); err != nil {
		return err
	}
	agents, err := schema.FolderAgentIDs(txn, f.FolderID)
	if err != nil {
		return err
	}
	return schema.DeleteFile(txn, f, agents)
}

// DefaultFolderPassageList is how many passages of a folder a page lists.
const DefaultFolderPassageList = 100

// Passages lists the passages of a folder's files (in the order they were
// stored), each with its file's name.
func (s *Folders) Passages(ctx context.Context, folderID string, p letta.Page) ([]letta.Passage, error) {
	if err := letta.CheckID("folder_id", "source", folderID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultFolderPassageList)
	if err != nil {
		return nil, err
	}
	out := []letta.Passage{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		folder, err := schema.GetFolder(txn, folderID)
		if err != nil {
			return err
		}
		kvs, err := txn.Scan(kv.PrefixRange(schema.PassagesOf(folderID)), 0, false)
		if err != nil {
			return err
		}
		ids := make([]string, len(kvs))
		byID := map[string]*schema.Passage{}
		for i, e := range kvs {
			rec, err := schema.DecodePassage(e.Value)
			if err != nil {
				return fmt.Errorf("passage %q: %w", e.Key, err)
			}
			ids[i], byID[rec.ID] = rec.ID, rec
		}
		names := map[string]string{}
		for _, id := range pageInOrder(ids, p) {
			rec := byID[id]
			if _, ok := names[rec.FileID]; !ok {
				f, err := schema.GetFile(txn, rec.FileID)
				if err != nil {
					return err
				}
				names[rec.FileID] = files.ViewName(folder.Name, f)
			}
			lp, err := renderStored(txn, rec)
			if err != nil {
				return err
			}
			lp.FileName = new(names[rec.FileID])
			out = append(out, lp)
		}
		return nil
	})
	return out, err
}

func renderFile(f *schema.File, name string, content *string) *letta.FileMetadata {
	m := &letta.FileMetadata{
		ID: f.ID, SourceID: f.FolderID, FileName: new(name), OriginalFileName: new(f.OriginalFileName),
		FileType: new(f.FileType), FileSize: new(f.FileSize), ProcessingStatus: f.Status,
		TotalChunks: f.TotalChunks, ChunksEmbedded: f.ChunksEmbedded, Content: content, OrganizationID: letta.DefaultOrgID,
		CreatedAt: letta.Timestamp{Time: f.CreatedAt}, UpdatedAt: letta.Timestamp{Time: f.UpdatedAt},
	}
	if f.ErrorMessage != "" {
		m.ErrorMessage = new(f.ErrorMessage)
	}
	return m
}
