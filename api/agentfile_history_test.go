package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Spec: messages a file keeps out of its agent's context are imported as
// its history, before the context's new system message, none of them
// overwritten by it; the context holds the system message only, and the
// store keeps every rule.
func TestAgentFileMessagesOutOfContext(t *testing.T) {
	var store kv.Store
	c, _ := newTurnServer(t, nil, Options{}, func(cfg *agent.Config) { store = cfg.Store })
	file := strings.Replace(lettaExport, `"in_context_message_ids": ["message-0", "message-1", "message-2", "message-3"]`, `"in_context_message_ids": ["message-0"]`, 1)
	r := c.upload([]byte(file))
	var imported letta.ImportedAgents
	if r.status != 200 || json.Unmarshal(r.body, &imported) != nil {
		t.Fatalf("import: %d %s", r.status, r.body)
	}
	id := imported.AgentIDs[0]
	st := c.getAgent(id)
	var ms []map[string]any
	c.ok("GET", "/v1/agents/"+id+"/messages?order=asc", "", &ms)
	var kinds []string
	for _, m := range ms {
		kinds = append(kinds, m["message_type"].(string))
	}
	if len(st.MessageIDs) != 1 || ms[0]["content"] != "Compute fib(5)" || kinds[len(kinds)-1] != "system_message" {
		t.Errorf("context %v, history %v", st.MessageIDs, kinds)
	}
	checkStore(t, store)
}
