package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Folders is the surface of folders (Letta's folders, once sources) and
// their files. An upload is committed (with its bytes) before it is
// acknowledged, then parsed, chunked and embedded in the background: its
// status moves from parsing to embedding to completed (or error), each
// step committed, and a restart resumes the files it finds unfinished.
type Folders struct{ c *core }

// Limits of folders.
const (
	DefaultFolderListLimit = 50
	DefaultFileListLimit   = 1000
	MaxFolderNameChars     = 255
	// MaxFilesPerFolder is how many files one folder holds.
	MaxFilesPerFolder = 1000
	// MaxUploadBytes is the largest file an upload takes.
	MaxUploadBytes = files.MaxUploadBytes
)

// Operations of the folder actor.
const (
	opCreateFolder = "create"
	opUpdateFolder = "update"
	opDeleteFolder = "delete"
	opAddFile      = "add_file"
	opFileParsed   = "file_parsed"
	opFileChunks   = "file_chunks"
	opFileFailed   = "file_failed"
	opDeleteFile   = "delete_file"
)

var folderOps = map[string]func(call *actor.Call) ([]byte, error){
	opCreateFolder: createFolderOp,
	opUpdateFolder: updateFolderOp,
	opDeleteFolder: deleteFolderOp,
	opAddFile:      addFileOp,
	opFileParsed:   fileParsedOp,
	opFileChunks:   fileChunksOp,
	opFileFailed:   fileFailedOp,
	opDeleteFile:   deleteFileOp,
}

// opsActor is an actor that keeps no state (the records it serialises
// operations on live at their keys): it runs the operation its call names.
type opsActor struct {
	name string
	ops  map[string]func(call *actor.Call) ([]byte, error)
}

func (opsActor) Decode(actor.ID, []byte) (any, error) { return nil, nil }
func (opsActor) Encode(any) ([]byte, error)           { return nil, nil }

func (a opsActor) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	truncateNow(call)
	fn, ok := a.ops[call.Op]
	if !ok {
		return nil, fmt.Errorf("%s actor: unknown operation %q", a.name, call.Op)
	}
	return fn(call)
}

// folderActor serialises operations on one folder and its files.
var folderActor = opsActor{"folder", folderOps}

// Create creates a folder whose files are embedded with its embedding
// handle (embedding, else embedding_config, else the default).
func (s *Folders) Create(ctx context.Context, req letta.FolderCreate) (*letta.Folder, error) {
	if req.Name == nil {
		return nil, letta.Invalidf("name is required")
	}
	if err := checkFolderName(*req.Name); err != nil {
		return nil, err
	}
	rec, err := newFolder(req)
	if err != nil {
		return nil, err
	}
	if rec.ID, err = s.c.newIDFor(ctx, "source"); err != nil {
		return nil, err
	}
	var out letta.Folder
	err = s.c.invoke(ctx, schema.FolderActor(rec.ID), opCreateFolder, rec, &out)
	return &out, err
}

// newFolder resolves a create request into the folder to store (its id
// and times the caller's): its embedding handle and passage size.
func newFolder(req letta.FolderCreate) (schema.Folder, error) {
	handle := memory.DefaultEmbedding
	switch {
	case req.Embedding != nil:
		handle = *req.Embedding
	case req.EmbeddingConfig != nil:
		handle = memory.EmbeddingHandle(&schema.Agent{EmbeddingConfig: req.EmbeddingConfig})
	}
	if _, err := embeddingConfigFor(handle); err != nil {
		return schema.Folder{}, err
	}
	chunk := files.DefaultChunkTokens
	switch {
	case req.EmbeddingChunkSize != nil:
		chunk = *req.EmbeddingChunkSize
	case req.EmbeddingConfig != nil && req.EmbeddingConfig.EmbeddingChunkSize != nil:
		chunk = *req.EmbeddingConfig.EmbeddingChunkSize
	}
	if chunk < 1 || chunk > files.MaxChunkTokens {
		return schema.Folder{}, letta.Invalidf("embedding_chunk_size must be from 1 to %d, got %d", files.MaxChunkTokens, chunk)
	}
	return schema.Folder{Name: *req.Name, Description: req.Description, Instructions: req.Instructions,
		Metadata: req.Metadata, Embedding: handle, ChunkSize: chunk}, nil
}

func checkFolderName(name string) error {
	if name == "" {
		return letta.Invalidf("name must not be empty")
	}
	return letta.CheckChars("name", name, MaxFolderNameChars)
}

// claimName takes name for folder id, refusing one another folder has.
func claimName(txn kv.Txn, name, id string) error {
	other, err := schema.FolderIDByName(txn, name)
	if err != nil {
		return err
	}
	if other != "" && other != id {
		return letta.Conflictf("a folder named %q already exists", letta.Clip(name))
	}
	return nil
}

func createFolderOp(call *actor.Call) ([]byte, error) {
	rec, err := decodePayload[schema.Folder](call)
	if err != nil {
		return nil, err
	}
	if _, err := schema.GetFolder(call.Txn, rec.ID); err == nil {
		return nil, letta.Conflictf("folder %s already exists", rec.ID)
	}
	if err := claimName(call.Txn, rec.Name, rec.ID); err != nil {
		return nil, err
	}
	rec.CreatedAt, rec.UpdatedAt = call.Now, call.Now
	if err := schema.PutFolder(call.Txn, &rec, nil); err != nil {
		return nil, err
	}
	return schema.Encode(renderFolder(&rec))
}

// Get reads a folder.
func (s *Folders) Get(ctx context.Context, id string) (*letta.Folder, error) {
	return readRecord(ctx, s.c, "folder_id", "source", id, schema.GetFolder, renderFolder)
}

// IDByName returns the id of the folder called name.
func (s *Folders) IDByName(ctx context.Context, name string) (string, error) {
	var id string
	err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		id, err = schema.FolderIDByName(txn, name)
		if err == nil && id == "" {
			err = letta.NotFoundf("Source with name=%s not found.", letta.Clip(name))
		}
		return err
	})
	return id, err
}

var folderIndex = index[*schema.Folder]{
	prefix: schema.FolderIndex.Prefix, idPrefix: "source", get: schema.GetFolder,
	created: func(r *schema.Folder) time.Time { return r.CreatedAt },
}

// List lists folders by creation time; name, when not "", keeps the one of
// that name.
func (s *Folders) List(ctx context.Context, name string, p letta.Page) ([]*letta.Folder, error) {
	p, err := checkPage(p, DefaultFolderListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.Folder{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		return listIndex(txn, folderIndex, p, func(r *schema.Folder) (bool, error) {
			if name == "" || r.Name == name {
				out = append(out, renderFolder(r))
			}
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// Count counts the folders.
func (s *Folders) Count(ctx context.Context) (int, error) {
	n := 0
	err := s.c.read(ctx, func(txn kv.Txn) error {
		return kv.ScanEach(txn, kv.PrefixRange([]byte(schema.FolderIndex.Prefix)), false, func(kv.KeyValue) (bool, error) {
			n++
			return true, nil
		})
	})
	return n, err
}

// Update renames a folder or changes its description, instructions or
// metadata.
func (s *Folders) Update(ctx context.Context, id string, req letta.FolderUpdate) (*letta.Folder, error) {
	if err := letta.CheckID("folder_id", "source", id); err != nil {
		return nil, err
	}
	if req.Name != nil {
		if err := checkFolderName(*req.Name); err != nil {
			return nil, err
		}
	}
	var out letta.Folder
	err := s.c.invoke(ctx, schema.FolderActor(id), opUpdateFolder, req, &out)
	return &out, err
}

func updateFolderOp(call *actor.Call) ([]byte, error) {
	req, err := decodePayload[letta.FolderUpdate](call)
	if err != nil {
		return nil, err
	}
	f, err := schema.GetFolder(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	was := *f
	if req.Name != nil && *req.Name != f.Name {
		if err := claimName(call.Txn, *req.Name, f.ID); err != nil {
			return nil, err
		}
		f.Name = *req.Name
		if err := renameViews(call.Txn, f); err != nil {
			return nil, err
		}
	}
	if req.Description != nil {
		f.Description = req.Description
	}
	if req.Instructions != nil {
		f.Instructions = req.Instructions
	}
	if req.Metadata != nil {
		f.Metadata = req.Metadata
	}
	f.UpdatedAt = call.Now
	if err := schema.PutFolder(call.Txn, f, &was); err != nil {
		return nil, err
	}
	return schema.Encode(renderFolder(f))
}

// renameViews renames the views agents have of a renamed folder's files:
// an agent names a file by its folder's name.
func renameViews(txn kv.Txn, f *schema.Folder) error {
	agents, err := schema.FolderAgentIDs(txn, f.ID)
	if err != nil {
		return err
	}
	for _, agentID := range agents {
		views, err := schema.AgentFileViews(txn, agentID)
		if err != nil {
			return err
		}
		for _, v := range views {
			if v.FolderID != f.ID {
				continue
			}
			file, err := schema.GetFile(txn, v.FileID)
			if err != nil {
				return err
			}
			v.FileName = files.ViewName(f.Name, file)
			if err := schema.PutFileView(txn, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete deletes a folder with its files and their passages, and detaches
// it from its agents (deleting, from those with sleep-time enabled, the
// block labelled with its name, as Letta does).
func (s *Folders) Delete(ctx context.Context, id string) error {
	if err := letta.CheckID("folder_id", "source", id); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.FolderActor(id), opDeleteFolder, nil, nil)
}

func deleteFolderOp(call *actor.Call) ([]byte, error) {
	f, err := schema.GetFolder(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	agents, err := schema.FolderAgentIDs(call.Txn, f.ID)
	if err != nil {
		return nil, err
	}
	for _, id := range agents {
		a, err := schema.GetAgent(call.Txn, id)
		if err != nil {
			return nil, err
		}
		if err := dropFolderBlock(call.Txn, a, f.Name); err != nil {
			return nil, err
		}
	}
	return nil, schema.DeleteFolder(call.Txn, f)
}

// AgentIDs lists the ids of the agents a folder is attached to, in id
// order, paged by id.
func (s *Folders) AgentIDs(ctx context.Context, id string, p letta.Page) ([]string, error) {
	if err := letta.CheckID("folder_id", "source", id); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultFolderListLimit)
	if err != nil {
		return nil, err
	}
	out := []string{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		if _, err := schema.GetFolder(txn, id); err != nil {
			return err
		}
		ids, err := schema.FolderAgentIDs(txn, id)
		if err != nil {
			return err
		}
		out = pageInOrder(ids, p)
		return nil
	})
	return out, err
}

// Metadata sums up the folders and their files; detailed lists each
// folder's files.
func (s *Folders) Metadata(ctx context.Context, detailed bool) (*letta.FoldersMetadata, error) {
	out := &letta.FoldersMetadata{Sources: []letta.FolderStats{}}
	err := s.c.read(ctx, func(txn kv.Txn) error {
		return listIndex(txn, folderIndex, letta.Page{Order: letta.Asc}, func(r *schema.Folder) (bool, error) {
			fs, err := schema.ListFolderFiles(txn, r.ID)
			if err != nil {
				return false, err
			}
			st := letta.FolderStats{SourceID: r.ID, SourceName: r.Name, FileCount: len(fs), Files: []letta.FileStats{}}
			for _, f := range fs {
				st.TotalSize += f.FileSize
				if detailed {
					st.Files = append(st.Files, letta.FileStats{FileID: f.ID, FileName: files.ViewName(r.Name, f), FileSize: new(f.FileSize)})
				}
			}
			out.TotalSources++
			out.TotalFiles += st.FileCount
			out.TotalSize += st.TotalSize
			out.Sources = append(out.Sources, st)
			return true, nil
		})
	})
	return out, err
}

func renderFolder(f *schema.Folder) *letta.Folder {
	cfg, err := embeddingConfigFor(f.Embedding)
	if err != nil {
		cfg = nil // a handle stored by an older rule: shown without a config
	} else {
		cfg.EmbeddingChunkSize = new(f.ChunkSize)
	}
	return &letta.Folder{
		ID: f.ID, Name: f.Name, Description: f.Description, Instructions: f.Instructions, Metadata: nonNilMap(f.Metadata),
		EmbeddingConfig: cfg, OrganizationID: letta.DefaultOrgID, VectorDBProvider: "native",
		CreatedAt: letta.Timestamp{Time: f.CreatedAt}, UpdatedAt: letta.Timestamp{Time: f.UpdatedAt},
	}
}
