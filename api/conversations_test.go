package api

import (
	"testing"
)

// Spec: an agent's default conversation is named by "default" (with
// agent_id) or, the older form Letta still accepts, by the agent's id on
// every conversation route that takes it; the agents' message listing
// takes conversation_id=default for it.
func TestDefaultConversationNames(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	a := c.createAgent(`{"name":"direct"}`)
	var raw map[string]any
	c.ok("POST", "/v1/conversations/"+a.ID+"/messages", `{"input":"via agent id","streaming":false}`, &raw)
	var conv map[string]any
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &conv)
	c.ok("POST", "/v1/conversations/"+conv["id"].(string)+"/messages", `{"input":"elsewhere","streaming":false}`, &raw)

	userTexts := func(path string) []string {
		t.Helper()
		var hist []map[string]any
		c.ok("GET", path, "", &hist)
		var out []string
		for _, m := range hist {
			if m["message_type"] == "user_message" {
				out = append(out, m["content"].(string))
			}
		}
		return out
	}
	for _, path := range []string{
		"/v1/conversations/" + a.ID + "/messages?order=asc",
		"/v1/conversations/default/messages?order=asc&agent_id=" + a.ID,
		"/v1/agents/" + a.ID + "/messages?order=asc&conversation_id=default",
	} {
		if got := userTexts(path); len(got) != 1 || got[0] != "via agent id" {
			t.Errorf("%s: user messages %q, want only the default conversation's", path, got)
		}
	}
	if got := userTexts("/v1/agents/" + a.ID + "/messages?order=asc"); len(got) != 2 {
		t.Errorf("all of the agent's messages: %q", got)
	}
	var cancelled map[string]string
	c.ok("POST", "/v1/conversations/"+a.ID+"/cancel", "", &cancelled)

	// An agent id that names no agent is not found; a conversation-only
	// route (retrieve) still wants a conversation id.
	missing := "agent-123e4567-e89b-42d3-8456-426614174000"
	c.expect(404, "GET", "/v1/conversations/"+missing+"/messages", "")
	c.expect(422, "GET", "/v1/conversations/"+a.ID, "")
	c.expect(422, "GET", "/v1/agents/"+a.ID+"/messages?conversation_id=nonsense", "")
}
