package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/kelpie/kelpie/agent"
)

// pathIDs returns the named id path parameters, or Letta's 422 listing
// every malformed one.
func pathIDs(r *http.Request, params ...string) (map[string]string, error) {
	out := map[string]string{}
	var errs []pyErr
	for _, p := range params {
		v := r.PathValue(p)
		out[p] = v
		prefix := strings.TrimSuffix(p, "_id")
		var ok bool
		switch p {
		case "agent_id":
			ok = agent.ValidAgentID(v)
		case "block_id":
			ok = agent.ValidBlockID(v)
		}
		if !ok {
			errs = append(errs, badPathID(p, prefix, v))
		}
	}
	if len(errs) > 0 {
		return nil, validationError(errs...)
	}
	return out, nil
}

// pathAgentID returns the agent_id path parameter, or Letta's 422.
func pathAgentID(r *http.Request) (string, error) {
	ids, err := pathIDs(r, "agent_id")
	if err != nil {
		return "", err
	}
	return ids["agent_id"], nil
}

// isV1SDK tells Letta's 1.x SDKs apart from legacy clients the way Letta
// does: they send X-Stainless-Package-Version, or no User-Agent, or a
// letta-client/1.x one.
func isV1SDK(h http.Header) bool {
	if len(h.Values("X-Stainless-Package-Version")) > 0 {
		return true
	}
	ua := h.Get("User-Agent")
	return ua == "" || strings.Contains(ua, "letta-client/1.")
}

// agentBlocksWanted says whether a read of agents loads their blocks:
// legacy clients always get them, 1.x SDKs only with include=agent.blocks.
func agentBlocksWanted(r *http.Request, include bool) bool {
	return include || !isV1SDK(r.Header)
}

// missingLabel is pydantic's error for a block without its required label.
func missingLabel(loc ...any) pyErr {
	return pyErr{typ: "missing", loc: append(append(pyTuple{"body"}, loc...), "label"), msg: "Field required", noInput: true}
}

func (s *server) createAgent(w http.ResponseWriter, r *http.Request) (any, error) {
	var req agent.CreateAgentRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	var errs []pyErr
	for i, b := range req.MemoryBlocks {
		if b.Label == nil {
			errs = append(errs, missingLabel("memory_blocks", i))
		}
	}
	if len(errs) > 0 {
		return nil, validationError(errs...)
	}
	return s.svc.CreateAgent(r.Context(), req)
}

func agentFilter(q *query) agent.AgentFilter {
	return agent.AgentFilter{
		Name:         q.str("name"),
		Tags:         q.list("tags"),
		MatchAllTags: q.boolean("match_all_tags"),
		QueryText:    q.str("query_text"),
		ProjectID:    q.str("project_id"),
	}
}

func (s *server) listAgents(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agentFilter(q)
	page := q.page(agent.Desc)
	f.WithBlocks = agentBlocksWanted(r, q.include())
	if err := q.err(); err != nil {
		return nil, err
	}
	agents, err := s.svc.ListAgents(r.Context(), f, page)
	if err != nil {
		return nil, err
	}
	if agents == nil {
		agents = []*agent.AgentState{}
	}
	return agents, nil
}

func (s *server) countAgents(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agentFilter(q)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.CountAgents(r.Context(), f)
}

func (s *server) getAgent(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	withBlocks := agentBlocksWanted(r, q.include())
	if err := q.err(); err != nil {
		return nil, err
	}
	st, err := s.svc.GetAgent(r.Context(), id, withBlocks)
	if agent.KindOf(err) == agent.KindNotFound {
		return nil, errorf(http.StatusNotFound, "Agent with ID %s not found", id)
	}
	return st, err
}

func (s *server) updateAgent(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req agent.UpdateAgentRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.UpdateAgent(r.Context(), id, req)
}

type message struct {
	Message string `json:"message"`
}

func (s *server) deleteAgent(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	if err := s.svc.DeleteAgent(r.Context(), id); err != nil {
		return nil, err
	}
	return message{fmt.Sprintf("Agent id=%s successfully deleted", id)}, nil
}

func (s *server) listAgentBlocks(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(agent.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	blocks, err := s.svc.ListAgentBlocks(r.Context(), id, page)
	if err != nil {
		return nil, err
	}
	if blocks == nil {
		blocks = []agent.Block{}
	}
	return blocks, nil
}

func (s *server) getAgentBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	return s.svc.GetAgentBlock(r.Context(), id, r.PathValue("block_label"))
}

func (s *server) updateAgentBlock(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var u agent.BlockUpdate
	if err := s.decodeBody(w, r, &u); err != nil {
		return nil, err
	}
	return s.svc.UpdateAgentBlock(r.Context(), id, r.PathValue("block_label"), u)
}

func (s *server) attachBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "block_id")
	if err != nil {
		return nil, err
	}
	return s.svc.AttachBlock(r.Context(), ids["agent_id"], ids["block_id"])
}

func (s *server) detachBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "block_id")
	if err != nil {
		return nil, err
	}
	return s.svc.DetachBlock(r.Context(), ids["agent_id"], ids["block_id"])
}
