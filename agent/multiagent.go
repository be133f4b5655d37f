package agent

import (
	"context"

	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// agentMessenger runs other agents' turns for the multi-agent tools
// (tool.Agents), through the service as a client's message would, outside
// the calling agent's actor: the call is a deferred one, run after its
// step committed.
type agentMessenger struct{ c *core }

// maxTaggedScan bounds the agents a tag match returns: one more than the
// tools' fan-out limit tells the tool there are too many.
const maxTaggedScan = 100

// Message sends text to agent to, keyed by key (a message already sent
// with key starts no second turn: its turn is replayed), and with wait
// returns the texts of the assistant messages of the turn.
//
// It is sent with role system, as Letta sends it, with the sending agent as
// its sender_id; its text says who sent it, as Letta's does.
func (m agentMessenger) Message(ctx context.Context, from, to, key, text string, wait, noQueue bool) ([]string, error) {
	content, err := schema.Encode(text)
	if err != nil {
		return nil, err
	}
	req := letta.MessageRequest{Messages: []letta.MessageCreate{{Type: "message", Role: schema.RoleSystem, Content: content, SenderID: &from}}}
	turn, err := (&Messages{m.c}).send(WithIdempotencyKey(ctx, key), loop.Request{AgentID: to, Message: req, NoQueue: noQueue})
	if err != nil || !wait {
		return nil, err
	}
	res, err := turn.Response(ctx)
	if err != nil {
		return nil, err
	}
	var replies []string
	for _, msg := range res.Messages {
		if a, ok := msg.(*letta.AssistantMessage); ok {
			replies = append(replies, a.Content)
		}
	}
	return replies, nil
}

// Tagged lists the agents that have every tag of all and at least one of
// some (when some is not empty), oldest first, at most maxTaggedScan.
func (m agentMessenger) Tagged(ctx context.Context, all, some []string) ([]string, error) {
	var ids []string
	err := m.c.read(ctx, func(txn kv.Txn) error {
		return eachAgent(txn, AgentFilter{Tags: all, MatchAllTags: true}, letta.Page{Limit: maxTaggedScan}, func(a *schema.Agent) (bool, error) {
			if memory.MatchTags(a.Tags, some, false) {
				ids = append(ids, a.ID)
			}
			return len(ids) < maxTaggedScan, nil
		})
	})
	return ids, err
}
