package agent

import (
	"fmt"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// MaxInitialMessages bounds a create's initial_message_sequence.
const MaxInitialMessages = 100

// checkInitialMessages checks a create's initial messages: user, system or
// assistant messages with text content (a system one is an input in the
// context, after the system prompt compiled from the agent's instructions
// and memory).
func checkInitialMessages(ms []letta.MessageCreate) error {
	if len(ms) > MaxInitialMessages {
		return letta.Invalidf("initial_message_sequence: at most %d messages, got %d", MaxInitialMessages, len(ms))
	}
	for i, mc := range ms {
		field := fmt.Sprintf("initial_message_sequence[%d]", i)
		if mc.Role != schema.RoleUser && mc.Role != schema.RoleSystem && mc.Role != schema.RoleAssistant {
			return letta.Invalidf("%s: role %q: initial messages may be user, system or assistant messages", field, letta.Clip(mc.Role))
		}
		var m schema.Message
		if err := readContent(field, mc.Content, &m); err != nil {
			return err
		}
		if err := letta.CheckChars(field+".content", m.Text, MaxSystemChars); err != nil {
			return err
		}
	}
	return nil
}

// appendInitialMessages stores a new agent's initial messages in its
// context, after its system message (message after), and returns their
// ids.
func appendInitialMessages(c *core, txn kv.Txn, a *schema.Agent, after uint64, ms []letta.MessageCreate, now time.Time) ([]string, error) {
	var ids []string
	for i, mc := range ms {
		id, err := c.newID("message")
		if err != nil {
			return nil, err
		}
		m := &schema.Message{ID: id, AgentID: a.ID, Seq: after + uint64(i) + 1, Role: mc.Role, Name: mc.Name, CreatedAt: now}
		if err := readContent("initial_message_sequence", mc.Content, m); err != nil {
			return nil, err
		}
		if mc.Otid != nil {
			m.Otid = *mc.Otid
		}
		if err := schema.AppendMessage(txn, m); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}
