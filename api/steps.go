package api

import (
	"encoding/json"
	"net/http"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// Steps of runs: each model call, its usage, timing and messages.

func (s *server) listSteps(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agent.StepFilter{AgentID: q.str("agent_id"), Model: q.str("model"), Feedback: q.str("feedback"),
		Start: q.datetime("start_date"), End: q.datetime("end_date")}
	if q.has("has_feedback") {
		v := q.boolean("has_feedback")
		f.HasFeedback = &v
	}
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Steps.List(r.Context(), f, page)
}

func (s *server) listRunSteps(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "run_id")
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	if _, err := s.svc.Runs.Get(r.Context(), id); err != nil {
		return nil, err
	}
	return s.svc.Steps.List(r.Context(), agent.StepFilter{RunID: id}, page)
}

func (s *server) getStep(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "step_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Steps.Get(r.Context(), id)
}

func (s *server) getStepMetrics(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "step_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Steps.Metrics(r.Context(), id)
}

func (s *server) listStepMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "step_id")
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Asc)
	o := q.messageTypes()
	if err := q.err(); err != nil {
		return nil, err
	}
	ms, err := s.svc.Steps.Messages(r.Context(), id, page)
	if err != nil {
		return nil, err
	}
	return o.filter(ms), nil
}

func (s *server) setStepFeedback(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "step_id")
	if err != nil {
		return nil, err
	}
	var fb letta.StepFeedback
	if err := s.decodeOptionalBody(w, r, &fb); err != nil {
		return nil, err
	}
	return s.svc.Steps.SetFeedback(r.Context(), id, fb)
}

// getStepTrace answers a step's provider trace as a self-hosted Letta does
// by default (it records none unless track_provider_trace is set): null.
// Kelpie records no provider traces; its traces go to OpenTelemetry.
func (s *server) getStepTrace(_ http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := pathID(r, "step_id"); err != nil {
		return nil, err
	}
	return json.RawMessage("null"), nil
}

// getRunTrace answers as a self-hosted Letta without ClickHouse does: 501,
// not to be retried.
func (s *server) getRunTrace(_ http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := pathID(r, "run_id"); err != nil {
		return nil, err
	}
	return nil, errorf(http.StatusNotImplemented, "OTEL traces require ClickHouse. Set LETTA_CLICKHOUSE_ENDPOINT and configure ClickHouse connection.").
		withHeader("X-Should-Retry", "false")
}
