package api

import (
	"net/http"
	"testing"

	"github.com/kelpie/kelpie/letta"
)

// Spec: /v1/groups stores groups with Letta's manager types (round robin,
// supervisor, dynamic, sleeptime): create, list, count, retrieve, modify
// (the manager type may not change), delete; bad input gets Letta's
// errors and changes nothing. PATCH enable_sleeptime gives an agent its
// sleep-time agent and group; the group's messages are its manager's.
func TestGroupRoutes(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	a := c.createAgent(`{"name":"alpha","memory_blocks":[{"label":"human","value":"Ada"}]}`)
	b := c.createAgent(`{"name":"beta"}`)

	var rr, sup letta.Group
	c.ok("POST", "/v1/groups", `{"agent_ids":["`+a.ID+`","`+b.ID+`"],"description":"pair"}`, &rr)
	if rr.ManagerType != letta.ManagerRoundRobin || len(rr.AgentIDs) != 2 || rr.Description != "pair" {
		t.Fatalf("round robin group %+v", rr)
	}
	c.ok("POST", "/v1/groups", `{"agent_ids":["`+b.ID+`"],"description":"boss","manager_config":{"manager_type":"supervisor","manager_agent_id":"`+a.ID+`"}}`, &sup)
	if sup.ManagerType != letta.ManagerSupervisor || *sup.ManagerAgentID != a.ID {
		t.Fatalf("supervisor group %+v", sup)
	}
	var dyn letta.Group
	c.ok("POST", "/v1/groups", `{"agent_ids":["`+b.ID+`"],"description":"d","manager_config":{"manager_type":"dynamic","manager_agent_id":"`+a.ID+`","max_turns":3}}`, &dyn)
	if dyn.TerminationToken == nil || *dyn.TerminationToken != "DONE!" || *dyn.MaxTurns != 3 {
		t.Errorf("dynamic group %+v", dyn)
	}

	before := c.snapshot()
	var n int
	c.ok("GET", "/v1/groups/count", "", &n)
	c.expect(http.StatusUnprocessableEntity, "POST", "/v1/groups", `{"agent_ids":[]}`)
	c.expect(http.StatusUnprocessableEntity, "POST", "/v1/groups", `{"agent_ids":[],"description":"x","manager_config":{"manager_type":"supervisor"}}`)
	c.expect(http.StatusNotFound, "POST", "/v1/groups", `{"agent_ids":["agent-00000000-0000-4000-8000-000000000000"],"description":"x"}`)
	c.expect(http.StatusBadRequest, "POST", "/v1/groups", `{"agent_ids":["`+a.ID+`","`+a.ID+`"],"description":"x"}`)
	c.expect(http.StatusBadRequest, "PATCH", "/v1/groups/"+rr.ID, `{"manager_config":{"manager_type":"dynamic","manager_agent_id":"`+a.ID+`"}}`)
	var n2 int
	c.ok("GET", "/v1/groups/count", "", &n2)
	if n != 3 || n2 != 3 || c.snapshot() != before {
		t.Errorf("refused requests changed something: count %d then %d", n, n2)
	}

	var list []letta.Group
	c.ok("GET", "/v1/groups?manager_type=supervisor", "", &list)
	if len(list) != 1 || list[0].ID != sup.ID {
		t.Errorf("supervisor groups %+v", list)
	}
	c.ok("PATCH", "/v1/groups/"+rr.ID, `{"description":"renamed","agent_ids":["`+a.ID+`"]}`, &rr)
	if rr.Description != "renamed" || len(rr.AgentIDs) != 1 {
		t.Errorf("modified %+v", rr)
	}
	c.ok("GET", "/v1/agents/"+b.ID+"/groups", "", &list)
	if len(list) != 2 {
		t.Errorf("beta's groups %+v", list)
	}
	c.ok("DELETE", "/v1/groups/"+dyn.ID, "", nil)
	c.expect(http.StatusNotFound, "GET", "/v1/groups/"+dyn.ID, "")
	c.expect(http.StatusUnprocessableEntity, "GET", "/v1/groups/nope", "")

	// enable_sleeptime on an existing agent.
	var st letta.AgentState
	c.ok("PATCH", "/v1/agents/"+b.ID, `{"enable_sleeptime":true}`, &st)
	if st.MultiAgentGroup == nil || st.MultiAgentGroup.ManagerType != letta.ManagerSleeptime || len(st.MultiAgentGroup.AgentIDs) != 1 {
		t.Fatalf("after enable_sleeptime: multi_agent_group %+v", st.MultiAgentGroup)
	}
	c.ok("PATCH", "/v1/agents/"+b.ID, `{"enable_sleeptime":true}`, &st) // once only
	c.ok("GET", "/v1/groups?manager_type=sleeptime", "", &list)
	if len(list) != 1 {
		t.Errorf("sleeptime groups after a second PATCH: %d", len(list))
	}
	var msgs []map[string]any
	c.ok("GET", "/v1/groups/"+st.MultiAgentGroup.ID+"/messages", "", &msgs)
	if len(msgs) != 1 || msgs[0]["message_type"] != "system_message" {
		t.Errorf("sleeptime group's messages %v", msgs)
	}
	c.ok("GET", "/v1/groups/"+rr.ID+"/messages", "", &msgs)
	if len(msgs) != 0 {
		t.Errorf("a group without a manager lists %v", msgs)
	}
}
