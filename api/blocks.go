package api

import (
	"context"
	"fmt"
	"net/http"
	"unicode/utf8"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

func (s *server) createBlock(w http.ResponseWriter, r *http.Request) (any, error) {
	var cb letta.CreateBlock
	if err := s.decodeBody(w, r, &cb); err != nil {
		return nil, err
	}
	if cb.Label == nil {
		return nil, validationError(missingLabel())
	}
	return s.svc.Blocks.Create(r.Context(), cb)
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
	page := q.page(letta.Asc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Blocks.List(r.Context(), f, page)
}

func (s *server) countBlocks(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Blocks.Count(r.Context())
}

func (s *server) getBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "block_id")
	if err != nil {
		return nil, err
	}
	b, err := s.svc.Blocks.Get(r.Context(), id)
	if agent.KindOf(err) == letta.KindNotFound {
		return nil, errorf(http.StatusNotFound, "Block with id '%s' not found", id)
	}
	return b, err
}

func (s *server) updateBlock(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "block_id")
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
	return s.svc.Blocks.Update(r.Context(), id, u)
}

// checkUpdateLimit is Letta's validation of a block update that gives both
// a value and a limit: a value over the limit is a 422, before the block is
// read. (A value over the block's stored limit is the service's 400.)
func checkUpdateLimit(u letta.BlockUpdate) error {
	if u.Value == nil || u.Limit == nil {
		return nil
	}
	n := utf8.RuneCountInString(*u.Value)
	if n <= *u.Limit {
		return nil
	}
	msg := fmt.Sprintf("Edit failed: Exceeds %d character limit (requested %d)", *u.Limit, n)
	return validationError(pyErr{
		typ: "value_error", loc: pyTuple{"body"}, msg: "Value error, " + msg,
		input: pyDict{{"value", *u.Value}, {"limit", *u.Limit}},
		ctx:   pyDict{{"error", pyCall{"ValueError", msg}}},
	})
}

func (s *server) deleteBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "block_id")
	if err != nil {
		return nil, err
	}
	// Letta answers a block delete with a JSON null.
	return nil, s.svc.Blocks.Delete(r.Context(), id)
}

// agentLister lists the agents linked to an object, newest first.
type agentLister func(ctx context.Context, id string, p letta.Page, withBlocks bool) ([]*letta.AgentState, error)

// linkedAgents answers the listing of the agents linked to the object its
// path parameter param names (a block, an identity, an archive) with the
// lister of that kind of object. Letta never loads their relationships
// unless asked with include.
func (s *server) linkedAgents(param string, lister func(*agent.Service) agentLister) handlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) (any, error) {
		id, err := pathID(r, param)
		if err != nil {
			return nil, err
		}
		q := newQuery(r)
		page := q.page(letta.Desc)
		withBlocks, _ := q.include()
		if err := q.err(); err != nil {
			return nil, err
		}
		return lister(s.svc)(r.Context(), id, page, withBlocks)
	}
}
