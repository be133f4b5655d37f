package api

import (
	"net/http"
	"net/url"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// Message batches (/v1/messages/batches): a message request for each of
// several agents, run in the background and tracked as one job.

func (s *server) batchRoutes() {
	s.handle("POST", "/v1/messages/batches", s.createBatch)
	s.handle("GET", "/v1/messages/batches", s.listBatches)
	s.handle("GET", "/v1/messages/batches/{batch_id}", s.getBatch)
	s.handle("GET", "/v1/messages/batches/{batch_id}/messages", s.listBatchMessages)
	s.handle("PATCH", "/v1/messages/batches/{batch_id}/cancel", s.cancelBatch)
}

func (s *server) createBatch(w http.ResponseWriter, r *http.Request) (any, error) {
	var body letta.CreateBatch
	if err := s.decodeBody(w, r, &body); err != nil {
		return nil, err
	}
	if body.Requests == nil {
		return nil, validationError(pyErr{typ: "missing", loc: pyTuple{"body", "requests"}, msg: "Field required", noInput: true})
	}
	if u := body.CallbackURL; u != nil {
		if err := checkHTTPURL(*u, pyTuple{"body", "callback_url"}); err != nil {
			return nil, err
		}
	}
	reqs := make([]agent.BatchRequest, len(body.Requests))
	for i, b := range body.Requests {
		if b.AgentID == nil {
			return nil, validationError(pyErr{typ: "missing", loc: pyTuple{"body", "requests", i, "agent_id"}, msg: "Field required", noInput: true})
		}
		reqs[i] = agent.BatchRequest{AgentID: *b.AgentID, Message: b.MessageRequest}
	}
	return s.svc.Batches.Create(r.Context(), reqs, body.CallbackURL)
}

func (s *server) listBatches(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Batches.List(r.Context(), page)
}

func (s *server) getBatch(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Batches.Get(r.Context(), r.PathValue("batch_id"))
}

func (s *server) listBatchMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	page := q.page(letta.Desc)
	agentID := q.str("agent_id")
	if err := q.err(); err != nil {
		return nil, err
	}
	ms, err := s.svc.Batches.Messages(r.Context(), r.PathValue("batch_id"), agentID, page)
	if err != nil {
		return nil, err
	}
	return letta.BatchMessages{Messages: ms}, nil
}

// cancelBatch answers null, as Letta's route (which returns nothing) does.
func (s *server) cancelBatch(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, s.svc.Batches.Cancel(r.Context(), r.PathValue("batch_id"))
}

// checkHTTPURL refuses what Letta's HttpUrl fields refuse (422): text that
// is not an absolute URL, or one not http(s).
func checkHTTPURL(raw string, loc pyTuple) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "":
		return validationError(pyErr{typ: "url_parsing", loc: loc, msg: "Input should be a valid URL, relative URL without a base",
			input: raw, ctx: pyDict{{"error", "relative URL without a base"}}})
	case u.Scheme != "http" && u.Scheme != "https":
		return validationError(pyErr{typ: "url_scheme", loc: loc, msg: "URL scheme should be 'http' or 'https'",
			input: raw, ctx: pyDict{{"expected_schemes", "'http' or 'https'"}}})
	}
	return nil
}
