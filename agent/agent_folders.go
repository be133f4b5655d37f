package agent

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Operations of the agent actor on its folders and files.
const (
	opAttachFolder  = "attach_folder"
	opDetachFolder  = "detach_folder"
	opOpenFile      = "open_file"
	opCloseFile     = "close_file"
	opCloseAllFiles = "close_all_files"
)

// DefaultAgentList is how many folders or files of an agent a page lists.
const DefaultAgentList = 100

// The folder operations join the agent actor's here, with their code.
func init() {
	agentOps[opAttachFolder] = op(attachFolder)
	agentOps[opDetachFolder] = op(detachFolder)
	agentOps[opOpenFile] = op(openFile)
	agentOps[opCloseFile] = op(closeFile)
	agentOps[opCloseAllFiles] = op(closeAllFiles)
}

// AttachFolder attaches a folder to an agent: its files with text join the
// agent's directories (opened, the newest last, within the agent's limit of
// open files; one still parsing joins once parsed) and the agent gets the
// file tools. Attaching it again reopens its
// files.
func (s *Agents) AttachFolder(ctx context.Context, agentID, folderID string) error {
	return s.folderOp(ctx, opAttachFolder, agentID, folderID)
}

// DetachFolder detaches a folder from an agent, with its files; the agent
// loses the file tools with its last folder, and, with sleep-time enabled,
// its block labelled with the folder's name (as Letta does).
func (s *Agents) DetachFolder(ctx context.Context, agentID, folderID string) error {
	return s.folderOp(ctx, opDetachFolder, agentID, folderID)
}

func (s *Agents) folderOp(ctx context.Context, op, agentID, folderID string) error {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return err
	}
	if err := letta.CheckID("folder_id", "source", folderID); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.AgentActor(agentID), op, folderID, nil)
}

func attachFolder(_ *core, call *actor.Call, a *schema.Agent, folderID string) ([]byte, error) {
	folder, err := schema.GetFolder(call.Txn, folderID)
	if err != nil {
		return nil, err
	}
	if err := schema.LinkFolder(call.Txn, a.ID, folderID); err != nil {
		return nil, err
	}
	for _, name := range tool.FileTools {
		addBuiltin(a, name)
	}
	fs, err := schema.ListFolderFiles(call.Txn, folderID)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if f.Status != letta.FileEmbedding && f.Status != letta.FileCompleted {
			continue // no text yet (opened once parsed), or none ever
		}
		view, err := files.ViewOf(call.Txn, f, -1, -1)
		if err != nil {
			return nil, err
		}
		if _, _, err := files.Open(call.Txn, a, files.Opening{File: f, FolderName: folder.Name, Visible: view}, call.Now); err != nil {
			return nil, err
		}
	}
	a.UpdatedAt = call.Now
	_, err = commitAgent(call, a)
	return nil, err
}

func detachFolder(_ *core, call *actor.Call, a *schema.Agent, folderID string) ([]byte, error) {
	folder, err := schema.GetFolder(call.Txn, folderID)
	if err != nil {
		return nil, err
	}
	if err := schema.UnlinkFolder(call.Txn, a.ID, folderID); err != nil {
		return nil, err
	}
	if err := dropFolderBlock(call.Txn, a, folder.Name); err != nil {
		return nil, err
	}
	left, err := schema.AgentFolderIDs(call.Txn, a.ID)
	if err != nil {
		return nil, err
	}
	if len(left) == 0 {
		a.ToolNames = slices.DeleteFunc(a.ToolNames, func(n string) bool { return slices.Contains(tool.FileTools, n) })
	}
	a.UpdatedAt = call.Now
	_, err = commitAgent(call, a)
	return nil, err
}

// OpenFile opens a file of one of the agent's folders, whole; it returns
// the names of the files closed to stay within the agent's limit.
func (s *Agents) OpenFile(ctx context.Context, agentID, fileID string) ([]string, error) {
	if err := checkAgentFileIDs(agentID, fileID); err != nil {
		return nil, err
	}
	closed := []string{}
	err := s.c.invoke(ctx, schema.AgentActor(agentID), opOpenFile, fileID, &closed)
	return closed, err
}

func checkAgentFileIDs(agentID, fileID string) error {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return err
	}
	return letta.CheckID("file_id", "file", fileID)
}

// attachedFile reads a file of one of agent a's folders.
func attachedFile(txn kv.Txn, a *schema.Agent, fileID string) (*schema.File, *schema.Folder, error) {
	f, err := schema.GetFile(txn, fileID)
	if err != nil {
		return nil, nil, err
	}
	if _, err := txn.Get(schema.AgentFolderKey(a.ID, f.FolderID)); err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return nil, nil, letta.NotFoundf("File with id=%s is not in a folder attached to agent %s", fileID, a.ID)
		}
		return nil, nil, err
	}
	folder, err := schema.GetFolder(txn, f.FolderID)
	return f, folder, err
}

func openFile(_ *core, call *actor.Call, a *schema.Agent, fileID string) ([]byte, error) {
	f, folder, err := attachedFile(call.Txn, a, fileID)
	if err != nil {
		return nil, err
	}
	view, err := files.ViewOf(call.Txn, f, -1, -1)
	if err != nil {
		return nil, err
	}
	closed, _, err := files.Open(call.Txn, a, files.Opening{File: f, FolderName: folder.Name, Visible: view}, call.Now)
	if err != nil {
		return nil, err
	}
	if _, err := commitAgent(call, a); err != nil {
		return nil, err
	}
	return schema.Encode(nonNil(closed))
}

// CloseFile closes a file the agent has open.
func (s *Agents) CloseFile(ctx context.Context, agentID, fileID string) error {
	if err := checkAgentFileIDs(agentID, fileID); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.AgentActor(agentID), opCloseFile, fileID, nil)
}

func closeFile(_ *core, call *actor.Call, a *schema.Agent, fileID string) ([]byte, error) {
	had, err := files.Close(call.Txn, a.ID, fileID, call.Now)
	if err != nil {
		return nil, err
	}
	if !had {
		return nil, letta.NotFoundf("FileAgent with file_id=%s and agent_id=%s not found", fileID, a.ID)
	}
	_, err = commitAgent(call, a)
	return nil, err
}

// CloseAllFiles closes every file the agent has open and returns their
// names.
func (s *Agents) CloseAllFiles(ctx context.Context, agentID string) ([]string, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	closed := []string{}
	err := s.c.invoke(ctx, schema.AgentActor(agentID), opCloseAllFiles, struct{}{}, &closed)
	return closed, err
}

func closeAllFiles(_ *core, call *actor.Call, a *schema.Agent, _ struct{}) ([]byte, error) {
	closed, err := files.CloseAll(call.Txn, a.ID, nil, call.Now)
	if err != nil {
		return nil, err
	}
	if _, err := commitAgent(call, a); err != nil {
		return nil, err
	}
	return schema.Encode(closed)
}

// FileFilter narrows a listing of an agent's files.
type FileFilter struct {
	IsOpen *bool
	Cursor string // the id of the last file-agent of the previous page
}

// Files lists the files of an agent's folders with whether each is open,
// by when the agent got them.
func (s *Agents) Files(ctx context.Context, agentID string, f FileFilter, p letta.Page) (*letta.PaginatedAgentFiles, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultAgentList)
	if err != nil {
		return nil, err
	}
	if f.Cursor != "" && p.After == "" {
		p.After = f.Cursor
	}
	out := &letta.PaginatedAgentFiles{Files: []letta.AgentFileAttachment{}}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return err
		}
		views, err := schema.AgentFileViews(txn, a.ID)
		if err != nil {
			return err
		}
		views = slices.DeleteFunc(views, func(v *schema.FileAgent) bool { return f.IsOpen != nil && v.IsOpen != *f.IsOpen })
		slices.SortFunc(views, func(x, y *schema.FileAgent) int {
			return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.ID, y.ID))
		})
		ids := make([]string, len(views))
		byID := map[string]*schema.FileAgent{}
		for i, v := range views {
			ids[i], byID[v.ID] = v.ID, v
		}
		more := p
		more.Limit++
		page := pageInOrder(ids, more)
		if len(page) > p.Limit {
			page, out.HasMore = page[:p.Limit], true
			out.NextCursor = new(page[len(page)-1])
		}
		_, window := files.Limits(a.LLMConfig.ContextWindow)
		for _, id := range page {
			att, err := attachment(txn, byID[id], window)
			if err != nil {
				return err
			}
			out.Files = append(out.Files, att)
		}
		return nil
	})
	return out, err
}

func attachment(txn kv.Txn, v *schema.FileAgent, window int) (letta.AgentFileAttachment, error) {
	folder, err := schema.GetFolder(txn, v.FolderID)
	if err != nil {
		return letta.AgentFileAttachment{}, err
	}
	att := letta.AgentFileAttachment{
		ID: v.ID, FileID: v.FileID, FileName: v.FileName, FolderID: v.FolderID, FolderName: folder.Name,
		IsOpen: v.IsOpen, LastAccessedAt: &letta.Timestamp{Time: v.LastAccessedAt}, StartLine: v.StartLine, EndLine: v.EndLine,
	}
	if v.IsOpen {
		att.VisibleContent = new(files.Visible(v.VisibleContent, window))
	}
	return att, nil
}

// Folders lists the folders attached to an agent, by creation time.
func (s *Agents) Folders(ctx context.Context, agentID string, p letta.Page) ([]*letta.Folder, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultAgentList)
	if err != nil {
		return nil, err
	}
	out := []*letta.Folder{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		if _, err := schema.GetAgent(txn, agentID); err != nil {
			return err
		}
		ids, err := schema.AgentFolderIDs(txn, agentID)
		if err != nil {
			return err
		}
		var fs []*schema.Folder
		for _, id := range ids {
			f, err := schema.GetFolder(txn, id)
			if err != nil {
				return err
			}
			fs = append(fs, f)
		}
		slices.SortFunc(fs, func(x, y *schema.Folder) int {
			return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.ID, y.ID))
		})
		byID := map[string]*schema.Folder{}
		ordered := make([]string, len(fs))
		for i, f := range fs {
			ordered[i], byID[f.ID] = f.ID, f
		}
		for _, id := range pageInOrder(ordered, p) {
			out = append(out, renderFolder(byID[id]))
		}
		return nil
	})
	return out, err
}

// folderState is what an agent's state shows of its folders: the folders
// (sources) and its views of their files as Letta's file blocks.
func folderState(txn kv.Txn, a *schema.Agent) (sources, fileBlocks []any, err error) {
	sources, fileBlocks = []any{}, []any{}
	ids, err := schema.AgentFolderIDs(txn, a.ID)
	if err != nil || len(ids) == 0 {
		return sources, fileBlocks, err
	}
	for _, id := range ids {
		f, err := schema.GetFolder(txn, id)
		if err != nil {
			return nil, nil, err
		}
		sources = append(sources, renderFolder(f))
	}
	views, err := schema.AgentFileViews(txn, a.ID)
	if err != nil {
		return nil, nil, err
	}
	_, window := files.Limits(a.LLMConfig.ContextWindow)
	for _, v := range views {
		value := ""
		if v.IsOpen {
			value = files.Visible(v.VisibleContent, window)
		}
		fileBlocks = append(fileBlocks, fileBlock{
			ID: letta.DerivedID("block", "file", v.ID), Label: v.FileName, Value: value, Limit: window, ReadOnly: true,
			Metadata: map[string]any{}, FileID: v.FileID, SourceID: v.FolderID, IsOpen: v.IsOpen,
			LastAccessedAt: &letta.Timestamp{Time: v.LastAccessedAt},
		})
	}
	return sources, fileBlocks, nil
}

// fileBlock is Letta's FileBlock: an agent's view of a file as a block of
// its memory.
type fileBlock struct {
	ID             string           `json:"id"`
	Label          string           `json:"label"`
	Value          string           `json:"value"`
	Limit          int              `json:"limit"`
	ReadOnly       bool             `json:"read_only"`
	Description    *string          `json:"description"`
	Metadata       map[string]any   `json:"metadata"`
	FileID         string           `json:"file_id"`
	SourceID       string           `json:"source_id"`
	IsOpen         bool             `json:"is_open"`
	LastAccessedAt *letta.Timestamp `json:"last_accessed_at"`
}
