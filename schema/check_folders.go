package schema

import (
	"encoding/hex"
	"maps"
	"slices"
	"time"
)

// folderEntries is what Check reads of folders and their files.
type folderEntries struct {
	records     map[string]*Folder // nil: damaged
	index       map[string]string  // folder id -> index key
	names       map[string]string  // name -> folder id ("" when damaged)
	files       map[string]*File   // nil: damaged
	folderFiles map[string]string  // file id -> folder-file key
	texts       map[string]bool
	uploads     map[string]bool
	pending     map[string]bool
	links       map[[2]string]int        // (folder, agent) -> 1 folder-agent, 2 agent-folder, 3 both
	views       map[[2]string]*FileAgent // (agent, file) -> view (nil: damaged)
}

func newFolderEntries() folderEntries {
	return folderEntries{
		records: map[string]*Folder{}, index: map[string]string{}, names: map[string]string{},
		files: map[string]*File{}, folderFiles: map[string]string{},
		texts: map[string]bool{}, uploads: map[string]bool{}, pending: map[string]bool{},
		links: map[[2]string]int{}, views: map[[2]string]*FileAgent{},
	}
}

func (fx *folderEntries) add(c *checker, f *Family, e Entry, p []string) {
	switch f {
	case Folders:
		fx.records[p[0]] = decodeInto[Folder](c, e, "folder")
	case FolderIndex:
		c.indexEntry(fx.index, "folder", p[1], string(e.Key))
	case FolderNames:
		name, err := hex.DecodeString(p[0])
		if err != nil {
			c.report("", "folder name entry %q is not hex", e.Key)
			return
		}
		fx.names[string(name)] = ""
		if !e.Damaged {
			fx.names[string(name)] = string(e.Value)
		}
	case Files:
		fx.files[p[0]] = decodeInto[File](c, e, "file")
	case FolderFiles:
		if old, dup := fx.folderFiles[p[2]]; dup {
			c.report(p[2], "file %s has two folder entries: %q and %q", p[2], old, e.Key)
		}
		fx.folderFiles[p[2]] = string(e.Key)
	case FileTexts:
		fx.texts[p[0]] = true
	case FileUploads:
		fx.uploads[p[0]] = true
	case PendingFiles:
		fx.pending[p[0]] = true
	case FolderAgents:
		fx.links[[2]string{p[0], p[1]}] |= 1
	case AgentFolders:
		fx.links[[2]string{p[1], p[0]}] |= 2
	case FileAgents:
		fx.views[[2]string{p[0], p[1]}] = decodeInto[FileAgent](c, e, "file-agent")
	}
}

// check: each folder has its one index entry and its name entry, and every
// index and name entry names a folder (of that name); each file belongs to
// a stored folder and has its one folder entry, at the key its record
// gives; a file has a pending entry exactly while its processing has not
// ended, and its upload only then; a completed file has its text and as
// many passages as its chunks; links are kept from both sides and join a
// folder and an agent that exist; an agent's view of a file names a file of
// a folder attached to the agent; a file's passages belong to its folder.
func (fx *folderEntries) check(c *checker) {
	fx.checkFolders(c)
	fx.checkFiles(c)
	fx.checkLinks(c)
	fx.checkPassages(c)
}

func (fx *folderEntries) checkFolders(c *checker) {
	for _, id := range slices.Sorted(maps.Keys(fx.records)) {
		r := fx.records[id]
		var created time.Time
		if r != nil {
			created = r.CreatedAt
			if got, ok := fx.names[r.Name]; !ok || got != "" && got != id {
				c.report(id, "folder %s (name %q) is not its name's entry (%q)", id, r.Name, got)
			}
		}
		c.checkIndexed("folder", id, r != nil, created, FolderIndex, fx.index)
	}
	for _, id := range slices.Sorted(maps.Keys(fx.index)) {
		if _, ok := fx.records[id]; !ok {
			c.report(id, "index entry %q names folder %s, which has no record", fx.index[id], id)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(fx.names)) {
		id := fx.names[name]
		if r, ok := fx.records[id]; id != "" && (!ok || r != nil && r.Name != name) {
			c.report(id, "the name entry of %q names folder %s, which has no record of that name", name, id)
		}
	}
}

func (fx *folderEntries) checkFiles(c *checker) {
	chunks := map[string]int{}
	for _, p := range c.passages {
		if p != nil && p.FileID != "" {
			chunks[p.FileID]++
		}
	}
	for _, id := range slices.Sorted(maps.Keys(fx.files)) {
		f := fx.files[id]
		if f == nil {
			continue
		}
		if _, ok := fx.records[f.FolderID]; !ok {
			c.report(f.FolderID, "file %s belongs to folder %s, which has no record", id, f.FolderID)
		}
		if k, ok := fx.folderFiles[id]; !ok || k != string(FolderFileKey(f)) {
			c.report(f.FolderID, "file %s: folder entry %q does not match its record (want %q)", id, k, FolderFileKey(f))
		}
		if fx.pending[id] == f.Terminal() {
			c.report(f.FolderID, "file %s is %s but its pending entry says otherwise", id, f.Status)
		}
		if fx.uploads[id] && f.Terminal() {
			c.report(f.FolderID, "file %s is %s but its upload is still stored", id, f.Status)
		}
		if f.Status == "completed" {
			if !fx.texts[id] {
				c.report(f.FolderID, "file %s is completed but has no text", id)
			}
			if f.TotalChunks == nil || *f.TotalChunks != chunks[id] {
				c.report(f.FolderID, "file %s is completed with %v chunks but has %d passages", id, f.TotalChunks, chunks[id])
			}
		}
	}
	for _, set := range []map[string]bool{fx.texts, fx.uploads, fx.pending} {
		for _, id := range slices.Sorted(maps.Keys(set)) {
			if _, ok := fx.files[id]; !ok {
				c.report("", "an entry of file %s remains, but the file has no record", id)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(fx.folderFiles)) {
		if _, ok := fx.files[id]; !ok {
			c.report("", "folder entry %q names file %s, which has no record", fx.folderFiles[id], id)
		}
	}
}

func (fx *folderEntries) checkLinks(c *checker) {
	for _, l := range slices.SortedFunc(maps.Keys(fx.links), func(a, b [2]string) int { return slices.Compare(a[:], b[:]) }) {
		folder, agent := l[0], l[1]
		if _, ok := fx.records[folder]; !ok {
			c.report(folder, "folder %s is linked to agent %s but has no record", folder, agent)
		}
		if !c.agentExists(agent) {
			c.report(agent, "agent %s is linked to folder %s but has no record", agent, folder)
		}
		if fx.links[l] != 3 {
			c.report(folder, "the link of folder %s and agent %s is kept from one side only", folder, agent)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(fx.views), func(a, b [2]string) int { return slices.Compare(a[:], b[:]) }) {
		agent, file := k[0], k[1]
		f, ok := fx.files[file]
		switch {
		case !ok:
			c.report(agent, "agent %s has a view of file %s, which has no record", agent, file)
		case f != nil && fx.links[[2]string{f.FolderID, agent}] == 0:
			c.report(agent, "agent %s has a view of file %s, whose folder %s is not attached to it", agent, file, f.FolderID)
		}
	}
}

func (fx *folderEntries) checkPassages(c *checker) {
	for _, key := range slices.Sorted(maps.Keys(c.passages)) {
		p := c.passages[key]
		if p == nil || p.FolderID == "" {
			continue
		}
		f, ok := fx.files[p.FileID]
		switch {
		case !ok:
			c.report(p.FolderID, "passage %s of folder %s names file %s, which has no record", p.ID, p.FolderID, p.FileID)
		case f != nil && f.FolderID != p.FolderID:
			c.report(p.FolderID, "passage %s of folder %s names file %s of folder %s", p.ID, p.FolderID, p.FileID, f.FolderID)
		}
		if p.AgentID != "" || p.ArchiveID != "" {
			c.report(p.FolderID, "passage %s of folder %s also names an agent or archive", p.ID, p.FolderID)
		}
	}
}
