package agent_test

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/kelpie/kelpie/agent/memfs"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// memfsReq is a create request for an agent with git-backed memory.
func memfsReq() letta.CreateAgentRequest {
	req := createReq("Memo", "The user is Ada.")
	req.Tags = append(req.Tags, memfs.EnabledTag)
	return req
}

// head returns the commit the agent's branch names, from its advertisement.
func (e *env) head(agentID string) plumbing.Hash {
	e.t.Helper()
	var buf bytes.Buffer
	if err := e.svc.Repos.InfoRefs(e.ctx, agentID, memfs.ReceivePack, &buf); err != nil {
		e.t.Fatal(err)
	}
	ar := packp.NewAdvRefs()
	if err := ar.Decode(&buf); err != nil {
		e.t.Fatal(err)
	}
	return ar.References[memfs.Branch.String()]
}

// commitOf returns a stored commit of the agent's repository and the
// content of one of its files.
func (e *env) commitOf(agentID string, h plumbing.Hash, path string) (*object.Commit, string) {
	e.t.Helper()
	txn, err := kv.NewDB(e.eng).Begin(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	defer txn.Discard()
	c, err := object.GetCommit(memfs.NewStore(txn, agentID), h)
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := c.File(path)
	if err != nil {
		e.t.Fatal(err)
	}
	content, err := f.Contents()
	if err != nil {
		e.t.Fatal(err)
	}
	return c, content
}

// pushBody is a receive-pack request that moves the branch from parent to
// a new commit of files (path -> content), with the pack of its objects.
func pushBody(t testing.TB, parent plumbing.Hash, files map[string]string) []byte {
	return pushBodyOver(t, parent, files, nil)
}

// pushBodyOver is pushBody leaving out of the pack the objects the server
// has (as git does), and adding those it packs to has.
func pushBodyOver(t testing.TB, parent plumbing.Hash, files map[string]string, has map[plumbing.Hash]bool) []byte {
	t.Helper()
	st := memory.NewStorage()
	var hashes []plumbing.Hash
	put := func(o plumbing.EncodedObject) plumbing.Hash {
		h, err := st.SetEncodedObject(o)
		if err != nil {
			t.Fatal(err)
		}
		if !has[h] {
			hashes = append(hashes, h)
		}
		if has != nil {
			has[h] = true
		}
		return h
	}
	tree := &object.Tree{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		o := st.NewEncodedObject()
		o.SetType(plumbing.BlobObject)
		w, _ := o.Writer()
		io.WriteString(w, files[name])
		w.Close()
		tree.Entries = append(tree.Entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: put(o)})
	}
	to := st.NewEncodedObject()
	if err := tree.Encode(to); err != nil {
		t.Fatal(err)
	}
	sig := object.Signature{Name: "Ada", Email: "ada@example.com", When: time.Unix(1_800_000_000, 0)}
	c := &object.Commit{Author: sig, Committer: sig, Message: "push", TreeHash: put(to), ParentHashes: []plumbing.Hash{parent}}
	co := st.NewEncodedObject()
	if err := c.Encode(co); err != nil {
		t.Fatal(err)
	}
	next := put(co)
	var pack bytes.Buffer
	if _, err := packfile.NewEncoder(&pack, st, false).Encode(hashes, 10); err != nil {
		t.Fatal(err)
	}
	req := packp.NewReferenceUpdateRequest()
	req.Capabilities.Set(capability.ReportStatus)
	req.Commands = []*packp.Command{{Name: memfs.Branch, Old: parent, New: next}}
	req.Packfile = io.NopCloser(&pack)
	var body bytes.Buffer
	if err := req.Encode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Bytes()
}

// push sends a push and returns its status report's text.
func (e *env) push(agentID string, body []byte) (string, error) {
	var out bytes.Buffer
	err := e.svc.Repos.ReceivePack(e.ctx, agentID, bytes.NewReader(body), &out)
	return out.String(), err
}

func (e *env) inSync(agentID string) {
	e.t.Helper()
	ok, err := e.svc.Repos.InSync(e.ctx, agentID)
	if err != nil || !ok {
		e.t.Errorf("the repository and the blocks disagree (%v)", err)
	}
}

// Spec: a push is one transaction. Its commit dropped (a crash during the
// transaction), the blocks and the branch are as before; applied with its
// acknowledgement lost, both moved; the repository and the blocks agree
// after each.
func TestPushAtomic(t *testing.T) {
	e := newEnv(t)
	a := e.agent(memfsReq())
	base := e.head(a.ID)
	e.inSync(a.ID)

	body := pushBody(t, base, map[string]string{"human.md": "The user is Bob.", "persona.md": "I am Memo", "notes.md": "new"})
	e.eng.arm(1)
	if _, err := e.push(a.ID, body); !errors.Is(err, errFault) {
		t.Fatalf("push with its commit dropped: %v", err)
	}
	if got := e.block(a.ID, "human"); got != "The user is Ada." {
		t.Errorf("human after a dropped push = %q", got)
	}
	if h := e.head(a.ID); h != base {
		t.Errorf("branch after a dropped push = %s, want %s", h, base)
	}
	e.inSync(a.ID)
	e.checkStore()

	e.eng.arm(2)
	if _, err := e.push(a.ID, body); !errors.Is(err, errFault) {
		t.Fatalf("push with its acknowledgement lost: %v", err)
	}
	if got := e.block(a.ID, "human"); got != "The user is Bob." {
		t.Errorf("human after an applied push = %q", got)
	}
	if got := e.block(a.ID, "notes"); got != "new" {
		t.Errorf("notes after an applied push = %q", got)
	}
	if h := e.head(a.ID); h == base {
		t.Error("branch did not move with the applied push")
	}
	e.inSync(a.ID)
	e.checkStore()
}

// Spec: concurrent pushes from one base are serialised; exactly one is
// accepted, the others are told to fetch first, and the blocks are the
// winner's.
func TestConcurrentPushes(t *testing.T) {
	e := newEnv(t)
	a := e.agent(memfsReq())
	base := e.head(a.ID)
	const n = 4
	reports := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		body := pushBody(t, base, map[string]string{"human.md": "The user is #" + string(rune('0'+i)), "persona.md": "I am Memo"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := e.push(a.ID, body)
			if err != nil {
				t.Errorf("push %d: %v", i, err)
			}
			reports[i] = rep
		}()
	}
	wg.Wait()
	won := -1
	for i, rep := range reports {
		switch {
		case strings.Contains(rep, "ok "+memfs.Branch.String()):
			if won >= 0 {
				t.Errorf("pushes %d and %d both accepted", won, i)
			}
			won = i
		case !strings.Contains(rep, "ng "+memfs.Branch.String()+" fetch first"):
			t.Errorf("push %d: report %q", i, rep)
		}
	}
	if won < 0 {
		t.Fatal("no push accepted")
	}
	if got, want := e.block(a.ID, "human"), "The user is #"+string(rune('0'+won)); got != want {
		t.Errorf("human = %q, want the accepted push's %q", got, want)
	}
	e.inSync(a.ID)
	e.checkStore()
}

// Spec: an edit by the agent's memory tool is a commit of its repository,
// by the agent, in the step's transaction.
func TestMemoryToolEditIsCommit(t *testing.T) {
	e := newEnv(t)
	a := e.agent(memfsReq())
	base := e.head(a.ID)
	e.llm.then(
		call("call_1", "memory_replace", map[string]any{"label": "human", "old_str": "Ada", "new_str": "Ada Lovelace"}),
		reply("Noted."),
	)
	e.send(a.ID, userMsg("My full name is Ada Lovelace."))
	h := e.head(a.ID)
	c, content := e.commitOf(a.ID, h, "human.md")
	if len(c.ParentHashes) != 1 || c.ParentHashes[0] != base || c.Author.Name != "Memo" || c.Author.Email != a.ID+"@kelpie" {
		t.Errorf("commit %s: parents %v, author %s <%s>", h, c.ParentHashes, c.Author.Name, c.Author.Email)
	}
	if !strings.HasSuffix(content, "---\nThe user is Ada Lovelace.") {
		t.Errorf("human.md = %q", content)
	}
	e.inSync(a.ID)
	e.checkStore()
}
