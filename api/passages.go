package api

import (
	"net/http"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

func (s *server) searchAllPassages(w http.ResponseWriter, r *http.Request) (any, error) {
	var req letta.PassageSearchRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	var errs []pyErr
	if n := req.Limit; n != nil && *n < 1 {
		errs = append(errs, pyErr{typ: "greater_than_equal", loc: pyTuple{"body", "limit"},
			msg: "Input should be greater than or equal to 1", input: *n, ctx: pyDict{{"ge", 1}}})
	}
	if n := req.Limit; n != nil && *n > agent.MaxPassageSearchLimit {
		errs = append(errs, pyErr{typ: "less_than_equal", loc: pyTuple{"body", "limit"},
			msg: "Input should be less than or equal to 100", input: *n, ctx: pyDict{{"le", agent.MaxPassageSearchLimit}}})
	}
	if m := req.TagMatchMode; m != nil && *m != "any" && *m != "all" {
		errs = append(errs, pyErr{typ: "literal_error", loc: pyTuple{"body", "tag_match_mode"},
			msg: "Input should be 'any' or 'all'", input: *m, ctx: pyDict{{"expected", "'any' or 'all'"}}})
	}
	if len(errs) > 0 {
		return nil, validationError(errs...)
	}
	return s.svc.Archival.SearchAll(r.Context(), req)
}
