package api

import (
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
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

// Spec: Letta's conversation tests of the system message: message 0 of
// every context is its system message, readable at /v1/messages/{id} (a
// list of one), recompiled by /recompile (dry_run leaves it as it was).
func TestContextSystemMessageRoutes(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	a := c.createAgent(`{"name":"ctx","memory_blocks":[{"label":"human","value":"Test user"}]}`)
	if len(a.MessageIDs) != 1 {
		t.Fatalf("message_ids %v", a.MessageIDs)
	}
	system := func(id string) string {
		t.Helper()
		var ms []map[string]any
		c.ok("GET", "/v1/messages/"+id, "", &ms)
		if len(ms) != 1 || ms[0]["message_type"] != "system_message" {
			t.Fatalf("message %s: %v", id, ms)
		}
		return ms[0]["content"].(string)
	}
	if s := system(a.MessageIDs[0]); !strings.Contains(s, "- CONVERSATION_ID: default") || !strings.Contains(s, "- AGENT_ID: "+a.ID) {
		t.Errorf("default system message:\n%s", s)
	}
	c.expect(404, "GET", "/v1/messages/message-123e4567-e89b-42d3-8456-426614174000", "")
	c.expect(422, "GET", "/v1/messages/nope", "")

	var conv letta.Conversation
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &conv)
	if len(conv.InContextMessageIDs) != 1 {
		t.Fatalf("in_context_message_ids %v", conv.InContextMessageIDs)
	}
	convSys := conv.InContextMessageIDs[0]
	c.ok("PATCH", "/v1/agents/"+a.ID+"/core-memory/blocks/human", `{"value":"Test user RECOMPILE_MARKER"}`, nil)
	if strings.Contains(system(convSys), "RECOMPILE_MARKER") {
		t.Errorf("a block edit changed an existing conversation's system message")
	}
	if !strings.Contains(system(a.MessageIDs[0]), "RECOMPILE_MARKER") {
		t.Errorf("a block edit did not recompile the default system message")
	}
	var text string
	c.ok("POST", "/v1/conversations/"+conv.ID+"/recompile?dry_run=true", "", &text)
	if !strings.Contains(text, "RECOMPILE_MARKER") || strings.Contains(system(convSys), "RECOMPILE_MARKER") {
		t.Errorf("dry run: %q", text)
	}
	c.ok("POST", "/v1/conversations/"+conv.ID+"/recompile", "", &text)
	if !strings.Contains(text, "RECOMPILE_MARKER") || system(convSys) != text {
		t.Errorf("recompile: %q", text)
	}
	c.ok("POST", "/v1/conversations/default/recompile", `{"agent_id":"`+a.ID+`"}`, &text)
	c.ok("POST", "/v1/agents/"+a.ID+"/recompile", "", &text)
	if !strings.Contains(text, "- CONVERSATION_ID: default") || system(a.MessageIDs[0]) != text {
		t.Errorf("agent recompile: %q", text)
	}
	c.expect(404, "POST", "/v1/agents/agent-123e4567-e89b-42d3-8456-426614174000/recompile", "")
}
