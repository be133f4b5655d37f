package api

import (
	"net/http"
)

// The context window's routes: an agent's and a conversation's system
// message recompiled, one message read.

func (s *server) getMessage(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "message_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Messages.Get(r.Context(), id)
}

func (s *server) recompileAgent(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	dryRun := q.boolean("dry_run")
	q.boolean("update_timestamp") // validated; a recompile always stamps its time
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Agents.Recompile(r.Context(), id, "", dryRun)
}

// conversationRequest is the optional body of a conversation's recompile
// and compact: agent_id names the agent of the "default" conversation.
type conversationRequest struct {
	AgentID            *string        `json:"agent_id"`
	CompactionSettings map[string]any `json:"compaction_settings"`
}

func (s *server) recompileConversation(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := pathConversation(r); err != nil {
		return nil, err
	}
	q := newQuery(r)
	dryRun := q.boolean("dry_run")
	if err := q.err(); err != nil {
		return nil, err
	}
	var req conversationRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	agentID, convID, err := s.conversationTarget(r, req.AgentID)
	if err != nil {
		return nil, err
	}
	return s.svc.Agents.Recompile(r.Context(), agentID, convID, dryRun)
}
