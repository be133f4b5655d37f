package memfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of a repository.
const (
	MaxFiles     = 1000 // files in one tree, all directories together
	MaxTreeDepth = 16   // directories nested in a tree
	MaxAncestors = 100_000
)

// entry is one file of a tree.
type entry struct {
	mode filemode.FileMode
	hash plumbing.Hash
}

// files is a tree, flattened: path -> file (anything but a directory).
type files map[string]entry

// Signature is who a commit is by: the agent.
type Signature struct {
	Name, Email string
	When        time.Time
}

// AgentSignature is the signature of an agent's own commits.
func AgentSignature(agentID, name string, when time.Time) Signature {
	if name == "" {
		name = agentID
	}
	return Signature{Name: name, Email: agentID + "@kelpie", When: when}
}

// treeOf returns the files of a commit's tree.
func (s *Store) treeOf(commit plumbing.Hash) (files, error) {
	c, err := object.GetCommit(s, commit)
	if err != nil {
		return nil, fmt.Errorf("memfs: commit %s: %w", commit, err)
	}
	out := files{}
	return out, s.readTree(c.TreeHash, "", 0, out)
}

func (s *Store) readTree(h plumbing.Hash, dir string, depth int, out files) error {
	if depth > MaxTreeDepth {
		return letta.Invalidf("directories nested deeper than %d", MaxTreeDepth)
	}
	t, err := object.GetTree(s, h)
	if err != nil {
		return fmt.Errorf("memfs: tree %s: %w", h, err)
	}
	for _, e := range t.Entries {
		p := path.Join(dir, e.Name)
		if e.Mode == filemode.Dir {
			if err := s.readTree(e.Hash, p, depth+1, out); err != nil {
				return err
			}
			continue
		}
		if len(out) >= MaxFiles {
			return letta.Invalidf("more than %d files", MaxFiles)
		}
		out[p] = entry{e.Mode, e.Hash}
	}
	return nil
}

// writeTree stores the trees of fs and returns the root's hash.
func (s *Store) writeTree(fs files) (plumbing.Hash, error) {
	type dir struct {
		files map[string]entry
		dirs  map[string]*dir
	}
	newDir := func() *dir { return &dir{files: map[string]entry{}, dirs: map[string]*dir{}} }
	root := newDir()
	for p, e := range fs {
		d := root
		parts := strings.Split(p, "/")
		for _, name := range parts[:len(parts)-1] {
			if d.dirs[name] == nil {
				d.dirs[name] = newDir()
			}
			d = d.dirs[name]
		}
		d.files[parts[len(parts)-1]] = e
	}
	var write func(d *dir) (plumbing.Hash, error)
	write = func(d *dir) (plumbing.Hash, error) {
		t := &object.Tree{}
		for name, e := range d.files {
			t.Entries = append(t.Entries, object.TreeEntry{Name: name, Mode: e.mode, Hash: e.hash})
		}
		for name, sub := range d.dirs {
			h, err := write(sub)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			t.Entries = append(t.Entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
		}
		// Git's order: a directory sorts as its name followed by a slash.
		key := func(e object.TreeEntry) string {
			if e.Mode == filemode.Dir {
				return e.Name + "/"
			}
			return e.Name
		}
		slices.SortFunc(t.Entries, func(a, b object.TreeEntry) int { return strings.Compare(key(a), key(b)) })
		o := s.NewEncodedObject()
		if err := t.Encode(o); err != nil {
			return plumbing.ZeroHash, err
		}
		return s.SetEncodedObject(o)
	}
	return write(root)
}

// writeBlob stores content as a blob.
func (s *Store) writeBlob(content string) (plumbing.Hash, error) {
	o := &plumbing.MemoryObject{}
	o.SetType(plumbing.BlobObject)
	if _, err := o.Write([]byte(content)); err != nil {
		return plumbing.ZeroHash, err
	}
	return s.SetEncodedObject(o)
}

// readBlob returns a blob's content.
func (s *Store) readBlob(h plumbing.Hash) (string, error) {
	o, err := s.EncodedObject(plumbing.BlobObject, h)
	if err != nil {
		return "", fmt.Errorf("memfs: blob %s: %w", h, err)
	}
	r, err := o.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

// Sync makes the repository say what the agent's blocks hold: if any block
// file differs from its block (or a block has no file, or a file no
// block), it commits the files as they should be, by sig, on top of the
// branch. A file that says what its block holds stays byte for byte as it
// is, and files that are no blocks (other files, skills' other files) stay.
// It returns whether it committed. It reads nothing but the branch's tree
// and the blobs of the files whose hash differs from their block's
// rendering.
func Sync(s *Store, blocks []*schema.Block, sig Signature, message string) (bool, error) {
	headHash, err := s.Head()
	if err != nil {
		return false, err
	}
	old := files{}
	if !headHash.IsZero() {
		if old, err = s.treeOf(headHash); err != nil {
			return false, err
		}
	}
	labels := make([]string, len(blocks))
	for i, b := range blocks {
		labels[i] = b.Label
	}
	format := FormatOf(labels)
	next := files{}
	for p, e := range old {
		if _, isBlock := LabelOf(p); !isBlock {
			next[p] = e
		}
	}
	for _, b := range blocks {
		p, ok := PathOf(b.Label)
		if !ok {
			continue
		}
		e, err := s.blockFile(b, format, old[p])
		if err != nil {
			return false, err
		}
		next[p] = e
	}
	if !headHash.IsZero() && maps.Equal(old, next) {
		return false, nil
	}
	_, err = s.commit(next, headHash, sig, message)
	return err == nil, err
}

// blockFile returns the file of block b in format, given its current file
// (zero if none): that file if it says what b holds, else a new blob of b.
func (s *Store) blockFile(b *schema.Block, format Format, cur entry) (entry, error) {
	content := Render(b, format)
	h := plumbing.ComputeHash(plumbing.BlobObject, []byte(content))
	if cur.mode == filemode.Regular || cur.mode == filemode.Executable {
		if cur.hash == h {
			return cur, nil
		}
		was, err := s.readBlob(cur.hash)
		if err != nil {
			return entry{}, err
		}
		if Parse(was).Matches(b, format) {
			return cur, nil
		}
	}
	if _, err := s.writeBlob(content); err != nil {
		return entry{}, err
	}
	return entry{filemode.Regular, h}, nil
}

// commit stores fs as a commit on top of parent and moves the branch to it.
func (s *Store) commit(fs files, parent plumbing.Hash, sig Signature, message string) (plumbing.Hash, error) {
	tree, err := s.writeTree(fs)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	who := object.Signature{Name: sig.Name, Email: sig.Email, When: sig.When}
	c := &object.Commit{Author: who, Committer: who, Message: message, TreeHash: tree}
	if !parent.IsZero() {
		c.ParentHashes = []plumbing.Hash{parent}
	}
	o := s.NewEncodedObject()
	if err := c.Encode(o); err != nil {
		return plumbing.ZeroHash, err
	}
	h, err := s.SetEncodedObject(o)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return h, s.SetReference(plumbing.NewHashReference(Branch, h))
}

// Blocks returns the block files of a pushed commit by label. A tree it
// cannot take (objects missing, a block file that is no regular file,
// limits broken) is a letta.KindInvalid error.
func Blocks(s *Store, commit plumbing.Hash) (map[string]File, error) {
	fs, err := s.treeOf(commit)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, letta.Invalidf("missing necessary objects: %v", err)
	}
	if err != nil {
		return nil, err
	}
	out := map[string]File{}
	for p, e := range fs {
		label, ok := LabelOf(p)
		if !ok {
			continue
		}
		if e.mode != filemode.Regular && e.mode != filemode.Executable {
			return nil, letta.Invalidf("%s is not a regular file", p)
		}
		content, err := s.readBlob(e.hash)
		if err != nil {
			return nil, err
		}
		out[label] = Parse(content)
	}
	return out, nil
}

// Unpack stores the objects of a pack (thin or not: its deltas may name
// objects already stored).
func Unpack(s *Store, pack []byte) error {
	if len(pack) == 0 {
		return nil
	}
	return packfile.UpdateObjectStorage(s, bytes.NewReader(pack))
}

// Descends says whether commit descends from (or is) ancestor.
func Descends(s *Store, commit, ancestor plumbing.Hash) (bool, error) {
	seen := map[plumbing.Hash]bool{}
	queue := []plumbing.Hash{commit}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		if h == ancestor {
			return true, nil
		}
		if seen[h] {
			continue
		}
		if seen[h] = true; len(seen) > MaxAncestors {
			return false, fmt.Errorf("memfs: history longer than %d commits", MaxAncestors)
		}
		c, err := object.GetCommit(s, h)
		if err != nil {
			return false, fmt.Errorf("memfs: commit %s: %w", h, err)
		}
		queue = append(queue, c.ParentHashes...)
	}
	return false, nil
}
