package api

import (
	"net/http"

	"github.com/kelpie/kelpie/letta"
)

// listTools lists the tools the server knows, optionally by name.
func (s *server) listTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	name := q.str("name")
	if err := q.err(); err != nil {
		return nil, err
	}
	out := []letta.Tool{}
	for _, t := range s.svc.Tools.List(r.Context()) {
		if name == "" || t.Name == name {
			out = append(out, t)
		}
	}
	return out, nil
}

// addBaseTools answers with the built-in tools, which always exist.
func (s *server) addBaseTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Tools.List(r.Context()), nil
}

func (s *server) listAgentTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	return s.svc.Tools.ForAgent(r.Context(), id)
}

// listModels lists the models of the configured providers: an empty list
// when none is configured.
func (s *server) listModels(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Models.List(r.Context()), nil
}

// listEmbeddingModels lists embedding models: Kelpie has none yet.
func (s *server) listEmbeddingModels(http.ResponseWriter, *http.Request) (any, error) {
	return []any{}, nil
}
