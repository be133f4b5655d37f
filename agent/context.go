package agent

import (
	"context"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// The context window's operations: recompiling a context's system message,
// reading one message. (See package window.)

// recompilePayload is the payload of opRecompile.
type recompilePayload struct {
	ConversationID string `json:"conversation_id,omitempty"`
	// IfChanged recompiles only when the agent's instructions or memory
	// changed (a follow-up of an edit); else always.
	IfChanged bool `json:"if_changed,omitempty"`
	DryRun    bool `json:"dry_run,omitempty"`
}

// Recompile recompiles the system message of an agent's default
// conversation (convID empty) or of one of its conversations from the
// agent's current instructions and memory, stores it in place unless
// dryRun, and returns its text.
func (s *Agents) Recompile(ctx context.Context, agentID, convID string, dryRun bool) (string, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return "", err
	}
	var text string
	err := s.c.invoke(ctx, schema.AgentActor(agentID), opRecompile, recompilePayload{ConversationID: convID, DryRun: dryRun}, &text)
	return text, err
}

// recompileAfterEdit brings an agent's default system message up to date
// after an edit of its memory made outside its actor (a block edited by
// label runs on the block's actor), as Letta rebuilds it after such an
// edit. It is a transaction of its own: if it fails, the edit stands and
// the agent's next turn recompiles the message (see window).
func (s *Agents) recompileAfterEdit(ctx context.Context, agentID string) {
	err := s.c.invoke(WithIdempotencyKey(ctx, ""), schema.AgentActor(agentID), opRecompile, recompilePayload{IfChanged: true}, nil)
	if err != nil {
		s.c.log.WarnContext(ctx, "agent: could not recompile the system message after a memory edit; the next turn will", "agent", agentID, "error", err)
	}
}

func recompile(_ *core, call *actor.Call, a *schema.Agent, p recompilePayload) ([]byte, error) {
	o := window.Owner{Agent: a}
	if p.ConversationID != "" {
		conv, err := schema.GetAgentConversation(call.Txn, a.ID, p.ConversationID)
		if err != nil {
			return nil, err
		}
		o.Conv = conv
	}
	when := window.Always
	if p.IfChanged {
		if o.Context().SystemID == "" {
			return schema.Encode("")
		}
		when = window.IfChanged
	} else if !p.DryRun && o.Context().SystemID == "" {
		// A context without a system message gets one appended.
		if err := needSettled(call.Txn, a.ID); err != nil {
			return nil, err
		}
	}
	m, written, err := window.Refresh(call.Txn, o, call.Now, when, p.DryRun)
	if err != nil {
		return nil, err
	}
	if written {
		if err := storeOwner(call, o); err != nil {
			return nil, err
		}
	}
	return schema.Encode(m.Text)
}

// needSettled refuses, while tool calls wait for their results, an
// operation that would append to the agent's history anything but those
// results (see loop.Settled).
func needSettled(txn kv.Txn, agentID string) error {
	settled, err := loop.Settled(txn, agentID)
	if err == nil && !settled {
		return letta.Conflictf("the agent is waiting for the results of its tool calls: send them (an approval reply) first")
	}
	return err
}

// storeOwner stores the record a context belongs to.
func storeOwner(call *actor.Call, o window.Owner) error {
	if o.Conv != nil {
		return schema.PutConversation(call.Txn, o.Conv)
	}
	call.SetState(o.Agent)
	return nil
}

// Get returns a stored message as the messages it shows as (Letta's
// retrieve_message: a list).
func (s *Messages) Get(ctx context.Context, messageID string) ([]letta.Message, error) {
	if err := letta.CheckID("message_id", "message", messageID); err != nil {
		return nil, err
	}
	var out []letta.Message
	err := s.c.read(ctx, func(txn kv.Txn) error {
		agentID, seq, err := schema.LocateMessage(txn, messageID)
		if letta.KindOf(err) == letta.KindNotFound {
			return letta.NotFoundf("Message with id %s not found.", messageID)
		}
		if err != nil {
			return err
		}
		m, err := schema.GetMessage(txn, agentID, seq)
		if err == nil {
			out = message.Render(m)
		}
		return err
	})
	return out, err
}
