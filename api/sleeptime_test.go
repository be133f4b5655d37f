package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Spec: as Letta's agent manager does, deleting an agent with
// enable_sleeptime deletes its sleep-time agent and their group (its
// blocks remain), and deleting a sleep-time agent deletes the group and
// sets the main agent's enable_sleeptime to null, after which
// enable_sleeptime can give it a new one. The store keeps every rule.
func TestSleeptimeAgentsDeletedWithTheirGroup(t *testing.T) {
	var store kv.Store
	c, _ := newTurnServer(t, nil, Options{}, func(cfg *agent.Config) { store = cfg.Store })

	main := c.createAgent(`{"name":"main","enable_sleeptime":true,"memory_blocks":[{"label":"human","value":"Ada"}]}`)
	if main.MultiAgentGroup == nil || len(main.MultiAgentGroup.AgentIDs) != 1 {
		t.Fatalf("created with enable_sleeptime: multi_agent_group %+v", main.MultiAgentGroup)
	}
	sleeper, group := main.MultiAgentGroup.AgentIDs[0], main.MultiAgentGroup.ID
	c.getAgent(sleeper)
	human := main.Memory.Blocks[0].ID
	// An Idempotency-Key names the request's own delete only: the
	// sleep-time agent's delete does not reuse it.
	c.ok("DELETE", "/v1/agents/"+main.ID, "", nil, "Idempotency-Key", "delete-main")
	c.expect(http.StatusNotFound, "GET", "/v1/agents/"+main.ID, "")
	c.expect(http.StatusNotFound, "GET", "/v1/agents/"+sleeper, "")
	c.expect(http.StatusNotFound, "GET", "/v1/groups/"+group, "")
	c.getBlock(human)
	if n := c.count("/v1/agents/count"); n != 0 {
		t.Errorf("%d agents left after deleting the main agent", n)
	}
	checkStore(t, store)

	other := c.createAgent(`{"name":"other","enable_sleeptime":true}`)
	sleeper, group = other.MultiAgentGroup.AgentIDs[0], other.MultiAgentGroup.ID
	c.ok("DELETE", "/v1/agents/"+sleeper, "", nil)
	c.expect(http.StatusNotFound, "GET", "/v1/groups/"+group, "")
	st := c.getAgent(other.ID)
	if st.EnableSleeptime != nil || st.MultiAgentGroup != nil {
		t.Errorf("main agent after its sleep-time agent was deleted: enable_sleeptime %v, multi_agent_group %+v", st.EnableSleeptime, st.MultiAgentGroup)
	}
	checkStore(t, store)
	c.ok("PATCH", "/v1/agents/"+other.ID, `{"enable_sleeptime":true}`, st)
	if st.EnableSleeptime == nil || !*st.EnableSleeptime || st.MultiAgentGroup == nil || st.MultiAgentGroup.AgentIDs[0] == sleeper {
		t.Errorf("enable_sleeptime again: %v, group %+v", st.EnableSleeptime, st.MultiAgentGroup)
	}
	var groups []letta.Group
	c.ok("GET", "/v1/groups", "", &groups)
	if len(groups) != 1 {
		t.Errorf("groups %+v", groups)
	}
	checkStore(t, store)
}

// checkStore fails t with every rule of schema.Check the store breaks.
func checkStore(t *testing.T, store kv.Store) {
	t.Helper()
	txn, err := store.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	kvs, err := txn.Scan(kv.Range{Start: []byte{0}}, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]schema.Entry, len(kvs))
	for i, p := range kvs {
		entries[i] = schema.Entry{Key: p.Key, Value: p.Value}
	}
	for _, p := range schema.Check(entries).Problems {
		t.Errorf("schema: %s: %s", p.Object, p.Message)
	}
}

// Spec: as Letta does, detaching a folder from an agent with sleep-time
// enabled, or deleting the folder, deletes the agent's block labelled with
// the folder's name; an agent without sleep-time keeps its block. Nothing
// else happens for sleep-time agents when files are added (Letta's
// sleep-time document ingest does nothing).
func TestFolderBlocksOfSleeptimeAgents(t *testing.T) {
	var store kv.Store
	c, _ := newTurnServer(t, nil, Options{}, func(cfg *agent.Config) { store = cfg.Store })
	blocks := `"memory_blocks":[{"label":"docs","value":"about docs"},{"label":"notes","value":"about notes"}]`
	sleepy := c.createAgent(`{"name":"sleepy","enable_sleeptime":true,` + blocks + `}`)
	plain := c.createAgent(`{"name":"plain",` + blocks + `}`)
	label := func(st *letta.AgentState, l string) string {
		for _, b := range st.Memory.Blocks {
			if b.Label == l {
				return b.ID
			}
		}
		return ""
	}
	var docs, notes letta.Folder
	c.ok("POST", "/v1/folders", `{"name":"docs"}`, &docs)
	c.ok("POST", "/v1/folders", `{"name":"notes"}`, &notes)
	for _, a := range []*letta.AgentState{sleepy, plain} {
		for _, f := range []letta.Folder{docs, notes} {
			c.ok("PATCH", "/v1/agents/"+a.ID+"/folders/attach/"+f.ID, "", nil)
		}
	}

	c.ok("PATCH", "/v1/agents/"+sleepy.ID+"/folders/detach/"+docs.ID, "", nil)
	c.ok("PATCH", "/v1/agents/"+plain.ID+"/folders/detach/"+docs.ID, "", nil)
	c.expect(http.StatusNotFound, "GET", "/v1/blocks/"+label(sleepy, "docs"), "")
	if st := c.getAgent(sleepy.ID); label(st, "docs") != "" || label(st, "notes") == "" {
		t.Errorf("sleep-time agent's blocks after detaching docs: %+v", st.Memory.Blocks)
	}
	if st := c.getAgent(plain.ID); label(st, "docs") == "" {
		t.Errorf("an agent without sleep-time lost its docs block")
	}

	c.ok("DELETE", "/v1/folders/"+notes.ID, "", nil)
	c.expect(http.StatusNotFound, "GET", "/v1/blocks/"+label(sleepy, "notes"), "")
	if st := c.getAgent(plain.ID); label(st, "notes") == "" {
		t.Errorf("an agent without sleep-time lost its notes block with the folder")
	}
	checkStore(t, store)
}
