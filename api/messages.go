package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent"
)

// turnRoutes registers the routes of messages, runs, conversations,
// archival memory, models and tools.
func (s *server) turnRoutes() {
	s.handle("POST", "/v1/agents/{agent_id}/messages", s.sendAgentMessage)
	s.handle("POST", "/v1/agents/{agent_id}/messages/stream", s.streamAgentMessage)
	s.handle("GET", "/v1/agents/{agent_id}/messages", s.listAgentMessages)
	s.handle("POST", "/v1/agents/{agent_id}/messages/cancel", s.cancelAgentMessages)

	s.handle("GET", "/v1/agents/{agent_id}/archival-memory", s.listPassages)
	s.handle("POST", "/v1/agents/{agent_id}/archival-memory", s.createPassage)
	s.handle("GET", "/v1/agents/{agent_id}/archival-memory/search", s.searchPassages)
	s.handle("DELETE", "/v1/agents/{agent_id}/archival-memory/{memory_id}", s.deletePassage)

	s.handle("POST", "/v1/conversations", s.createConversation)
	s.handle("GET", "/v1/conversations", s.listConversations)
	s.handle("GET", "/v1/conversations/{conversation_id}", s.getConversation)
	s.handle("PATCH", "/v1/conversations/{conversation_id}", s.updateConversation)
	s.handle("GET", "/v1/conversations/{conversation_id}/messages", s.listConversationMessages)
	s.handle("POST", "/v1/conversations/{conversation_id}/messages", s.sendConversationMessage)
	s.handle("POST", "/v1/conversations/{conversation_id}/stream", s.resumeConversationStream)
	s.handle("POST", "/v1/conversations/{conversation_id}/cancel", s.cancelConversation)

	s.handle("GET", "/v1/runs", s.listRuns)
	s.handle("GET", "/v1/runs/{run_id}", s.getRun)
	s.handle("GET", "/v1/runs/{run_id}/messages", s.listRunMessages)
	s.handle("POST", "/v1/runs/{run_id}/stream", s.resumeRunStream)
	s.handle("POST", "/v1/runs/{run_id}/cancel", s.cancelRun)

	s.handle("GET", "/v1/models", s.listModels)
	s.handle("GET", "/v1/models/embedding", s.listEmbeddingModels)
	s.handle("GET", "/v1/tools", s.listTools)
	s.handle("POST", "/v1/tools/add-base-tools", s.addBaseTools)
	s.handle("GET", "/v1/agents/{agent_id}/tools", s.listAgentTools)
}

// pathID returns a path id with the given prefix, or Letta's 422.
func pathID(r *http.Request, param, prefix string, valid func(string) bool) (string, error) {
	v := r.PathValue(param)
	if !valid(v) {
		return "", validationError(badPathID(param, prefix, v))
	}
	return v, nil
}

// decodeOptionalBody is decodeBody for routes whose body may be absent.
func (s *server) decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) error {
	limit := s.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(limit)
		}
		return errorf(http.StatusBadRequest, "Could not read the request body: %v", err)
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || string(t) == "null" {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	r.ContentLength = int64(len(data))
	return s.decodeBody(w, r, v)
}

// ---- sending ------------------------------------------------------------------

func (s *server) sendAgentMessage(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req agent.MessageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.runTurn(w, r, id, "", req, false)
}

// streamAgentMessage is the older streaming route: it always streams.
func (s *server) streamAgentMessage(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req agent.MessageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	on := true
	req.Streaming = &on
	return s.runTurn(w, r, id, "", req, true)
}

// runTurn starts a turn and answers with its response, or streams it.
// Anything wrong with the request is answered before the stream starts, as
// a JSON error.
func (s *server) runTurn(w http.ResponseWriter, r *http.Request, agentID, convID string, req agent.MessageRequest, defaultStreaming bool) (any, error) {
	o := streamOptions{pings: req.IncludePings == nil || *req.IncludePings}
	if req.IncludeReturnMessageTypes != nil {
		o.types = []string{}
		for i, t := range req.IncludeReturnMessageTypes {
			if !slices.Contains(agent.MessageTypes, t) {
				return nil, validationError(pyErr{
					typ: "enum", loc: pyTuple{"body", "include_return_message_types", i},
					msg:   "Input should be " + quotedList(agent.MessageTypes),
					input: t, ctx: pyDict{{"expected", quotedList(agent.MessageTypes)}},
				})
			}
			o.types = append(o.types, t)
		}
	}
	streaming := defaultStreaming
	if req.Streaming != nil {
		streaming = *req.Streaming
	}
	req.Streaming = &streaming
	t, err := s.svc.SendMessage(r.Context(), agentID, convID, req)
	if err != nil {
		return nil, err
	}
	if !streaming {
		resp, err := t.Response(r.Context())
		if err != nil {
			return nil, err
		}
		return o.response(resp), nil
	}
	s.streamTurn(w, r, t, o)
	return written{}, nil
}

func quotedList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = "'" + v + "'"
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// ---- listing and cancelling ------------------------------------------------------

func (s *server) listAgentMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(agent.Desc)
	f := agent.MessageFilter{ConversationID: q.str("conversation_id")}
	o := q.messageTypes()
	if err := q.err(); err != nil {
		return nil, err
	}
	if f.ConversationID != "" && !agent.ValidConversationID(f.ConversationID) {
		return nil, validationError(pyErr{typ: "string_pattern_mismatch", loc: pyTuple{"query", "conversation_id"},
			msg: "String should match pattern 'conv-{uuid4}'", input: f.ConversationID})
	}
	ms, err := s.svc.ListMessages(r.Context(), id, f, page)
	if err != nil {
		return nil, err
	}
	return o.filter(ms), nil
}

// messageTypes reads include_return_message_types, a filter of listings.
func (q *query) messageTypes() streamOptions {
	var o streamOptions
	if !q.has("include_return_message_types") {
		return o
	}
	o.types = []string{}
	for i, t := range q.list("include_return_message_types") {
		if !slices.Contains(agent.MessageTypes, t) {
			q.errs = append(q.errs, pyErr{typ: "enum", loc: pyTuple{"query", "include_return_message_types", i},
				msg: "Input should be " + quotedList(agent.MessageTypes), input: t, ctx: pyDict{{"expected", quotedList(agent.MessageTypes)}}})
		}
		o.types = append(o.types, t)
	}
	return o
}

type cancelRequest struct {
	RunIDs []string `json:"run_ids"`
}

func (s *server) cancelAgentMessages(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req cancelRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.CancelRuns(r.Context(), id, "", req.RunIDs)
}

// ---- archival memory ----------------------------------------------------------------

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
	return s.svc.ListPassages(r.Context(), id, f, q.str("before"), q.str("after"), limit)
}

func (s *server) createPassage(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req agent.CreatePassageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.CreatePassage(r.Context(), id, req)
}

func (s *server) searchPassages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	search := agent.ArchivalSearch{Query: q.str("query"), Tags: q.list("tags"), TagMatchAll: q.str("tag_match_mode") == "all"}
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
	return s.svc.SearchPassages(r.Context(), id, search)
}

func (s *server) deletePassage(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	pid, err := pathID(r, "memory_id", "passage", agent.ValidPassageID)
	if err != nil {
		return nil, err
	}
	if err := s.svc.DeletePassage(r.Context(), id, pid); err != nil {
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
