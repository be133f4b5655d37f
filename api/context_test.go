package api

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
)

// Spec: GET /v1/agents/{id}/context answers Letta's ContextWindowOverview:
// every section with its text and its tokens, the messages of the context
// (system message first) and the tools; the current size is the sum of the
// sections.
func TestContextOverview(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	a := c.createAgent(`{"name":"ov","context_window_limit":16000,"memory_blocks":[{"label":"human","value":"Name: Ada"}]}`)
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"hello there","streaming":false}`, nil)

	var raw map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/context", "", &raw)
	for _, k := range []string{"context_window_size_max", "context_window_size_current", "num_messages", "num_archival_memory",
		"num_recall_memory", "num_tokens_external_memory_summary", "external_memory_summary", "num_tokens_system", "system_prompt",
		"num_tokens_core_memory", "core_memory", "num_tokens_summary_memory", "summary_memory", "num_tokens_functions_definitions",
		"functions_definitions", "num_tokens_messages", "messages", "num_tokens_memory_filesystem", "num_tokens_tool_usage_rules", "num_tokens_directories"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("overview lacks %s", k)
		}
	}
	var ov letta.ContextWindowOverview
	c.ok("GET", "/v1/agents/"+a.ID+"/context", "", &ov)
	if ov.ContextWindowSizeMax != 16000 || ov.NumMessages != 3 || ov.NumRecallMemory != 3 || len(ov.Messages) != 3 {
		t.Errorf("sizes: max %d, %d messages (%d listed), recall %d", ov.ContextWindowSizeMax, ov.NumMessages, len(ov.Messages), ov.NumRecallMemory)
	}
	if ov.Messages[0].Role != "system" || ov.Messages[0].ID != a.MessageIDs[0] || ov.Messages[1].Content[0].Text != "hello there" {
		t.Errorf("messages %+v", ov.Messages)
	}
	if !strings.HasPrefix(ov.CoreMemory, "<memory_blocks>") || !strings.Contains(ov.CoreMemory, "Name: Ada") ||
		!strings.HasPrefix(ov.ExternalMemorySummary, "<memory_metadata>") || !strings.HasPrefix(ov.SystemPrompt, "<base_instructions>") {
		t.Errorf("sections: %q / %q / %q", ov.SystemPrompt, ov.CoreMemory, ov.ExternalMemorySummary)
	}
	if len(ov.FunctionsDefinitions) == 0 || ov.FunctionsDefinitions[0].Type != "function" || ov.NumTokensFunctionsDefinitions == 0 {
		t.Errorf("tools %+v", ov.FunctionsDefinitions)
	}
	sum := ov.NumTokensSystem + ov.NumTokensCoreMemory + ov.NumTokensExternalMemorySummary + ov.NumTokensSummaryMemory +
		ov.NumTokensMessages + ov.NumTokensFunctionsDefinitions
	if ov.ContextWindowSizeCurrent != sum || ov.NumTokensMessages == 0 || ov.NumTokensCoreMemory == 0 {
		t.Errorf("current %d, sections sum to %d", ov.ContextWindowSizeCurrent, sum)
	}
	var conv letta.Conversation
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &conv)
	c.ok("GET", "/v1/agents/"+a.ID+"/context?conversation_id="+conv.ID, "", &ov)
	if ov.NumMessages != 1 || !strings.Contains(ov.ExternalMemorySummary, "- CONVERSATION_ID: "+conv.ID) {
		t.Errorf("conversation context: %d messages, %q", ov.NumMessages, ov.ExternalMemorySummary)
	}
	c.expect(404, "GET", "/v1/agents/agent-123e4567-e89b-42d3-8456-426614174000/context", "")
}

// Spec: reset-messages moves every message of the default conversation out
// of its context but the (recompiled) system message, deleting none; it
// answers null to Letta's 1.0 SDKs and the agent to older clients.
func TestResetMessages(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	a := c.createAgent(`{"name":"reset"}`)
	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"one","streaming":false}`, nil)
	var st letta.AgentState
	c.ok("GET", "/v1/agents/"+a.ID, "", &st)
	if len(st.MessageIDs) != 3 {
		t.Fatalf("message_ids before %v", st.MessageIDs)
	}
	r := c.do("PATCH", "/v1/agents/"+a.ID+"/reset-messages", `{}`, "User-Agent", "python-requests/2.32")
	if r.status != 200 || json.Unmarshal(r.body, &st) != nil || len(st.MessageIDs) != 1 || st.MessageIDs[0] != a.MessageIDs[0] {
		t.Fatalf("reset: %d %s", r.status, r.body)
	}
	r = c.do("PATCH", "/v1/agents/"+a.ID+"/reset-messages", `{"add_default_initial_messages":false}`, "X-Stainless-Package-Version", "1.12.1")
	if r.status != 200 || string(r.body) != "null" {
		t.Errorf("reset from the SDK: %d %s", r.status, r.body)
	}
	var hist []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages", "", &hist)
	if len(hist) != 3 {
		t.Errorf("reset deleted messages: %d left", len(hist))
	}
	c.expect(422, "PATCH", "/v1/agents/"+a.ID+"/reset-messages", "")
	c.expect(404, "PATCH", "/v1/agents/agent-123e4567-e89b-42d3-8456-426614174000/reset-messages", `{}`)
}

// Spec: Letta's conversation delete tests: 200 and null, then 404 on get,
// update and a second delete; the conversation leaves its agent's listing;
// its messages stay in the agent's history.
func TestDeleteConversation(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	a := c.createAgent(`{"name":"del"}`)
	var c1, c2 letta.Conversation
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &c1)
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &c2)
	c.ok("POST", "/v1/conversations/"+c1.ID+"/messages", `{"input":"kept","streaming":false}`, nil)
	r := c.do("DELETE", "/v1/conversations/"+c1.ID, "")
	if r.status != 200 || string(r.body) != "null" {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	c.expect(404, "GET", "/v1/conversations/"+c1.ID, "")
	c.expect(404, "DELETE", "/v1/conversations/"+c1.ID, "")
	c.expect(404, "PATCH", "/v1/conversations/"+c1.ID, `{"summary":"x"}`)
	c.expect(404, "POST", "/v1/conversations/"+c1.ID+"/messages", `{"input":"x","streaming":false}`)
	c.expect(404, "DELETE", "/v1/conversations/conv-00000000-0000-4000-8000-000000000000", "")
	var list []letta.Conversation
	c.ok("GET", "/v1/conversations?agent_id="+a.ID, "", &list)
	if len(list) != 1 || list[0].ID != c2.ID {
		t.Errorf("list after delete %v", list)
	}
	var hist []map[string]any
	c.ok("GET", "/v1/agents/"+a.ID+"/messages?order=asc", "", &hist)
	found := false
	for _, m := range hist {
		found = found || m["content"] == "kept"
	}
	if !found {
		t.Errorf("the deleted conversation's messages left the history: %v", hist)
	}
}

// Spec: Letta's compaction tests over HTTP: /compact on a conversation
// with history answers {summary, num_messages_before > num_messages_after}
// and leaves another conversation as it was; an empty one is 400, an
// unknown one 404; the default conversation by "default"+agent_id or by the
// agent's id; /summarize on an agent.
func TestCompactRoutes(t *testing.T) {
	c, _ := newTurnServer(t, &scripted{}, Options{})
	a := c.createAgent(`{"name":"compact"}`)
	var c1, c2, empty letta.Conversation
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &c1)
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &c2)
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &empty)
	for _, conv := range []string{c1.ID, c2.ID, a.ID} {
		for range 3 {
			c.ok("POST", "/v1/conversations/"+conv+"/messages", `{"input":"Tell me about topic X.","streaming":false}`, nil)
		}
	}
	c.ok("GET", "/v1/conversations/"+c2.ID, "", &c2)
	var res struct {
		Summary           *string `json:"summary"`
		NumMessagesBefore int     `json:"num_messages_before"`
		NumMessagesAfter  int     `json:"num_messages_after"`
	}
	c.ok("POST", "/v1/conversations/"+c1.ID+"/compact", `{"compaction_settings":{"mode":"all"}}`, &res)
	if res.Summary == nil || *res.Summary == "" || res.NumMessagesBefore != 7 || res.NumMessagesAfter != 2 {
		t.Errorf("compact: %+v", res)
	}
	var after letta.Conversation
	c.ok("GET", "/v1/conversations/"+c2.ID, "", &after)
	if len(after.InContextMessageIDs) != len(c2.InContextMessageIDs) {
		t.Errorf("compacting one conversation changed another: %d -> %d", len(c2.InContextMessageIDs), len(after.InContextMessageIDs))
	}
	c.ok("GET", "/v1/conversations/"+c1.ID, "", &after)
	var ms []map[string]any
	c.ok("GET", "/v1/messages/"+after.InContextMessageIDs[1], "", &ms)
	if len(ms) != 1 || ms[0]["message_type"] != "summary_message" {
		t.Errorf("in-context message 1 after compaction: %v", ms)
	}
	c.expect(400, "POST", "/v1/conversations/"+empty.ID+"/compact", `{}`)
	c.expect(404, "POST", "/v1/conversations/conv-00000000-0000-4000-8000-000000000000/compact", `{}`)
	c.expect(400, "POST", "/v1/conversations/"+c1.ID+"/compact", `{"compaction_settings":{"mode":"bogus"}}`)

	c.ok("POST", "/v1/conversations/default/compact", `{"agent_id":"`+a.ID+`","compaction_settings":{"mode":"all"}}`, &res)
	if res.NumMessagesBefore != 7 || res.NumMessagesAfter != 2 {
		t.Errorf("compact the default conversation: %+v", res)
	}
	c.ok("POST", "/v1/agents/"+a.ID+"/summarize", "", &res)
	if res.NumMessagesBefore != 2 || res.NumMessagesAfter != 2 || res.Summary == nil {
		t.Errorf("summarize with nothing new: %+v", res)
	}
	c.expect(400, "POST", "/v1/conversations/"+a.ID+"/compact", "")
}

// Spec: Letta's fork tests: a fork of a conversation (or of the default
// one, by "default"+agent_id) is a new conversation of the agent whose
// context holds a new system message, then the source's messages, the same
// ids in the same order; the model, asked in the fork, is sent them.
func TestForkConversation(t *testing.T) {
	p := &scripted{}
	p.add(textReply("noted"))
	c, _ := newTurnServer(t, p, Options{})
	a := c.createAgent(`{"name":"fork"}`)
	var src letta.Conversation
	c.ok("POST", "/v1/conversations?agent_id="+a.ID, "", &src)
	c.ok("POST", "/v1/conversations/"+src.ID+"/messages", `{"input":"my favorite color is red","streaming":false}`, nil)
	c.ok("GET", "/v1/conversations/"+src.ID, "", &src)

	var fork letta.Conversation
	c.ok("POST", "/v1/conversations/"+src.ID+"/fork", "", &fork)
	if fork.ID == src.ID || fork.AgentID != a.ID || len(fork.InContextMessageIDs) != len(src.InContextMessageIDs) ||
		fork.InContextMessageIDs[0] == src.InContextMessageIDs[0] || !slices.Equal(fork.InContextMessageIDs[1:], src.InContextMessageIDs[1:]) {
		t.Fatalf("fork %v of %v", fork.InContextMessageIDs, src.InContextMessageIDs)
	}
	var seen []string
	p.add(func(_ context.Context, req llm.Request, _ func(llm.Delta)) (*llm.Response, error) {
		for _, m := range req.Messages {
			seen = append(seen, m.Content)
		}
		return &llm.Response{Content: "red", StopReason: llm.StopEndTurn}, nil
	})
	c.ok("POST", "/v1/conversations/"+fork.ID+"/messages", `{"input":"what is my favorite color?","streaming":false}`, nil)
	if len(seen) < 3 || !strings.Contains(seen[0], "- CONVERSATION_ID: "+fork.ID) || seen[1] != "my favorite color is red" {
		t.Errorf("the fork's model request: %q", seen)
	}
	var after letta.Conversation
	c.ok("GET", "/v1/conversations/"+src.ID, "", &after)
	if !slices.Equal(after.InContextMessageIDs, src.InContextMessageIDs) {
		t.Errorf("the turn in the fork changed its source: %v", after.InContextMessageIDs)
	}

	c.ok("POST", "/v1/agents/"+a.ID+"/messages", `{"input":"my favorite animal is a penguin","streaming":false}`, nil)
	var st letta.AgentState
	c.ok("GET", "/v1/agents/"+a.ID, "", &st)
	c.ok("POST", "/v1/conversations/default/fork?agent_id="+a.ID, "", &fork)
	if !strings.HasPrefix(fork.ID, "conv-") || !slices.Equal(fork.InContextMessageIDs[1:], st.MessageIDs[1:]) {
		t.Errorf("fork of the default conversation %v, agent %v", fork.InContextMessageIDs, st.MessageIDs)
	}
	c.ok("POST", "/v1/conversations/"+a.ID+"/fork", "", &fork)
	c.expect(404, "POST", "/v1/conversations/conv-00000000-0000-4000-8000-000000000000/fork", "")
	c.expect(422, "POST", "/v1/conversations/conv-nonexistent-00000000/fork", "")
}
