package api

import (
	"net/http"

	"github.com/kelpie/kelpie/agent"
)

func pathBlockID(r *http.Request) (string, error) {
	ids, err := pathIDs(r, "block_id")
	if err != nil {
		return "", err
	}
	return ids["block_id"], nil
}

func (s *server) createBlock(w http.ResponseWriter, r *http.Request) (any, error) {
	var cb agent.CreateBlock
	if err := s.decodeBody(w, r, &cb); err != nil {
		return nil, err
	}
	if cb.Label == nil {
		return nil, validationError(missingLabel())
	}
	return s.svc.CreateBlock(r.Context(), cb)
}

func (s *server) listBlocks(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agent.BlockFilter{
		Label:         q.str("label"),
		TemplateName:  q.str("name"),
		ProjectID:     q.str("project_id"),
		Tags:          q.list("tags"),
		MatchAllTags:  q.boolean("match_all_tags"),
		TemplatesOnly: q.boolean("templates_only"),
	}
	page := q.page(agent.Asc)
	if err := q.err(); err != nil {
		return nil, err
	}
	blocks, err := s.svc.ListBlocks(r.Context(), f, page)
	if err != nil {
		return nil, err
	}
	if blocks == nil {
		blocks = []agent.Block{}
	}
	return blocks, nil
}

func (s *server) countBlocks(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.CountBlocks(r.Context())
}

func (s *server) getBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathBlockID(r)
	if err != nil {
		return nil, err
	}
	b, err := s.svc.GetBlock(r.Context(), id)
	if agent.KindOf(err) == agent.KindNotFound {
		return nil, errorf(http.StatusNotFound, "Block with id '%s' not found", id)
	}
	return b, err
}

func (s *server) updateBlock(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathBlockID(r)
	if err != nil {
		return nil, err
	}
	var u agent.BlockUpdate
	if err := s.decodeBody(w, r, &u); err != nil {
		return nil, err
	}
	return s.svc.UpdateBlock(r.Context(), id, u)
}

func (s *server) deleteBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathBlockID(r)
	if err != nil {
		return nil, err
	}
	// Letta answers a block delete with a JSON null.
	return nil, s.svc.DeleteBlock(r.Context(), id)
}

func (s *server) listBlockAgents(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathBlockID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(agent.Desc)
	// Letta never loads relationships here unless asked with include.
	withBlocks := q.include()
	if err := q.err(); err != nil {
		return nil, err
	}
	agents, err := s.svc.ListBlockAgents(r.Context(), id, page, withBlocks)
	if err != nil {
		return nil, err
	}
	if agents == nil {
		agents = []*agent.AgentState{}
	}
	return agents, nil
}
