package api

import (
	"fmt"
	"net/http"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// Groups (multi-agent): CRUD with Letta's manager types, a group's
// messages, an agent's groups. Messages reach a group through its manager
// agent's message routes, as in Letta 0.16.8 (whose groups router has no
// route that sends).

func (s *server) createGroup(w http.ResponseWriter, r *http.Request) (any, error) {
	var req letta.GroupCreate
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	var errs []pyErr
	if req.AgentIDs == nil {
		errs = append(errs, pyErr{typ: "missing", loc: pyTuple{"body", "agent_ids"}, msg: "Field required", noInput: true})
	}
	if req.Description == nil {
		errs = append(errs, pyErr{typ: "missing", loc: pyTuple{"body", "description"}, msg: "Field required", noInput: true})
	}
	if m := req.ManagerConfig; m != nil && m.ManagerAgentID == nil && m.ManagerType != letta.ManagerRoundRobin && m.ManagerType != "" {
		errs = append(errs, pyErr{typ: "missing", loc: pyTuple{"body", "manager_config", m.ManagerType, "manager_agent_id"}, msg: "Field required", noInput: true})
	}
	if len(errs) > 0 {
		return nil, validationError(errs...)
	}
	if p := r.Header.Get("X-Project-Id"); p != "" && req.ProjectID == nil {
		req.ProjectID = &p
	}
	return s.svc.Groups.Create(r.Context(), req)
}

func groupFilter(q *query) agent.GroupFilter {
	return agent.GroupFilter{ManagerType: q.str("manager_type"), ProjectID: q.str("project_id"), ShowHidden: q.boolean("show_hidden_groups")}
}

func (s *server) listGroups(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := groupFilter(q)
	page := q.page(letta.Asc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Groups.List(r.Context(), f, page)
}

func (s *server) countGroups(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Groups.Count(r.Context(), agent.GroupFilter{ShowHidden: true})
}

func (s *server) getGroup(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "group_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Groups.Get(r.Context(), id)
}

func (s *server) updateGroup(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "group_id")
	if err != nil {
		return nil, err
	}
	var u letta.GroupUpdate
	if err := s.decodeBody(w, r, &u); err != nil {
		return nil, err
	}
	return s.svc.Groups.Update(r.Context(), id, u)
}

func (s *server) deleteGroup(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "group_id")
	if err != nil {
		return nil, err
	}
	if err := s.svc.Groups.Delete(r.Context(), id); err != nil {
		return nil, err
	}
	return message{fmt.Sprintf("Group id=%s successfully deleted", id)}, nil
}

// listGroupMessages lists a group's messages: its manager agent's, as
// Letta does; a group without a manager has none (Letta lists the
// messages tagged with the group, which only its sleep-time flows write).
func (s *server) listGroupMessages(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "group_id")
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Desc)
	if !q.has("limit") {
		page.Limit = 10 // Letta's default here
	}
	o := q.messageTypes()
	if err := q.err(); err != nil {
		return nil, err
	}
	g, err := s.svc.Groups.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if g.ManagerAgentID == nil {
		return []letta.Message{}, nil
	}
	ms, err := s.svc.Messages.List(r.Context(), *g.ManagerAgentID, agent.MessageFilter{}, page)
	if err != nil {
		return nil, err
	}
	return o.filter(ms), nil
}

func (s *server) listAgentGroups(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	mt := q.str("manager_type")
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Groups.ForAgent(r.Context(), id, mt)
}
