package api

import (
	"net/http"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// defaultConversation is the conversation id that names an agent's own
// (default) conversation; the agent comes from agent_id in the body or
// query.
const defaultConversation = "default"

// pathConversation returns the conversation_id path parameter of the
// routes that also take an agent's default conversation: a conversation id,
// "default", or an agent id (naming that agent's default conversation, the
// older form Letta still accepts); else Letta's 422.
func pathConversation(r *http.Request) (string, error) {
	v := r.PathValue("conversation_id")
	if v == defaultConversation || letta.ValidID("agent", v) {
		return v, nil
	}
	return pathID(r, "conversation_id")
}

// queryAgentID returns the agent_id query parameter, or Letta's 422.
func queryAgentID(r *http.Request) (string, error) {
	agentID := r.URL.Query().Get("agent_id")
	if !letta.ValidID("agent", agentID) {
		e := badPathID("agent_id", "agent", agentID)
		e.loc = pyTuple{"query", "agent_id"}
		return "", validationError(e)
	}
	return agentID, nil
}

// conversationTarget resolves a conversation path id to the agent and the
// conversation id the service takes ("" for the default conversation).
func (s *server) conversationTarget(r *http.Request, bodyAgentID *string) (agentID, convID string, err error) {
	convID, err = pathConversation(r)
	if err != nil {
		return "", "", err
	}
	if letta.ValidID("agent", convID) {
		return convID, "", nil
	}
	if convID != defaultConversation {
		c, err := s.svc.Conversations.Get(r.Context(), convID)
		if err != nil {
			return "", "", err
		}
		return c.AgentID, convID, nil
	}
	agentID = r.URL.Query().Get("agent_id")
	if bodyAgentID != nil && *bodyAgentID != "" {
		agentID = *bodyAgentID
	}
	if !letta.ValidID("agent", agentID) {
		return "", "", validationError(pyErr{typ: "value_error", loc: pyTuple{"body", "agent_id"},
			msg: "Value error, the 'default' conversation needs agent_id: a valid agent id", input: agentID})
	}
	return agentID, "", nil
}

func (s *server) createConversation(w http.ResponseWriter, r *http.Request) (any, error) {
	agentID, err := queryAgentID(r)
	if err != nil {
		return nil, err
	}
	var req letta.CreateConversationRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.Conversations.Create(r.Context(), agentID, req)
}

func (s *server) listConversations(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	agentID, err := queryAgentID(r)
	if err != nil {
		return nil, err
	}
	return s.svc.Conversations.List(r.Context(), agentID, page)
}

func (s *server) getConversation(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "conversation_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Conversations.Get(r.Context(), id)
}

func (s *server) updateConversation(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "conversation_id")
	if err != nil {
		return nil, err
	}
	var req letta.CreateConversationRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.Conversations.Update(r.Context(), id, req)
}

func (s *server) listConversationMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	agentID, convID, err := s.conversationTarget(r, nil)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Desc)
	o := q.messageTypes()
	if err := q.err(); err != nil {
		return nil, err
	}
	ms, err := s.svc.Messages.List(r.Context(), agentID, agent.MessageFilter{ConversationID: convID, DefaultOnly: convID == ""}, page)
	if err != nil {
		return nil, err
	}
	return o.filter(ms), nil
}

// sendConversationMessage streams unless the body says streaming: false.
func (s *server) sendConversationMessage(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := pathConversation(r); err != nil {
		return nil, err
	}
	var req letta.MessageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	agentID, convID, err := s.conversationTarget(r, req.AgentID)
	if err != nil {
		return nil, err
	}
	// Letta refuses a second message to a conversation in use (409
	// CONVERSATION_BUSY) rather than queueing it.
	return s.runTurn(w, r, agentID, convID, req, true, true)
}

func (s *server) resumeConversationStream(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := pathConversation(r); err != nil {
		return nil, err
	}
	var req retrieveStreamRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	agentID, convID, err := s.conversationTarget(r, req.AgentID)
	if err != nil {
		return nil, err
	}
	t, err := s.svc.Messages.ResumeConversation(r.Context(), agentID, convID)
	if err != nil {
		return nil, err
	}
	s.streamTurn(w, r, t, req.options())
	return written{}, nil
}

func (s *server) cancelConversation(w http.ResponseWriter, r *http.Request) (any, error) {
	var req cancelRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	agentID, convID, err := s.conversationTarget(r, nil)
	if err != nil {
		return nil, err
	}
	return s.svc.Messages.Cancel(r.Context(), agentID, convID, req.RunIDs)
}
