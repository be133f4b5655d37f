package schema_test

import (
	"testing"
	"time"

	"github.com/kelpie/kelpie/schema"
)

// Spec: ReadMessageHead reads what Decode reads of a message's id, role
// and conversation, from its encoding's start; an encoding in another
// field order is left to Decode.
func TestReadMessageHead(t *testing.T) {
	for _, m := range []schema.Message{
		{ID: "message-1", AgentID: "agent-1", Seq: 12, Role: schema.RoleUser, Text: `say "hi", \ there`, CreatedAt: time.Unix(0, 0)},
		{ID: "message-2", AgentID: "agent-1", Seq: 13, Role: schema.RoleTool, ConversationID: "conv-9", Content: []byte(`{"conversation_id":"conv-x","role":"system"}`)},
	} {
		data, err := schema.Encode(&m)
		if err != nil {
			t.Fatal(err)
		}
		h, ok := schema.ReadMessageHead(data)
		if !ok || h.ID != m.ID || h.Role != m.Role || h.ConversationID != m.ConversationID {
			t.Errorf("head of %s: %+v %v", data, h, ok)
		}
	}
	old := []byte(`{"id":"message-3","agent_id":"agent-1","seq":1,"role":"user","text":"x","conversation_id":"conv-1"}`)
	if h, ok := schema.ReadMessageHead(old); ok {
		t.Errorf("read an older encoding's head as %+v", h)
	}
}
