package files

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// ViewName is Letta's file_name of a file as it stores it, and the name an
// agent knows the file by: its folder's name, a slash, the file's name; or
// the file's name alone for a file a replacing upload stored, which Letta
// names without its folder.
func ViewName(folderName string, f *schema.File) string {
	if f.Unprefixed {
		return f.FileName
	}
	return folderName + "/" + f.FileName
}

// ListedName is the name Letta's file listings and reads show for a file
// whose file_name is name: without its first path component (the folder's
// name, for most files).
func ListedName(name string) string {
	if _, rest, ok := strings.Cut(name, "/"); ok {
		return rest
	}
	return name
}

// ViewOf reads the lines of a file an agent sees when it opens it: all of
// them, or lines start to end (from 0, end exclusive; -1 for none).
func ViewOf(txn kv.Txn, f *schema.File, start, end int) (string, error) {
	text, err := schema.GetFileText(txn, f.ID)
	if err != nil {
		return "", err
	}
	lines, err := Lines(text, StrategyOf(f.FileType, f.FileName), start, end, true)
	if err != nil {
		return "", err
	}
	return strings.Join(lines, "\n"), nil
}

// Opening is a file an agent opens, with the part of it it sees.
type Opening struct {
	File       *schema.File
	FolderName string
	Visible    string
	StartLine  *int // from 1, when a range was asked for
	EndLine    *int
}

// Open opens a file for agent a (in its window of a's size), closing the
// files it last looked at longest ago when more than its limit would be
// open. It returns the names of the files it closed and the view as it was
// before (nil if it had none).
func Open(txn kv.Txn, a *schema.Agent, o Opening, now time.Time) (closed []string, was *schema.FileAgent, err error) {
	maxOpen, window := Limits(a.LLMConfig.ContextWindow)
	views, err := schema.AgentFileViews(txn, a.ID)
	if err != nil {
		return nil, nil, err
	}
	var open []*schema.FileAgent
	for _, v := range views {
		switch {
		case v.FileID == o.File.ID:
			prev := *v
			was = &prev
		case v.IsOpen:
			open = append(open, v)
		}
	}
	slices.SortFunc(open, func(x, y *schema.FileAgent) int { return x.LastAccessedAt.Compare(y.LastAccessedAt) })
	for len(open) >= maxOpen && len(open) > 0 {
		v := open[0]
		open = open[1:]
		v.IsOpen, v.VisibleContent, v.StartLine, v.EndLine, v.UpdatedAt = false, "", nil, nil, now
		if err := schema.PutFileView(txn, v); err != nil {
			return nil, nil, err
		}
		closed = append(closed, v.FileName)
	}
	v := &schema.FileAgent{
		ID: letta.DerivedID("file_agent", "view", a.ID, o.File.ID), AgentID: a.ID, FileID: o.File.ID, FolderID: o.File.FolderID,
		FileName: ViewName(o.FolderName, o.File), IsOpen: true, VisibleContent: Visible(o.Visible, window),
		StartLine: o.StartLine, EndLine: o.EndLine, LastAccessedAt: now, CreatedAt: now, UpdatedAt: now,
	}
	if was != nil {
		v.CreatedAt = was.CreatedAt
	}
	return closed, was, schema.PutFileView(txn, v)
}

// Close closes an agent's view of a file; it reports whether it had one.
func Close(txn kv.Txn, agentID, fileID string, now time.Time) (bool, error) {
	views, err := schema.AgentFileViews(txn, agentID)
	if err != nil {
		return false, err
	}
	for _, v := range views {
		if v.FileID == fileID {
			v.IsOpen, v.VisibleContent, v.StartLine, v.EndLine, v.UpdatedAt = false, "", nil, nil, now
			return true, schema.PutFileView(txn, v)
		}
	}
	return false, nil
}

// CloseAll closes every file an agent has open but those named keep, and
// returns the names of those it closed.
func CloseAll(txn kv.Txn, agentID string, keep []string, now time.Time) ([]string, error) {
	views, err := schema.AgentFileViews(txn, agentID)
	if err != nil {
		return nil, err
	}
	closed := []string{}
	for _, v := range views {
		if v.IsOpen && !slices.Contains(keep, v.FileName) {
			v.IsOpen, v.VisibleContent, v.StartLine, v.EndLine, v.UpdatedAt = false, "", nil, nil, now
			if err := schema.PutFileView(txn, v); err != nil {
				return nil, err
			}
			closed = append(closed, v.FileName)
		}
	}
	return closed, nil
}

// Touch marks the agent's views of the files named as looked at now (a
// search that found them), which keeps them open longest.
func Touch(txn kv.Txn, agentID string, names []string, now time.Time) error {
	views, err := schema.AgentFileViews(txn, agentID)
	if err != nil {
		return err
	}
	for _, v := range views {
		if slices.Contains(names, v.FileName) {
			v.LastAccessedAt = now
			if err := schema.PutFileView(txn, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Directories reads the <directories> section of agent a's prompt: the
// folders attached to it (by name) with its views of their files (by
// name); nil when it has none.
func Directories(txn kv.Txn, a *schema.Agent) (*prompt.Directories, error) {
	ids, err := schema.AgentFolderIDs(txn, a.ID)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	views, err := schema.AgentFileViews(txn, a.ID)
	if err != nil {
		return nil, err
	}
	maxOpen, window := Limits(a.LLMConfig.ContextWindow)
	d := &prompt.Directories{MaxOpen: maxOpen}
	for _, id := range ids {
		f, err := schema.GetFolder(txn, id)
		if err != nil {
			return nil, err
		}
		dir := prompt.Directory{Name: f.Name, Description: deref(f.Description), Instructions: deref(f.Instructions)}
		for _, v := range views {
			if v.FolderID != id {
				continue
			}
			fv := prompt.FileView{Name: v.FileName, Limit: window}
			if v.IsOpen {
				fv.Value = Visible(v.VisibleContent, window)
			}
			dir.Files = append(dir.Files, fv)
		}
		slices.SortFunc(dir.Files, func(x, y prompt.FileView) int { return cmp.Compare(x.Name, y.Name) })
		d.Folders = append(d.Folders, dir)
	}
	slices.SortFunc(d.Folders, func(x, y prompt.Directory) int { return cmp.Compare(x.Name, y.Name) })
	return d, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
