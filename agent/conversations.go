package agent

import (
	"context"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Conversations is the surface of conversations: threads of an agent's
// messages, each with its own history.
type Conversations struct{ c *core }

// DefaultConversationListLimit is the page size of conversation listings.
const DefaultConversationListLimit = 50

// conversationPayload is the payload of the conversation operations.
type conversationPayload struct {
	ID      string  `json:"id"`
	Summary *string `json:"summary"`
}

func checkSummary(summary *string) error {
	if summary == nil {
		return nil
	}
	return letta.CheckChars("summary", *summary, letta.MaxDescriptionChars)
}

// Create creates a conversation on an agent.
func (s *Conversations) Create(ctx context.Context, agentID string, req letta.CreateConversationRequest) (*letta.Conversation, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if err := checkSummary(req.Summary); err != nil {
		return nil, err
	}
	id, err := s.c.newIDFor(ctx, "conv")
	if err != nil {
		return nil, err
	}
	var c letta.Conversation
	err = s.c.invoke(ctx, schema.AgentActor(agentID), opCreateConversation, conversationPayload{ID: id, Summary: req.Summary}, &c)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Update changes a conversation's summary.
func (s *Conversations) Update(ctx context.Context, convID string, req letta.CreateConversationRequest) (*letta.Conversation, error) {
	c, err := s.Get(ctx, convID)
	if err != nil {
		return nil, err
	}
	if err := checkSummary(req.Summary); err != nil {
		return nil, err
	}
	var out letta.Conversation
	err = s.c.invoke(ctx, schema.AgentActor(c.AgentID), opUpdateConversation, conversationPayload{ID: convID, Summary: req.Summary}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns a conversation.
func (s *Conversations) Get(ctx context.Context, convID string) (*letta.Conversation, error) {
	if err := letta.CheckID("conversation_id", "conv", convID); err != nil {
		return nil, err
	}
	var out *letta.Conversation
	err := s.c.read(ctx, func(txn kv.Txn) error {
		c, err := schema.GetConversation(txn, convID)
		if err == nil {
			out, err = renderConversation(txn, c)
		}
		return err
	})
	return out, err
}

// List lists an agent's conversations by creation time.
func (s *Conversations) List(ctx context.Context, agentID string, p letta.Page) ([]*letta.Conversation, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultConversationListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.Conversation{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		if _, err := schema.GetAgent(txn, agentID); err != nil {
			return err
		}
		ix := index[*schema.Conversation]{
			prefix: schema.AgentConversationsOf(agentID), idPrefix: "conv", get: schema.GetConversation,
			created: func(c *schema.Conversation) time.Time { return c.CreatedAt },
		}
		return listIndex(txn, ix, p, func(c *schema.Conversation) (bool, error) {
			r, err := renderConversation(txn, c)
			out = append(out, r)
			return len(out) < p.Limit, err
		})
	})
	return out, err
}

// renderConversation renders a conversation with the ids of the messages in
// its context.
func renderConversation(txn kv.Txn, c *schema.Conversation) (*letta.Conversation, error) {
	ids, err := window.IDs(txn, window.Owner{Conv: c})
	if err != nil {
		return nil, err
	}
	return &letta.Conversation{
		CreatedAt: letta.Timestamp{Time: c.CreatedAt}, UpdatedAt: letta.Timestamp{Time: c.UpdatedAt},
		ID: c.ID, AgentID: c.AgentID, Summary: c.Summary,
		InContextMessageIDs: ids, IsolatedBlockIDs: []string{},
	}, nil
}

// encodeConversation answers a conversation write with the conversation as
// committed.
func encodeConversation(txn kv.Txn, c *schema.Conversation) ([]byte, error) {
	r, err := renderConversation(txn, c)
	if err != nil {
		return nil, err
	}
	return schema.Encode(r)
}

func createConversation(_ *core, call *actor.Call, a *schema.Agent, p conversationPayload) ([]byte, error) {
	txn := call.Txn
	if err := checkNewConversation(txn, p.ID); err != nil {
		return nil, err
	}
	c := &schema.Conversation{ID: p.ID, AgentID: a.ID, Summary: p.Summary, CreatedAt: call.Now, UpdatedAt: call.Now}
	// The conversation's system message is compiled now, with the memory
	// of now (Letta's rule). While a step's tool calls wait for their
	// results it cannot be appended: the conversation's first turn, which
	// comes after them, stores it then.
	settled, err := loop.Settled(txn, a.ID)
	if err != nil {
		return nil, err
	}
	if settled {
		if _, err := window.Open(txn, window.Owner{Agent: a, Conv: c}, call.Now); err != nil {
			return nil, err
		}
	} else {
		c.Context.Indexed = true // it has no message yet: every one will be indexed
	}
	return storeNewConversation(txn, c)
}

func checkNewConversation(txn kv.Txn, id string) error {
	if _, err := schema.GetConversation(txn, id); err == nil {
		return letta.Conflictf("conversation %s already exists", id)
	}
	return nil
}

// storeNewConversation stores a new conversation with its index entry and
// answers with it.
func storeNewConversation(txn kv.Txn, c *schema.Conversation) ([]byte, error) {
	if err := schema.PutConversation(txn, c); err != nil {
		return nil, err
	}
	if err := txn.Set(schema.IndexKey(schema.AgentConversationsOf(c.AgentID), c.CreatedAt, c.ID), nil); err != nil {
		return nil, err
	}
	return encodeConversation(txn, c)
}

func updateConversation(_ *core, call *actor.Call, a *schema.Agent, p conversationPayload) ([]byte, error) {
	c, err := schema.GetAgentConversation(call.Txn, a.ID, p.ID)
	if err != nil {
		return nil, err
	}
	if p.Summary != nil {
		c.Summary = p.Summary
	}
	c.UpdatedAt = call.Now
	if err := schema.PutConversation(call.Txn, c); err != nil {
		return nil, err
	}
	return encodeConversation(call.Txn, c)
}

// Delete deletes a conversation (schema.DeleteConversation): it is no
// longer found or listed; its messages stay in the agent's history.
func (s *Conversations) Delete(ctx context.Context, convID string) error {
	c, err := s.Get(ctx, convID)
	if err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.AgentActor(c.AgentID), opDeleteConversation, conversationPayload{ID: convID}, nil)
}

func deleteConversation(_ *core, call *actor.Call, a *schema.Agent, p conversationPayload) ([]byte, error) {
	c, err := schema.GetAgentConversation(call.Txn, a.ID, p.ID)
	if err != nil {
		return nil, err
	}
	return nil, schema.DeleteConversation(call.Txn, c)
}

// forkPayload is the payload of opForkConversation.
type forkPayload struct {
	ID     string `json:"id"`
	Source string `json:"source,omitempty"` // empty: the default conversation
}

// Fork creates a conversation of an agent whose context starts as the one
// of sourceID's (empty: the agent's default conversation): the same
// summary and messages (shared: the same ids), after a system message
// compiled from the agent's memory now (Letta's fork).
func (s *Conversations) Fork(ctx context.Context, agentID, sourceID string) (*letta.Conversation, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	id, err := s.c.newIDFor(ctx, "conv")
	if err != nil {
		return nil, err
	}
	var c letta.Conversation
	if err := s.c.invoke(ctx, schema.AgentActor(agentID), opForkConversation, forkPayload{ID: id, Source: sourceID}, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func forkConversation(_ *core, call *actor.Call, a *schema.Agent, p forkPayload) ([]byte, error) {
	txn := call.Txn
	src := window.Owner{Agent: a}
	if p.Source != "" {
		conv, err := schema.GetAgentConversation(txn, a.ID, p.Source)
		if err != nil {
			return nil, err
		}
		src.Conv = conv
	}
	if err := checkNewConversation(txn, p.ID); err != nil {
		return nil, err
	}
	if err := needSettled(txn, a.ID); err != nil {
		return nil, err
	}
	c := &schema.Conversation{ID: p.ID, AgentID: a.ID, ForkedFrom: src.ID(), CreatedAt: call.Now, UpdatedAt: call.Now}
	if src.Conv != nil {
		c.Summary = src.Conv.Summary
	}
	if err := window.Fork(txn, src, c, call.Now); err != nil {
		return nil, err
	}
	return storeNewConversation(txn, c)
}
