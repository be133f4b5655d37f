package sim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// Operations on the context window: compaction, reset and fork. None
// deletes a message: the message checkers find every acknowledged message
// in the history whatever they did, and the invariants (schema.Check at
// every crash and at the end) that each context's index names exactly its
// messages from its start on, after its system message and summary.
// Compaction is also forced by the turns of agents created with a small
// context window (createAgentOp), so it meets the faults turns meet.

type (
	compactOp          struct{}
	resetMessagesOp    struct{}
	forkConversationOp struct{}
)

// compactResp is Letta's CompactionResponse.
type compactResp struct {
	Summary *string `json:"summary"`
	Before  int     `json:"num_messages_before"`
	After   int     `json:"num_messages_after"`
}

// nothingToCompact tells /compact's answer for a context it cannot reduce
// (a 400 the checkers accept from it).
func nothingToCompact(detail string) bool {
	return strings.Contains(detail, "Summarization failed to reduce the number of messages")
}

// compactOp summarises an agent's default conversation (/summarize) or one
// of its conversations (/compact). It is not a write in the sense of
// traits: a retry would compact again, not repeat the first, so it goes
// without an Idempotency-Key and an unknown outcome is not modelled.
func (compactOp) traits() traits { return traits{callsModel: true, needs: needAgent} }

func (compactOp) generate(c *client, op *opRecord) {
	if conv := c.pickConversation(); conv != "" && c.rng.IntN(2) == 0 {
		op.Conversation, op.Agent = conv, c.w.convAgent[conv]
		op.set("POST", "/v1/conversations/"+conv+"/compact", map[string]any{})
		return
	}
	op.Agent = c.pickAgent()
	op.set("POST", "/v1/agents/"+op.Agent+"/summarize", map[string]any{})
}

func (compactOp) parse(op *opRecord) error {
	var r compactResp
	if err := json.Unmarshal(op.Resp, &r); err != nil {
		return err
	}
	if r.After > r.Before {
		return fmt.Errorf("a compaction grew the context from %d to %d messages", r.Before, r.After)
	}
	return nil
}

func (compactOp) learn(*world, *opRecord, *opRecord) {}

func (compactOp) model(b *modelBuilder, op *opRecord, res modelResult) { b.agentExisted(op, res) }

// resetMessagesOp empties an agent's context but for its recompiled system
// message; its messages stay stored.
func (resetMessagesOp) traits() traits { return traits{needs: needAgent} }

func (resetMessagesOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.set("PATCH", "/v1/agents/"+op.Agent+"/reset-messages", map[string]any{})
}

func (resetMessagesOp) parse(*opRecord) error { return nil }

func (resetMessagesOp) learn(*world, *opRecord, *opRecord) {}

func (resetMessagesOp) model(b *modelBuilder, op *opRecord, res modelResult) { b.agentExisted(op, res) }

// forkConversationOp forks a conversation, or an agent's default one (named
// by the agent's id), into a new conversation of the same agent.
func (forkConversationOp) traits() traits { return traits{needs: needAgent} }

func (forkConversationOp) generate(c *client, op *opRecord) {
	source := ""
	if conv := c.pickConversation(); conv != "" && c.rng.IntN(2) == 0 {
		source, op.Agent = conv, c.w.convAgent[conv]
	} else {
		op.Agent = c.pickAgent()
		source = op.Agent
	}
	op.Conversation = source
	op.set("POST", "/v1/conversations/"+url.PathEscape(source)+"/fork", map[string]any{})
}

func (forkConversationOp) parse(op *opRecord) error {
	op.RespConv = new(idJSON)
	return json.Unmarshal(op.Resp, op.RespConv)
}

func (forkConversationOp) learn(w *world, op, root *opRecord) {
	if op.Out == okOutcome {
		w.seeConversation(op.RespConv.ID, root.Agent)
	}
}

func (forkConversationOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.agentExisted(op, res)
	if res == resultOK {
		b.c.listed.conversations[op.RespConv.ID] = op
	}
}
