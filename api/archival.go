package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

func (s *server) listPassages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	f := agent.PassageFilter{Search: q.str("search"), Ascending: true}
	if q.has("ascending") {
		f.Ascending = q.boolean("ascending")
	}
	limit := q.limit()
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Archival.List(r.Context(), id, f, q.str("before"), q.str("after"), limit)
}

func (s *server) createPassage(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req letta.CreatePassageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.Archival.Create(r.Context(), id, req)
}

func (s *server) searchPassages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	search := agent.ArchivalQuery{Query: q.str("query"), Tags: q.list("tags"), TagMatchAll: q.str("tag_match_mode") == "all"}
	search.TopK = q.positiveInt("top_k")
	search.Start = q.datetime("start_datetime")
	search.End = q.datetime("end_datetime")
	if m := q.str("tag_match_mode"); m != "" && m != "any" && m != "all" {
		q.errs = append(q.errs, pyErr{typ: "literal_error", loc: pyTuple{"query", "tag_match_mode"},
			msg: "Input should be 'any' or 'all'", input: m, ctx: pyDict{{"expected", "'any' or 'all'"}}})
	}
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Archival.Search(r.Context(), id, search)
}

func (s *server) deletePassage(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	pid, err := pathID(r, "memory_id")
	if err != nil {
		return nil, err
	}
	if err := s.svc.Archival.Delete(r.Context(), id, pid); err != nil {
		return nil, err
	}
	return message{"Memory id=" + pid + " successfully deleted"}, nil
}

// positiveInt parses an optional positive integer parameter (0 if absent).
func (q *query) positiveInt(name string) int {
	if !q.has(name) {
		return 0
	}
	s := q.str(name)
	n, err := strconv.Atoi(strings.TrimSpace(s))
	switch {
	case err != nil:
		q.errs = append(q.errs, pyErr{typ: "int_parsing", loc: pyTuple{"query", name},
			msg: "Input should be a valid integer, unable to parse string as an integer", input: s})
	case n < 1:
		q.errs = append(q.errs, pyErr{typ: "greater_than_equal", loc: pyTuple{"query", name},
			msg: "Input should be greater than or equal to 1", input: s, ctx: pyDict{{"ge", 1}}})
	default:
		return n
	}
	return 0
}

// datetime parses an optional RFC 3339 time or date parameter.
func (q *query) datetime(name string) *time.Time {
	if !q.has(name) {
		return nil
	}
	s := q.str(name)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return &t
		}
	}
	q.errs = append(q.errs, pyErr{typ: "datetime_from_date_parsing", loc: pyTuple{"query", name},
		msg: "Input should be a valid datetime or date", input: s})
	return nil
}
