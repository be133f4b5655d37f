package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

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
	var req letta.CreateAgentRequest
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
	return s.svc.Agents.CreateEncoded(r.Context(), req)
}

func agentFilter(q *query) agent.AgentFilter {
	return agent.AgentFilter{
		Name:         q.str("name"),
		Tags:         q.list("tags"),
		MatchAllTags: q.boolean("match_all_tags"),
		QueryText:    q.str("query_text"),
		ProjectID:    q.str("project_id"),
		IdentityID:   q.str("identity_id"),
	}
}

func (s *server) listAgents(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agentFilter(q)
	page := q.page(letta.Desc)
	blocks, tools := q.include()
	f.WithBlocks = agentBlocksWanted(r, blocks)
	if err := q.err(); err != nil {
		return nil, err
	}
	agents, err := s.svc.Agents.List(r.Context(), f, page)
	if err != nil || !tools || f.WithBlocks {
		return agents, err
	}
	for _, st := range agents {
		if err := s.fillTools(r, st); err != nil {
			return nil, err
		}
	}
	return agents, nil
}

func (s *server) countAgents(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agentFilter(q)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Agents.Count(r.Context(), f)
}

func (s *server) getAgent(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	blocks, tools := q.include()
	withBlocks := agentBlocksWanted(r, blocks)
	if err := q.err(); err != nil {
		return nil, err
	}
	st, err := s.svc.Agents.Get(r.Context(), id, withBlocks)
	if agent.KindOf(err) == letta.KindNotFound {
		return nil, errorf(http.StatusNotFound, "Agent with ID %s not found", id)
	}
	if err == nil && tools && !withBlocks {
		err = s.fillTools(r, st)
	}
	return st, err
}

// fillTools gives an agent read without its relationships (as the 1.x
// SDK asks) its tools, for include=agent.tools.
func (s *server) fillTools(r *http.Request, st *letta.AgentState) error {
	tools, err := s.svc.Tools.ForAgent(r.Context(), st.ID, letta.Page{Order: letta.Asc, Limit: agent.MaxListLimit})
	st.Tools = make([]any, len(tools))
	for i, t := range tools {
		st.Tools[i] = t
	}
	return err
}

func (s *server) updateAgent(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req letta.UpdateAgentRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.Agents.UpdateEncoded(r.Context(), id, req)
}

type message struct {
	Message string `json:"message"`
}

func (s *server) deleteAgent(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	if err := s.svc.Agents.Delete(r.Context(), id); err != nil {
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
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Agents.Blocks(r.Context(), id, page)
}

func (s *server) getAgentBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	return s.svc.Agents.Block(r.Context(), id, r.PathValue("block_label"))
}

func (s *server) updateAgentBlock(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var u letta.BlockUpdate
	if err := s.decodeBody(w, r, &u); err != nil {
		return nil, err
	}
	if err := checkUpdateLimit(u); err != nil {
		return nil, err
	}
	return s.svc.Agents.UpdateBlock(r.Context(), id, r.PathValue("block_label"), u)
}

func (s *server) attachBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "block_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Agents.AttachBlock(r.Context(), ids["agent_id"], ids["block_id"])
}

func (s *server) detachBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "block_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Agents.DetachBlock(r.Context(), ids["agent_id"], ids["block_id"])
}
