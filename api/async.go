package api

import (
	"net/http"

	"github.com/kelpie/kelpie/letta"
)

// sendAgentMessageAsync is POST /v1/agents/{id}/messages/async: the turn
// runs in the background (it outlives the request) and the answer is its
// run, as committed when the turn began; clients poll /v1/runs/{id}.
func (s *server) sendAgentMessageAsync(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req letta.MessageRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	off := false
	req.Streaming, req.Background = &off, true
	t, err := s.svc.Messages.Send(r.Context(), id, "", req)
	if err != nil {
		return nil, err
	}
	return s.svc.Runs.Get(r.Context(), t.RunID())
}

// listAllMessages is GET /v1/messages: messages across agents.
func (s *server) listAllMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	page := q.page(letta.Desc)
	convID := q.str("conversation_id")
	o := q.messageTypes()
	if err := q.err(); err != nil {
		return nil, err
	}
	ms, err := s.svc.Messages.ListAll(r.Context(), convID, page)
	if err != nil {
		return nil, err
	}
	return o.filter(ms), nil
}
