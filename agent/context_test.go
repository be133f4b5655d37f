package agent_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// systemText reads a stored system message by id.
func (e *env) systemText(id string) string {
	e.t.Helper()
	ms, err := e.svc.Messages.Get(e.ctx, id)
	if err != nil || len(ms) != 1 {
		e.t.Fatalf("message %s: %v %v", id, ms, err)
	}
	sm, ok := ms[0].(*letta.SystemMessage)
	if !ok {
		e.t.Fatalf("message %s is a %s", id, ms[0].Base().MessageType)
	}
	return sm.Content
}

func (e *env) conversation(id string) *letta.Conversation {
	e.t.Helper()
	c, err := e.svc.Conversations.Get(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// Spec: every context (the default conversation, each conversation) holds
// a stored system message as its in-context message 0, compiled from the
// agent's memory; message_ids and in_context_message_ids list the context.
func TestSystemMessageInContext(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	if len(a.MessageIDs) != 1 {
		t.Fatalf("message_ids of a new agent: %v", a.MessageIDs)
	}
	sys := e.systemText(a.MessageIDs[0])
	for _, want := range []string{"<memory_metadata>", "- AGENT_ID: " + a.ID, "- CONVERSATION_ID: default", "The user is Ada.", "- System prompt last recompiled:"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system message lacks %q:\n%s", want, sys)
		}
	}
	if _, err := e.svc.Messages.Get(e.ctx, "message-123e4567-e89b-42d3-8456-426614174000"); agent.KindOf(err) != letta.KindNotFound {
		t.Errorf("missing message: %v", err)
	}

	e.send(a.ID, userMsg("hello"))
	st, err := e.svc.Agents.Get(e.ctx, a.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	hist := e.history(a.ID)
	want := []string{a.MessageIDs[0], hist[0].Base().ID, hist[1].Base().ID}
	if !slices.Equal(st.MessageIDs, want) {
		t.Errorf("message_ids after a turn %v, want %v", st.MessageIDs, want)
	}
	// The model was sent the stored system message.
	if got := e.llm.request(0).Messages[0].Content; got != e.systemText(a.MessageIDs[0]) {
		t.Errorf("the model was sent another system prompt:\n%s", got)
	}

	// A conversation gets its own, compiled at its creation.
	c, err := e.svc.Conversations.Create(e.ctx, a.ID, letta.CreateConversationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.InContextMessageIDs) != 1 || c.InContextMessageIDs[0] == a.MessageIDs[0] {
		t.Fatalf("in_context_message_ids of a new conversation: %v", c.InContextMessageIDs)
	}
	if s := e.systemText(c.InContextMessageIDs[0]); !strings.Contains(s, "- CONVERSATION_ID: "+c.ID) {
		t.Errorf("conversation system message:\n%s", s)
	}
	tr, err := e.svc.Messages.Send(e.ctx, a.ID, c.ID, userMsg("in the conversation"))
	if err != nil {
		t.Fatal(err)
	}
	e.wait(tr)
	if ids := e.conversation(c.ID).InContextMessageIDs; len(ids) != 3 || ids[0] != c.InContextMessageIDs[0] {
		t.Errorf("in_context_message_ids after a turn: %v", ids)
	}
}

// Spec: Letta's recompile rule. An edit of the agent's memory recompiles
// the default conversation's system message in place (same id); an
// existing conversation keeps its own until it is recompiled; a new
// conversation is compiled with the memory of its creation; a memory tool
// edit in a conversation's turn recompiles that conversation's (so its next
// step sees the edit) and the default one.
func TestSystemMessageRecompile(t *testing.T) {
	e := newEnv(t)
	a := e.defaultAgent()
	sysID := a.MessageIDs[0]
	old, err := e.svc.Conversations.Create(e.ctx, a.ID, letta.CreateConversationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	oldSys := old.InContextMessageIDs[0]

	if _, err := e.svc.Agents.UpdateBlock(e.ctx, a.ID, "human", letta.BlockUpdate{Value: new("The user is MARKER1.")}); err != nil {
		t.Fatal(err)
	}
	if s := e.systemText(sysID); !strings.Contains(s, "MARKER1") {
		t.Errorf("default system message not recompiled after a block edit:\n%s", s)
	}
	if s := e.systemText(oldSys); strings.Contains(s, "MARKER1") {
		t.Errorf("an existing conversation's system message changed with the memory")
	}
	fresh, err := e.svc.Conversations.Create(e.ctx, a.ID, letta.CreateConversationRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s := e.systemText(fresh.InContextMessageIDs[0]); !strings.Contains(s, "MARKER1") {
		t.Errorf("a new conversation's system message lacks the memory of its creation")
	}
	dry, err := e.svc.Agents.Recompile(e.ctx, a.ID, old.ID, true)
	if err != nil || !strings.Contains(dry, "MARKER1") || strings.Contains(e.systemText(oldSys), "MARKER1") {
		t.Errorf("dry run: %v, stored changed: %v", err, strings.Contains(e.systemText(oldSys), "MARKER1"))
	}
	text, err := e.svc.Agents.Recompile(e.ctx, a.ID, old.ID, false)
	if err != nil || text != e.systemText(oldSys) || !strings.Contains(text, "MARKER1") {
		t.Errorf("recompile: %v\n%s", err, text)
	}

	// A memory tool in a conversation's turn.
	e.llm.then(
		call("m1", "memory_replace", map[string]any{"label": "human", "old_str": "MARKER1", "new_str": "MARKER2"}),
		reply("done"),
	)
	tr, err := e.svc.Messages.Send(e.ctx, a.ID, fresh.ID, userMsg("rename"))
	if err != nil {
		t.Fatal(err)
	}
	e.wait(tr)
	if s := e.llm.request(1).Messages[0].Content; !strings.Contains(s, "MARKER2") {
		t.Errorf("the step after the edit was not sent the edited memory:\n%s", s)
	}
	for _, id := range []string{sysID, fresh.InContextMessageIDs[0]} {
		if s := e.systemText(id); !strings.Contains(s, "MARKER2") {
			t.Errorf("system message %s not recompiled after the tool edit", id)
		}
	}
	if s := e.systemText(oldSys); strings.Contains(s, "MARKER2") {
		t.Errorf("another conversation's system message changed")
	}
	if st, _ := e.svc.Agents.Get(e.ctx, a.ID, false); st.MessageIDs[0] != sysID {
		t.Errorf("recompiling changed the system message's id: %v", st.MessageIDs)
	}
}
