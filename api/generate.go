package api

import (
	"net/http"
	"strings"

	"github.com/kelpie/kelpie/letta"
)

// generate is Letta's generate_completion: one answer of the agent's model
// to a prompt, nothing stored. A missing or blank prompt is pydantic's 422,
// as Letta's request model rejects it.
func (s *server) generate(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req letta.GenerateRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	switch {
	case req.Prompt == nil:
		return nil, validationError(pyErr{typ: "missing", loc: pyTuple{"body", "prompt"}, msg: "Field required", noInput: true})
	case *req.Prompt == "":
		return nil, validationError(pyErr{typ: "string_too_short", loc: pyTuple{"body", "prompt"},
			msg: "String should have at least 1 character", input: "", ctx: pyDict{{"min_length", 1}}})
	case strings.TrimSpace(*req.Prompt) == "":
		msg := "prompt cannot be empty or whitespace-only"
		return nil, validationError(pyErr{typ: "value_error", loc: pyTuple{"body", "prompt"}, msg: "Value error, " + msg,
			input: *req.Prompt, ctx: pyDict{{"error", pyCall{"ValueError", msg}}}})
	}
	return s.svc.Agents.Generate(r.Context(), id, req)
}
