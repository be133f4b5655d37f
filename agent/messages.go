package agent

import (
	"context"
	"errors"

	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Messages is the surface of an agent's messages: sending them (a turn of
// the agent loop), following turns, cancelling them, and listing history.
type Messages struct{ c *core }

// Turn is a turn in progress or replayed: see loop.Turn.
type Turn = loop.Turn

// DefaultMessageListLimit is Letta's page size for messages.
const DefaultMessageListLimit = 100

// Send starts a turn of the agent loop (see loop.Manager.Start); convID is
// empty for the agent's default conversation. It waits for the agent's
// turn in progress, if any.
func (s *Messages) Send(ctx context.Context, agentID, convID string, req letta.MessageRequest) (*Turn, error) {
	return s.send(ctx, loop.Request{AgentID: agentID, ConvID: convID, Message: req})
}

// SendUnlessBusy is Send, but while another turn of the conversation is
// running or waiting it answers a *letta.ConversationBusy instead of
// waiting, as Letta answers a message to a conversation in use.
func (s *Messages) SendUnlessBusy(ctx context.Context, agentID, convID string, req letta.MessageRequest) (*Turn, error) {
	return s.send(ctx, loop.Request{AgentID: agentID, ConvID: convID, Message: req, NoQueue: true})
}

func (s *Messages) send(ctx context.Context, r loop.Request) (*Turn, error) {
	agentID, convID, req := r.AgentID, r.ConvID, r.Message
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if convID != "" {
		if err := letta.CheckID("conversation_id", "conv", convID); err != nil {
			return nil, err
		}
	}
	var err error
	if r.Message.OverrideModel, err = s.c.autoModel(req.OverrideModel); err != nil {
		return nil, err
	}
	r.IdempotencyKey = idempotencyKey(ctx)
	var group *schema.Group
	r.Read = func(txn kv.Txn) (err error) {
		group, err = managedGroup(txn, agentID)
		return err
	}
	t, err := s.c.turns.Start(ctx, r)
	if err == nil && group != nil && group.ManagerType == letta.ManagerSleeptime {
		go s.c.afterTurn(group.ID, agentID, t)
	}
	return t, err
}

// Stream returns the turn of a run to follow: the live one if it is in
// memory, else one rebuilt from storage (finished).
func (s *Messages) Stream(ctx context.Context, runID string) (*Turn, error) {
	if err := letta.CheckID("run_id", "run", runID); err != nil {
		return nil, err
	}
	if t := s.c.turns.Recent(runID); t != nil {
		return t, nil
	}
	var t *Turn
	err := s.c.read(ctx, func(txn kv.Txn) error {
		run, err := schema.GetRun(txn, runID)
		if err != nil {
			return err
		}
		ms, err := message.OfRun(txn, run)
		if err != nil {
			return err
		}
		t = loop.Replay(run, ms)
		return nil
	})
	return t, err
}

// ResumeConversation returns the turn of the run in progress in a
// conversation, to follow it again; with convID empty (Letta's agent-direct
// mode), the agent's run in progress, whatever its conversation. As in
// Letta, nothing in progress is a bad request (a finished run is followed
// by its id, with Stream).
func (s *Messages) ResumeConversation(ctx context.Context, agentID, convID string) (*Turn, error) {
	var runID string
	if err := s.c.read(ctx, func(txn kv.Txn) error {
		if _, err := schema.GetAgent(txn, agentID); err != nil {
			return err
		}
		v, err := txn.Get(schema.ActiveRunKey(agentID))
		if errors.Is(err, kv.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		run, err := schema.GetRun(txn, string(v))
		if err == nil && (convID == "" || run.ConversationID == convID) && !run.Finished() {
			runID = run.ID
		}
		return err
	}); err != nil {
		return nil, err
	}
	if runID == "" {
		return nil, letta.Invalidf("INVALID_ARGUMENT: No active runs found for this conversation.")
	}
	return s.Stream(ctx, runID)
}

// Cancel cancels an agent's turn in progress (when runIDs is empty or
// names it), or the one of a conversation when convID is set. The turn
// stops at its next step with stop reason cancelled. It returns the
// cancelled runs.
func (s *Messages) Cancel(ctx context.Context, agentID, convID string, runIDs []string) (map[string]string, error) {
	if convID != "" {
		c, err := (&Conversations{s.c}).Get(ctx, convID)
		if err != nil {
			return nil, err
		}
		agentID = c.AgentID
	}
	if _, err := (&Agents{s.c}).Get(ctx, agentID, false); err != nil {
		return nil, err
	}
	out := map[string]string{}
	if runID := s.c.turns.Cancel(agentID, convID, runIDs); runID != "" {
		out[runID] = letta.RunCancelled
	}
	return out, nil
}

// MessageFilter narrows a listing of messages.
type MessageFilter struct {
	// ConversationID lists one conversation's messages; empty lists all
	// of the agent's.
	ConversationID string
	// DefaultOnly lists only the messages of the agent's default
	// conversation (those of no conversation).
	DefaultOnly bool
}

// List lists an agent's messages. The page's limit counts stored messages;
// each may show as several messages (sharing its id), as in Letta. Cursors
// are message ids.
func (s *Messages) List(ctx context.Context, agentID string, f MessageFilter, p letta.Page) ([]letta.Message, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultMessageListLimit)
	if err != nil {
		return nil, err
	}
	var out []letta.Message
	err = s.c.read(ctx, func(txn kv.Txn) error {
		if _, err := schema.GetAgent(txn, agentID); err != nil {
			return err
		}
		if f.ConversationID != "" {
			if _, err := schema.GetAgentConversation(txn, agentID, f.ConversationID); err != nil {
				return err
			}
		}
		ms, err := message.List(txn, agentID, f.ConversationID, f.DefaultOnly, p)
		if err == nil {
			out = message.Show(ms, p.Order)
		}
		return err
	})
	return out, err
}
