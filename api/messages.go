package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

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

func (s *server) sendAgentMessage(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req letta.MessageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.runTurn(w, r, id, "", req, false, false)
}

// streamAgentMessage is the older streaming route: it always streams.
func (s *server) streamAgentMessage(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req letta.MessageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	on := true
	req.Streaming = &on
	return s.runTurn(w, r, id, "", req, true, false)
}

// runTurn starts a turn and answers with its response, or streams it.
// Anything wrong with the request is answered before the stream starts, as
// a JSON error. A non-streamed message with busyUnlessFree is refused
// while its conversation is in use, rather than queued.
func (s *server) runTurn(w http.ResponseWriter, r *http.Request, agentID, convID string, req letta.MessageRequest, defaultStreaming, busyUnlessFree bool) (any, error) {
	o := streamOptions{pings: req.IncludePings == nil || *req.IncludePings}
	if req.IncludeReturnMessageTypes != nil {
		o.types = []string{}
		for i, t := range req.IncludeReturnMessageTypes {
			if !slices.Contains(letta.MessageTypes, t) {
				return nil, validationError(pyErr{
					typ: "enum", loc: pyTuple{"body", "include_return_message_types", i},
					msg:   "Input should be " + quotedList(letta.MessageTypes),
					input: t, ctx: pyDict{{"expected", quotedList(letta.MessageTypes)}},
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
	send := s.svc.Messages.Send
	if busyUnlessFree && !streaming {
		send = s.svc.Messages.SendUnlessBusy
	}
	t, err := send(r.Context(), agentID, convID, req)
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

func (s *server) listAgentMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Desc)
	f := agent.MessageFilter{ConversationID: q.str("conversation_id")}
	o := q.messageTypes()
	if err := q.err(); err != nil {
		return nil, err
	}
	if f.ConversationID == defaultConversation {
		f = agent.MessageFilter{DefaultOnly: true}
	}
	if f.ConversationID != "" && !letta.ValidID("conv", f.ConversationID) {
		return nil, validationError(pyErr{typ: "string_pattern_mismatch", loc: pyTuple{"query", "conversation_id"},
			msg: "String should match pattern 'conv-{uuid4}'", input: f.ConversationID})
	}
	ms, err := s.svc.Messages.List(r.Context(), id, f, page)
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
		if !slices.Contains(letta.MessageTypes, t) {
			q.errs = append(q.errs, pyErr{typ: "enum", loc: pyTuple{"query", "include_return_message_types", i},
				msg: "Input should be " + quotedList(letta.MessageTypes), input: t, ctx: pyDict{{"expected", quotedList(letta.MessageTypes)}}})
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
	return s.svc.Messages.Cancel(r.Context(), id, "", req.RunIDs)
}
