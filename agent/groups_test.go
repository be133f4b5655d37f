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
