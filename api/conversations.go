package api

import (
	"net/http"

	"github.com/kelpie/kelpie/agent"
)

// defaultConversation is the conversation id that names an agent's own
// (default) conversation; the agent comes from agent_id in the body or
// query.
const defaultConversation = "default"

func validConversation(s string) bool {
	return s == defaultConversation || agent.ValidConversationID(s)
}

// conversationTarget resolves a conversation path id to the agent and the
// conversation id the service takes ("" for the default conversation).
func (s *server) conversationTarget(r *http.Request, bodyAgentID *string) (agentID, convID string, err error) {
	convID, err = pathID(r, "conversation_id", "conv", validConversation)
	if err != nil {
		return "", "", err
	}
	if convID != defaultConversation {
		c, err := s.svc.GetConversation(r.Context(), convID)
		if err != nil {
			return "", "", err
		}
		return c.AgentID, convID, nil
	}
	agentID = r.URL.Query().Get("agent_id")
	if bodyAgentID != nil && *bodyAgentID != "" {
		agentID = *bodyAgentID
	}
	if !agent.ValidAgentID(agentID) {
		return "", "", validationError(pyErr{typ: "value_error", loc: pyTuple{"body", "agent_id"},
			msg: "Value error, the 'default' conversation needs agent_id: a valid agent id", input: agentID})
	}
	return agentID, "", nil
}

func (s *server) createConversation(w http.ResponseWriter, r *http.Request) (any, error) {
	agentID := r.URL.Query().Get("agent_id")
	if !agent.ValidAgentID(agentID) {
		e := badPathID("agent_id", "agent", agentID)
		e.loc = pyTuple{"query", "agent_id"}
		return nil, validationError(e)
	}
	var req agent.CreateConversationRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.CreateConversation(r.Context(), agentID, req)
}

func (s *server) listConversations(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	agentID := q.str("agent_id")
	page := q.page(agent.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	if !agent.ValidAgentID(agentID) {
		e := badPathID("agent_id", "agent", agentID)
		e.loc = pyTuple{"query", "agent_id"}
		return nil, validationError(e)
	}
	return s.svc.ListConversations(r.Context(), agentID, page)
}

func (s *server) getConversation(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "conversation_id", "conv", agent.ValidConversationID)
	if err != nil {
		return nil, err
	}
	return s.svc.GetConversation(r.Context(), id)
}

func (s *server) updateConversation(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "conversation_id", "conv", agent.ValidConversationID)
	if err != nil {
		return nil, err
	}
	var req agent.CreateConversationRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.UpdateConversation(r.Context(), id, req)
}

func (s *server) listConversationMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	agentID, convID, err := s.conversationTarget(r, nil)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(agent.Desc)
	o := q.messageTypes()
	if err := q.err(); err != nil {
		return nil, err
	}
	ms, err := s.svc.ListMessages(r.Context(), agentID, agent.MessageFilter{ConversationID: convID, DefaultOnly: convID == ""}, page)
	if err != nil {
		return nil, err
	}
	return o.filter(ms), nil
}

// sendConversationMessage streams unless the body says streaming: false.
func (s *server) sendConversationMessage(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := pathID(r, "conversation_id", "conv", validConversation); err != nil {
		return nil, err
	}
	var req agent.MessageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	agentID, convID, err := s.conversationTarget(r, req.AgentID)
	if err != nil {
		return nil, err
	}
	return s.runTurn(w, r, agentID, convID, req, true)
}

// retrieveStreamRequest is the body of the stream-resuming routes.
type retrieveStreamRequest struct {
	AgentID       *string `json:"agent_id"`
	StartingAfter int     `json:"starting_after"`
	IncludePings  *bool   `json:"include_pings"`
}

func (o *retrieveStreamRequest) options() streamOptions {
	return streamOptions{pings: o.IncludePings == nil || *o.IncludePings, startingAfter: o.StartingAfter}
}

func (s *server) resumeConversationStream(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := pathID(r, "conversation_id", "conv", validConversation); err != nil {
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
	var t *agent.Turn
	if convID != "" {
		t, err = s.svc.StreamConversation(r.Context(), convID)
	} else {
		var runs []*agent.Run
		runs, err = s.svc.ListRuns(r.Context(), agent.RunFilter{AgentID: agentID}, agent.Page{Limit: 1, Order: agent.Desc})
		if err == nil && len(runs) == 0 {
			return nil, errorf(http.StatusNotFound, "No runs found for agent %s", agentID)
		}
		if err == nil {
			t, err = s.svc.StreamTurn(r.Context(), runs[0].ID)
		}
	}
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
	return s.svc.CancelRuns(r.Context(), agentID, convID, req.RunIDs)
}

// ---- runs ---------------------------------------------------------------------------

func pathRunID(r *http.Request) (string, error) {
	return pathID(r, "run_id", "run", agent.ValidRunID)
}

func (s *server) listRuns(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agent.RunFilter{AgentID: q.str("agent_id"), ConversationID: q.str("conversation_id"), Statuses: q.list("statuses")}
	if q.has("active") {
		f.Active = q.boolean("active")
	}
	page := q.page(agent.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.ListRuns(r.Context(), f, page)
}

func (s *server) getRun(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathRunID(r)
	if err != nil {
		return nil, err
	}
	return s.svc.GetRun(r.Context(), id)
}

func (s *server) listRunMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathRunID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(agent.Asc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.RunMessages(r.Context(), id, page)
}

func (s *server) resumeRunStream(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathRunID(r)
	if err != nil {
		return nil, err
	}
	var req retrieveStreamRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	t, err := s.svc.StreamTurn(r.Context(), id)
	if err != nil {
		return nil, err
	}
	s.streamTurn(w, r, t, req.options())
	return written{}, nil
}

func (s *server) cancelRun(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathRunID(r)
	if err != nil {
		return nil, err
	}
	run, err := s.svc.GetRun(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if _, err := s.svc.CancelRuns(r.Context(), run.AgentID, "", []string{id}); err != nil {
		return nil, err
	}
	return s.svc.GetRun(r.Context(), id)
}
