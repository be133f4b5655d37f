package api

import (
	"net/http"
	"strings"

	"github.com/kelpie/kelpie/agent"
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
	AgentID            *string                   `json:"agent_id"`
	CompactionSettings *agent.CompactionSettings `json:"compaction_settings"`
}

func (r conversationRequest) settings() agent.CompactionSettings {
	if r.CompactionSettings == nil {
		return agent.CompactionSettings{}
	}
	return *r.CompactionSettings
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

func (s *server) agentContext(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	convID := q.str("conversation_id")
	if err := q.err(); err != nil {
		return nil, err
	}
	if convID == defaultConversation {
		convID = ""
	}
	return s.svc.Agents.Context(r.Context(), id, convID)
}

// resetMessagesRequest is the body of reset-messages.
type resetMessagesRequest struct {
	AddDefaultInitialMessages bool `json:"add_default_initial_messages"`
}

// resetMessages answers with the agent, or with null to the clients Letta
// answers so (its 1.0 SDKs: see wantsNoAgentState).
func (s *server) resetMessages(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req resetMessagesRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	st, err := s.svc.Agents.ResetMessages(r.Context(), id)
	if err != nil || wantsNoAgentState(r) {
		return nil, err
	}
	return st, nil
}

// wantsNoAgentState is Letta's test for a client of its 1.0 SDKs, which
// reset-messages answers with null: one that sends the Stainless package
// version or no User-Agent, or whose User-Agent is
// "[@letta-ai/]letta-client/1.x". Any other User-Agent is taken, as Letta
// takes it, for an older client, which gets the agent.
func wantsNoAgentState(r *http.Request) bool {
	if r.Header.Get("X-Stainless-Package-Version") != "" {
		return true
	}
	ua := r.UserAgent()
	if ua == "" {
		return true
	}
	parts := strings.Split(ua, "/")
	switch {
	case len(parts) == 3 && parts[0] == "@letta-ai" && parts[1] == "letta-client":
	case len(parts) == 2 && parts[0] == "letta-client":
	default:
		return false
	}
	major, _, ok := strings.Cut(parts[len(parts)-1], ".")
	return ok && major == "1"
}

func (s *server) deleteConversation(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "conversation_id")
	if err != nil {
		return nil, err
	}
	return nil, s.svc.Conversations.Delete(r.Context(), id)
}

// summarizeAgent compacts an agent's default conversation; with nothing to
// summarise it answers the context as it is (Letta's /summarize).
func (s *server) summarizeAgent(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req conversationRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.Agents.Summarize(r.Context(), id, "", req.settings(), true)
}

// compactConversation compacts a conversation, or an agent's default one;
// with nothing to summarise it answers 400 (Letta's /compact).
func (s *server) compactConversation(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := pathConversation(r); err != nil {
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
	return s.svc.Agents.Summarize(r.Context(), agentID, convID, req.settings(), false)
}

func (s *server) forkConversation(_ http.ResponseWriter, r *http.Request) (any, error) {
	agentID, convID, err := s.conversationTarget(r, nil)
	if err != nil {
		return nil, err
	}
	return s.svc.Conversations.Fork(r.Context(), agentID, convID)
}
