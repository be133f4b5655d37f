package agent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/kelpie/kelpie/agent/memfs"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// benchBlocks is the number of blocks of the benchmarks' agents.
const benchBlocks = 50

// agentWithBlocks creates an agent with benchBlocks blocks of about 500
// characters, with git-backed memory or not.
func agentWithBlocks(e *env, repo bool) *letta.AgentState {
	req := createReq("Memo", "The user is Ada.")
	for i := range benchBlocks - 2 {
		label, value := fmt.Sprintf("notes/topic-%02d", i), strings.Repeat(fmt.Sprintf("fact %d. ", i), 60)
		req.MemoryBlocks = append(req.MemoryBlocks, letta.CreateBlock{Label: &label, Value: &value})
	}
	if repo {
		req.Tags = append(req.Tags, memfs.EnabledTag)
	}
	return e.agent(req)
}

// BenchmarkPush measures a push to an agent with 50 blocks (in-memory
// store, no fsync): one commit changing one block, its pack holding only
// the new objects, as git sends it. The push stores the objects, checks the
// fast-forward, reads the pushed tree's 50 files, updates the block and
// recompiles the system message, in one agent invocation.
func BenchmarkPush(b *testing.B) {
	e := newEnv(b)
	a := agentWithBlocks(e, true)
	blocks, err := e.svc.Agents.Blocks(e.ctx, a.ID, letta.Page{Limit: benchBlocks, Order: letta.Asc})
	if err != nil || len(blocks) != benchBlocks {
		b.Fatal(len(blocks), err)
	}
	files := map[string]string{}
	for _, bl := range blocks {
		path, _ := memfs.PathOf(bl.Label)
		files[path] = memfs.Render(&schema.Block{Block: bl}, memfs.Letta)
	}
	has := map[plumbing.Hash]bool{}
	pushBodyOver(b, plumbing.ZeroHash, files, has) // what the server holds, by hash
	head := e.head(a.ID)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		files["human.md"] = fmt.Sprintf("The user is Ada (%d).", i)
		body := pushBodyOver(b, head, files, has)
		b.StartTimer()
		rep, err := e.push(a.ID, body)
		if err != nil || !strings.Contains(rep, "ok refs/heads/main") {
			b.Fatalf("push: %v %q", err, rep)
		}
		b.StopTimer()
		head = e.head(a.ID)
		b.StartTimer()
	}
}

// BenchmarkBlockEdit measures an edit of one block of an agent with 50
// blocks through the agent's route (Agents.UpdateBlock: the block's
// invocation, then the agent's recompile), without git-backed memory and
// with it (which adds a commit of the agent's repository to the agent's
// invocation).
func BenchmarkBlockEdit(b *testing.B) {
	for _, repo := range []bool{false, true} {
		b.Run(fmt.Sprintf("memfs=%v", repo), func(b *testing.B) {
			e := newEnv(b)
			a := agentWithBlocks(e, repo)
			for i := 0; b.Loop(); i++ {
				v := fmt.Sprintf("The user is Ada (%d).", i)
				if _, err := e.svc.Agents.UpdateBlock(e.ctx, a.ID, "human", letta.BlockUpdate{Value: &v}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
