package api

import (
	"net/http"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// archiveRoutes registers shared archives (/v1/archives) and their
// attachment to agents.
func (s *server) archiveRoutes() {
	s.handle("POST", "/v1/archives", s.createArchive)
	s.handle("GET", "/v1/archives", s.listArchives)
	s.handle("GET", "/v1/archives/{archive_id}", s.getArchive)
	s.handle("PATCH", "/v1/archives/{archive_id}", s.updateArchive)
	s.handle("DELETE", "/v1/archives/{archive_id}", s.deleteArchive)
	s.handle("GET", "/v1/archives/{archive_id}/agents", s.linkedAgents("archive_id", func(v *agent.Service) agentLister { return v.Archives.Agents }))
	s.handle("POST", "/v1/archives/{archive_id}/passages", s.createArchivePassage)
	s.handle("POST", "/v1/archives/{archive_id}/passages/batch", s.createArchivePassages)
	s.handle("DELETE", "/v1/archives/{archive_id}/passages/{passage_id}", s.deleteArchivePassage)
	s.handle("PATCH", "/v1/agents/{agent_id}/archives/attach/{archive_id}", s.attachArchive)
	s.handle("PATCH", "/v1/agents/{agent_id}/archives/detach/{archive_id}", s.detachArchive)
}

func (s *server) createArchive(w http.ResponseWriter, r *http.Request) (any, error) {
	var req letta.ArchiveCreateRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Name == nil {
		return nil, validationError(pyErr{typ: "missing", loc: pyTuple{"body", "name"}, msg: "Field required", noInput: true})
	}
	return s.svc.Archives.Create(r.Context(), req)
}

func (s *server) listArchives(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	page := q.page(letta.Desc)
	f := agent.ArchiveFilter{Name: q.str("name"), AgentID: q.str("agent_id")}
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Archives.List(r.Context(), f, page)
}

func (s *server) getArchive(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "archive_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Archives.Get(r.Context(), id)
}

func (s *server) updateArchive(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "archive_id")
	if err != nil {
		return nil, err
	}
	var req letta.ArchiveUpdateRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return s.svc.Archives.Update(r.Context(), id, req)
}

func (s *server) deleteArchive(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "archive_id")
	if err != nil {
		return nil, err
	}
	if err := s.svc.Archives.Delete(r.Context(), id); err != nil {
		return nil, err
	}
	return noContent(w)
}

func (s *server) createArchivePassage(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "archive_id")
	if err != nil {
		return nil, err
	}
	var req letta.ArchivePassageCreate
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Text == nil {
		return nil, validationError(pyErr{typ: "missing", loc: pyTuple{"body", "text"}, msg: "Field required", noInput: true})
	}
	ps, err := s.svc.Archives.CreatePassages(r.Context(), id, []letta.ArchivePassageCreate{req})
	if err != nil {
		return nil, err
	}
	return ps[0], nil
}

func (s *server) createArchivePassages(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "archive_id")
	if err != nil {
		return nil, err
	}
	var req letta.ArchivePassageBatch
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.Passages == nil {
		return nil, validationError(pyErr{typ: "missing", loc: pyTuple{"body", "passages"}, msg: "Field required", noInput: true})
	}
	return s.svc.Archives.CreatePassages(r.Context(), id, req.Passages)
}

func (s *server) deleteArchivePassage(w http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "archive_id", "passage_id")
	if err != nil {
		return nil, err
	}
	if err := s.svc.Archives.DeletePassage(r.Context(), ids["archive_id"], ids["passage_id"]); err != nil {
		return nil, err
	}
	return noContent(w)
}

func (s *server) attachArchive(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "archive_id")
	if err != nil {
		return nil, err
	}
	return nil, s.svc.Agents.AttachArchive(r.Context(), ids["agent_id"], ids["archive_id"])
}

func (s *server) detachArchive(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "archive_id")
	if err != nil {
		return nil, err
	}
	return nil, s.svc.Agents.DetachArchive(r.Context(), ids["agent_id"], ids["archive_id"])
}

// noContent answers 204 with no body, as Letta's deletes of archives and
// their passages do.
func noContent(w http.ResponseWriter) (any, error) {
	w.WriteHeader(http.StatusNoContent)
	return written{}, nil
}
