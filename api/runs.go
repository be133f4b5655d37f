package api

import (
	"net/http"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

func (s *server) listRuns(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agent.RunFilter{AgentID: q.str("agent_id"), AgentIDs: q.list("agent_ids"), ConversationID: q.str("conversation_id"),
		Statuses: q.list("statuses"), StopReason: q.str("stop_reason")}
	if q.has("active") {
		f.Active = q.boolean("active")
	}
	if q.has("background") {
		b := q.boolean("background")
		f.Background = &b
	}
	if q.boolean("ascending") {
		q.v["order"] = []string{"asc"} // Letta's deprecated spelling
	}
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Runs.List(r.Context(), f, page)
}

func (s *server) getRun(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "run_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Runs.Get(r.Context(), id)
}

// getRunUsage answers a run's token usage, as Letta's retrieve_usage_for_run.
func (s *server) getRunUsage(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "run_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Runs.Usage(r.Context(), id)
}

func (s *server) listRunMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "run_id")
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Asc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Runs.Messages(r.Context(), id, page)
}

// retrieveStreamRequest is the body of the stream-resuming routes.
type retrieveStreamRequest struct {
	AgentID       *string `json:"agent_id"`
	StartingAfter int     `json:"starting_after"`
	IncludePings  *bool   `json:"include_pings"`
}

func (o *retrieveStreamRequest) options() streamOptions {
	return streamOptions{pings: o.IncludePings == nil || *o.IncludePings, startingAfter: o.StartingAfter}
}

func (s *server) resumeRunStream(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "run_id")
	if err != nil {
		return nil, err
	}
	var req retrieveStreamRequest
	if err := s.decodeOptionalBody(w, r, &req); err != nil {
		return nil, err
	}
	t, err := s.svc.Messages.Stream(r.Context(), id)
	if err != nil {
		return nil, err
	}
	s.streamTurn(w, r, t, req.options())
	return written{}, nil
}

func (s *server) cancelRun(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "run_id")
	if err != nil {
		return nil, err
	}
	run, err := s.svc.Runs.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if _, err := s.svc.Messages.Cancel(r.Context(), run.AgentID, "", []string{id}); err != nil {
		return nil, err
	}
	return s.svc.Runs.Get(r.Context(), id)
}
