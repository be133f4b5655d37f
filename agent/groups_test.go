package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// Spec: an agent created with enable_sleeptime gets, in the same create,
// a sleep-time agent sharing its memory blocks and a sleeptime group it
// manages (Letta's frequency 5). When the group's frequency comes round,
// the sleep-time agent runs after the main agent's turn, over the turn's
// transcript, and its memory edit is seen by the main agent.
func TestSleeptimeAgentEditsMemoryAfterTurn(t *testing.T) {
	e := newEnv(t)
	req := createReq("Main", "The user is Ada.")
	req.EnableSleeptime = new(true)
	a := e.agent(req)
	g := a.MultiAgentGroup
	if g == nil {
		t.Fatal("no multi_agent_group")
	}
	if g.ManagerType != letta.ManagerSleeptime || *g.ManagerAgentID != a.ID || len(g.AgentIDs) != 1 || *g.SleeptimeAgentFrequency != 5 {
		t.Fatalf("sleeptime group %+v", g)
	}
	sleeper, err := e.svc.Agents.Get(e.ctx, g.AgentIDs[0], true)
	if err != nil {
		t.Fatal(err)
	}
	if sleeper.AgentType != "sleeptime_agent" || sleeper.Name != "Main-sleeptime" || len(sleeper.Blocks) != 3 {
		t.Fatalf("sleep-time agent %s %q with %d blocks", sleeper.AgentType, sleeper.Name, len(sleeper.Blocks))
	}
	e.checkStore()
	if _, err := e.svc.Groups.Update(e.ctx, g.ID, letta.GroupUpdate{ManagerConfig: &letta.ManagerConfig{ManagerType: letta.ManagerSleeptime, SleeptimeAgentFrequency: new(1)}}); err != nil {
		t.Fatal(err)
	}

	e.llm.then(reply("Nice to meet you."), // the main agent
		call("s1", "memory_insert", map[string]any{"label": "human", "new_str": "Likes green tea."}), reply("done")) // the sleep-time agent
	e.send(a.ID, userMsg("I like green tea."))
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := e.svc.Agents.Get(e.ctx, a.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		if human := st.Blocks[0].Value; strings.Contains(human, "Likes green tea.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the main agent's memory was not edited: %+v", st.Blocks)
		}
		time.Sleep(10 * time.Millisecond)
	}
	transcript := e.llm.request(1).Messages
	if last := transcript[len(transcript)-1].Content; !strings.Contains(last, "user: I like green tea.") || !strings.Contains(last, "assistant: Nice to meet you.") {
		t.Errorf("the sleep-time agent was given %q", last)
	}
	runs, err := e.svc.Runs.List(e.ctx, agent.RunFilter{AgentID: sleeper.ID}, letta.Page{Order: letta.Desc, Limit: 10})
	if err != nil || len(runs) != 1 {
		t.Fatalf("sleep-time runs %v: %v", runs, err)
	}
	e.waitRun(runs[0].ID)
	e.checkStore()

	// Deleting the main agent deletes the group it manages.
	if err := e.svc.Agents.Delete(e.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Groups.Get(e.ctx, g.ID); letta.KindOf(err) != letta.KindNotFound {
		t.Errorf("group after its manager's deletion: %v", err)
	}
	e.checkStore()
}

func (e *env) waitRun(id string) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := e.svc.Runs.Get(e.ctx, id)
		if err != nil {
			e.t.Fatal(err)
		}
		if r.Status != letta.RunRunning && r.Status != letta.RunCreated {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("run %s still %s", id, r.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Spec: exporting an agent that manages a sleep-time group exports the
// group and its sleep-time agent too (as Letta does); importing the file
// recreates all three, the group joining the new agents, in one
// transaction.
func TestAgentFileWithSleeptimeGroup(t *testing.T) {
	e := newEnv(t)
	req := createReq("Main", "The user is Ada.")
	req.EnableSleeptime = new(true)
	a := e.agent(req)
	f, err := e.svc.Agents.Export(e.ctx, a.ID, agent.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Agents) != 2 || len(f.Groups) != 1 || len(f.Blocks) != 3 {
		t.Fatalf("export: %d agents, %d groups, %d blocks", len(f.Agents), len(f.Groups), len(f.Blocks))
	}
	g := f.Groups[0]
	if g.ManagerConfig.ManagerType != letta.ManagerSleeptime || *g.ManagerConfig.ManagerAgentID != "agent-0" || g.AgentIDs[0] != "agent-1" {
		t.Fatalf("exported group %+v %+v", g, g.ManagerConfig)
	}
	ids, err := e.svc.Agents.Import(e.ctx, roundTrip(t, f), agent.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	main, err := e.svc.Agents.Get(e.ctx, ids[0], true)
	if err != nil {
		t.Fatal(err)
	}
	mg := main.MultiAgentGroup
	if mg == nil || *mg.ManagerAgentID != ids[0] || len(mg.AgentIDs) != 1 || mg.AgentIDs[0] != ids[1] || *mg.SleeptimeAgentFrequency != 5 {
		t.Fatalf("imported group %+v (ids %v)", mg, ids)
	}
	sleeper, err := e.svc.Agents.Get(e.ctx, ids[1], true)
	if err != nil {
		t.Fatal(err)
	}
	// The two imported agents share their blocks, as the originals do.
	if s, m := blockID(sleeper, "human"), blockID(main, "human"); s == "" || s != m {
		t.Errorf("imported sleep-time agent's human block %q, the main agent's %q", s, m)
	}
	e.checkStore()
}

func blockID(st *letta.AgentState, label string) string {
	for _, b := range st.Blocks {
		if b.Label == label {
			return b.ID
		}
	}
	return ""
}
