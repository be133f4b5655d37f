package schema

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Folders (Letta's folders, once sources) hold uploaded files. A folder's
// record, its files and their passages are written by a per-folder actor
// that keeps no state (like archives); an agent's actor writes its links to
// folders and its view of their files (FileAgents). A file's upload stays
// stored (FileUploads) with a pending entry until its processing ends, so a
// restart finds the files left mid-processing and finishes them.
var (
	Folders = &Family{"folder", "folder/",
		"folder/<source-id>", "a Folder record (JSON)"}
	FolderIndex = &Family{"folder-index", "index/folders/",
		"index/folders/<created, 16 hex>/<source-id>", "empty: every folder, by creation time"}
	FolderNames = &Family{"folder-name", "foldername/",
		"foldername/<name, hex>", "the id of the folder with that name: names are unique"}
	Files = &Family{"file", "file/",
		"file/<file-id>", "a File record (JSON)"}
	FolderFiles = &Family{"folder-file", "folder-file/",
		"folder-file/<source-id>/<created, 16 hex>/<file-id>", "empty: the folder's files, by creation time"}
	FileTexts = &Family{"file-text", "filetext/",
		"filetext/<file-id>", "the text extracted from the file (UTF-8)"}
	FileUploads = &Family{"file-upload", "fileraw/",
		"fileraw/<file-id>", "the bytes uploaded, kept until the file's processing ends"}
	PendingFiles = &Family{"file-pending", "file-pending/",
		"file-pending/<file-id>", "empty: the file's processing has not ended"}
	FolderAgents = &Family{"folder-agent", "folder-agent/",
		"folder-agent/<source-id>/<agent-id>", "empty: the folder is attached to the agent"}
	AgentFolders = &Family{"agent-folder", "agent-folder/",
		"agent-folder/<agent-id>/<source-id>", "empty: the reverse of folder-agent"}
	FileAgents = &Family{"file-agent", "file-agent/",
		"file-agent/<agent-id>/<file-id>", "a FileAgent record (JSON): the agent's view of a file of its folders"}
)

// FolderNamespace is the actor namespace of folder operations.
const FolderNamespace = "folders"

// FolderActor is the actor that serialises operations on a folder and its
// files.
func FolderActor(folderID string) actor.ID {
	return actor.ID{Namespace: FolderNamespace, Key: folderID}
}

// Folder is a stored folder.
type Folder struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Description  *string        `json:"description"`
	Instructions *string        `json:"instructions"`
	Metadata     map[string]any `json:"metadata"`
	Embedding    string         `json:"embedding"`  // the model handle of its passages
	ChunkSize    int            `json:"chunk_size"` // tokens per passage, about
	CreatedAt    time.Time      `json:"created_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
}

// File is a stored file of a folder. Its text is at FileTexts once parsed.
type File struct {
	ID               string `json:"id"`
	FolderID         string `json:"folder_id"`
	FileName         string `json:"file_name"` // without its folder's name
	OriginalFileName string `json:"original_file_name"`
	// Unprefixed marks a file a replacing upload stored: Letta names it
	// without its folder's name (files.ViewName).
	Unprefixed     bool      `json:"unprefixed,omitempty"`
	FileType       string    `json:"file_type"` // MIME type
	FileSize       int64     `json:"file_size"`
	Status         string    `json:"status"` // letta.FilePending ... letta.FileError
	ErrorMessage   string    `json:"error_message,omitempty"`
	TotalChunks    *int      `json:"total_chunks,omitempty"`
	ChunksEmbedded *int      `json:"chunks_embedded,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Terminal reports whether the file's processing has ended.
func (f *File) Terminal() bool { return f.Status == letta.FileCompleted || f.Status == letta.FileError }

// FileAgent is an agent's view of a file of a folder attached to it: open
// (its visible content is in the agent's prompt) or closed.
type FileAgent struct {
	ID             string    `json:"id"`
	AgentID        string    `json:"agent_id"`
	FileID         string    `json:"file_id"`
	FolderID       string    `json:"folder_id"`
	FileName       string    `json:"file_name"` // "<folder name>/<file name>", as the agent names it
	IsOpen         bool      `json:"is_open"`
	VisibleContent string    `json:"visible_content"`
	StartLine      *int      `json:"start_line,omitempty"`
	EndLine        *int      `json:"end_line,omitempty"`
	LastAccessedAt time.Time `json:"last_accessed_at"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// FolderNotFound and FileNotFound are Letta's answers for a missing folder
// or file.
func FolderNotFound(id string) error {
	return letta.NotFoundf("Source with ID %s not found", letta.Clip(id))
}
func FileNotFound(id string) error {
	return letta.NotFoundf("File with id=%s not found", letta.Clip(id))
}

func FolderKey(id string) []byte { return []byte(Folders.Prefix + id) }
func FolderNameKey(name string) []byte {
	return []byte(FolderNames.Prefix + hex.EncodeToString([]byte(name)))
}
func FileKey(id string) []byte        { return []byte(Files.Prefix + id) }
func FileTextKey(id string) []byte    { return []byte(FileTexts.Prefix + id) }
func FileUploadKey(id string) []byte  { return []byte(FileUploads.Prefix + id) }
func PendingFileKey(id string) []byte { return []byte(PendingFiles.Prefix + id) }
func FolderFileKey(f *File) []byte {
	return IndexKey(FolderFiles.Prefix+f.FolderID+"/", f.CreatedAt, f.ID)
}
func FolderFilesOf(folderID string) []byte { return join(FolderFiles, folderID, "") }
func FolderAgentKey(folderID, agentID string) []byte {
	return join(FolderAgents, folderID, agentID)
}
func AgentFolderKey(agentID, folderID string) []byte {
	return join(AgentFolders, agentID, folderID)
}
func FolderAgentsOf(folderID string) []byte { return join(FolderAgents, folderID, "") }
func AgentFoldersOf(agentID string) []byte  { return join(AgentFolders, agentID, "") }
func FileAgentKey(agentID, fileID string) []byte {
	return join(FileAgents, agentID, fileID)
}
func FileAgentsOf(agentID string) []byte { return join(FileAgents, agentID, "") }

// GetFolder reads a folder's record.
func GetFolder(txn kv.Txn, id string) (*Folder, error) {
	return get[Folder](txn, FolderKey(id), "folder "+id, FolderNotFound(id))
}

// FolderIDByName returns the id of the folder called name, "" if none.
func FolderIDByName(txn kv.Txn, name string) (string, error) {
	v, err := txn.Get(FolderNameKey(name))
	if errors.Is(err, kv.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// PutFolder writes a folder's record with its name entry (moved from the
// old name was), and its index entry when created.
func PutFolder(txn kv.Txn, f *Folder, was *Folder) error {
	if was != nil && was.Name != f.Name {
		if err := txn.Delete(FolderNameKey(was.Name)); err != nil {
			return err
		}
	}
	if err := txn.Set(FolderNameKey(f.Name), []byte(f.ID)); err != nil {
		return err
	}
	if err := put(txn, FolderKey(f.ID), f); err != nil {
		return err
	}
	if was == nil {
		return txn.Set(IndexKey(FolderIndex.Prefix, f.CreatedAt, f.ID), nil)
	}
	return nil
}

// DeleteFolder deletes a folder: its files (with every agent's view of
// them), its passages with their vector index, its links from both sides, its name and index
// entries and its record.
func DeleteFolder(txn kv.Txn, f *Folder) error {
	agents, err := FolderAgentIDs(txn, f.ID)
	if err != nil {
		return err
	}
	files, err := ListFolderFiles(txn, f.ID)
	if err != nil {
		return err
	}
	for _, file := range files {
		if err := DeleteFile(txn, file, agents); err != nil {
			return err
		}
	}
	if err := DeletePassagesOf(txn, f.ID); err != nil {
		return err
	}
	for _, agentID := range agents {
		if err := UnlinkFolder(txn, agentID, f.ID); err != nil {
			return err
		}
	}
	if err := txn.Delete(IndexKey(FolderIndex.Prefix, f.CreatedAt, f.ID)); err != nil {
		return err
	}
	if err := txn.Delete(FolderNameKey(f.Name)); err != nil {
		return err
	}
	return txn.Delete(FolderKey(f.ID))
}

// GetFile reads a file's record.
func GetFile(txn kv.Txn, id string) (*File, error) {
	return get[File](txn, FileKey(id), "file "+id, FileNotFound(id))
}

// PutFile writes a file's record; a new file also gets its folder entry.
// A file whose processing has not ended has a pending entry, and loses it
// (and its upload) when it ends.
func PutFile(txn kv.Txn, f *File, created bool) error {
	if err := put(txn, FileKey(f.ID), f); err != nil {
		return err
	}
	if created {
		if err := txn.Set(FolderFileKey(f), nil); err != nil {
			return err
		}
	}
	if !f.Terminal() {
		return txn.Set(PendingFileKey(f.ID), nil)
	}
	if err := txn.Delete(PendingFileKey(f.ID)); err != nil {
		return err
	}
	return txn.Delete(FileUploadKey(f.ID))
}

// GetFileText reads a file's extracted text, "" before it is parsed.
func GetFileText(txn kv.Txn, id string) (string, error) {
	v, err := txn.Get(FileTextKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// DeleteFile deletes a file: its text, upload, pending and folder
// entries, the views of it of agents (those its folder is attached to),
// and its record. Its passages are the caller's to delete first (with
// their vector index entries: memory.DeleteFilePassages).
func DeleteFile(txn kv.Txn, f *File, agents []string) error {
	for _, agentID := range agents {
		if err := txn.Delete(FileAgentKey(agentID, f.ID)); err != nil {
			return err
		}
	}
	for _, k := range [][]byte{FileTextKey(f.ID), FileUploadKey(f.ID), PendingFileKey(f.ID), FolderFileKey(f)} {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return txn.Delete(FileKey(f.ID))
}

// ListFolderFiles returns a folder's files, oldest first.
func ListFolderFiles(txn kv.Txn, folderID string) ([]*File, error) {
	var out []*File
	err := kv.ScanEach(txn, kv.PrefixRange(FolderFilesOf(folderID)), false, func(p kv.KeyValue) (bool, error) {
		f, err := GetFile(txn, LastPart(p.Key))
		if err != nil {
			return false, fmt.Errorf("folder %s: %w", folderID, err)
		}
		out = append(out, f)
		return true, nil
	})
	return out, err
}

// LinkFolder attaches a folder to an agent (both sides); UnlinkFolder
// undoes it and deletes the agent's views of the folder's files.
func LinkFolder(txn kv.Txn, agentID, folderID string) error {
	if err := txn.Set(AgentFolderKey(agentID, folderID), nil); err != nil {
		return err
	}
	return txn.Set(FolderAgentKey(folderID, agentID), nil)
}

func UnlinkFolder(txn kv.Txn, agentID, folderID string) error {
	views, err := AgentFileViews(txn, agentID)
	if err != nil {
		return err
	}
	for _, v := range views {
		if v.FolderID == folderID {
			if err := txn.Delete(FileAgentKey(agentID, v.FileID)); err != nil {
				return err
			}
		}
	}
	if err := txn.Delete(AgentFolderKey(agentID, folderID)); err != nil {
		return err
	}
	return txn.Delete(FolderAgentKey(folderID, agentID))
}

// AgentFolderIDs returns the ids of the folders attached to an agent.
func AgentFolderIDs(txn kv.Txn, agentID string) ([]string, error) {
	return linkedIDs(txn, AgentFoldersOf(agentID))
}

// FolderAgentIDs returns the ids of the agents a folder is attached to.
func FolderAgentIDs(txn kv.Txn, folderID string) ([]string, error) {
	return linkedIDs(txn, FolderAgentsOf(folderID))
}

// AgentFileViews returns an agent's views of files, in file id order.
func AgentFileViews(txn kv.Txn, agentID string) ([]*FileAgent, error) {
	var out []*FileAgent
	err := kv.ScanEach(txn, kv.PrefixRange(FileAgentsOf(agentID)), false, func(p kv.KeyValue) (bool, error) {
		v, err := decode[FileAgent](p.Value, "file-agent")
		if err != nil {
			return false, err
		}
		out = append(out, v)
		return true, nil
	})
	return out, err
}

// PutFileView writes an agent's view of a file.
func PutFileView(txn kv.Txn, v *FileAgent) error {
	return put(txn, FileAgentKey(v.AgentID, v.FileID), v)
}

// deleteAgentFolders deletes an agent's links to folders and its views of
// their files (DeleteAgent).
func deleteAgentFolders(txn kv.Txn, agentID string) error {
	if err := deleteEach(txn, FileAgentsOf(agentID), nil); err != nil {
		return err
	}
	return deleteEach(txn, AgentFoldersOf(agentID), func(p kv.KeyValue) error {
		return txn.Delete(FolderAgentKey(LastPart(p.Key), agentID))
	})
}

// PendingFileIDs returns the files whose processing has not ended.
func PendingFileIDs(txn kv.Txn) ([]string, error) {
	keys, err := txn.Scan(kv.PrefixRange([]byte(PendingFiles.Prefix)), 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = LastPart(k.Key)
	}
	return out, nil
}
