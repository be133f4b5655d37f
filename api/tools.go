package api

import (
	"net/http"
	"strings"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// DefaultAgentToolListLimit is Letta's page size for an agent's tools.
const DefaultAgentToolListLimit = 10

// missingBody is pydantic's error for a required body field left out.
func missingBody(field string) error {
	return validationError(pyErr{typ: "missing", loc: pyTuple{"body", field}, msg: "Field required", noInput: true})
}

// upsertTool serves POST and PUT /v1/tools: Letta creates or updates the
// tool of the same name for both.
func (s *server) upsertTool(w http.ResponseWriter, r *http.Request) (any, error) {
	var req letta.ToolCreate
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.SourceCode == nil {
		return nil, missingBody("source_code")
	}
	return s.svc.Tools.Upsert(r.Context(), req)
}

// csvList reads a list parameter given repeated, comma-separated, or both.
func csvList(q *query, name string) []string {
	var out []string
	for _, v := range q.list(name) {
		for _, part := range strings.Split(v, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// toolFilter reads the filters list and count share.
func toolFilter(q *query) agent.ToolFilter {
	f := agent.ToolFilter{
		Names: q.list("names"), IDs: csvList(q, "tool_ids"), Search: q.str("search"),
		Types: csvList(q, "tool_types"), ExcludeTypes: csvList(q, "exclude_tool_types"),
		OnlyLetta: q.boolean("return_only_letta_tools"), ExcludeLetta: q.boolean("exclude_letta_tools"),
	}
	if n := q.str("name"); n != "" {
		f.Names = append(f.Names, n)
	}
	return f
}

// listTools lists tools, built-in and custom, a page at a time.
func (s *server) listTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := toolFilter(q)
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Tools.List(r.Context(), f, page)
}

func (s *server) countTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := toolFilter(q)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Tools.Count(r.Context(), f)
}

func (s *server) getTool(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "tool_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Tools.Get(r.Context(), id)
}

func (s *server) updateTool(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "tool_id")
	if err != nil {
		return nil, err
	}
	var u letta.ToolUpdate
	if err := s.decodeBody(w, r, &u); err != nil {
		return nil, err
	}
	return s.svc.Tools.Update(r.Context(), id, u)
}

func (s *server) deleteTool(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "tool_id")
	if err != nil {
		return nil, err
	}
	// Letta answers a tool delete with a JSON null.
	return nil, s.svc.Tools.Delete(r.Context(), id)
}

// addBaseTools answers with the built-in tools, which always exist.
func (s *server) addBaseTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Tools.All(r.Context()), nil
}

func (s *server) runToolFromSource(w http.ResponseWriter, r *http.Request) (any, error) {
	var req letta.ToolRunFromSource
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	switch {
	case req.SourceCode == nil:
		return nil, missingBody("source_code")
	case req.Args == nil:
		return nil, missingBody("args")
	}
	return s.svc.Tools.RunSource(r.Context(), req)
}

func (s *server) listAgentTools(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	if page.Limit == 0 {
		page.Limit = DefaultAgentToolListLimit
	}
	return s.svc.Tools.ForAgent(r.Context(), id, page)
}

// attachOrDetachTool serves PATCH /v1/agents/{agent_id}/tools/attach/{tool_id},
// .../detach/{tool_id} and .../approval/{tool_name}.
func (s *server) attachOrDetachTool(w http.ResponseWriter, r *http.Request) (any, error) {
	verb := r.PathValue("verb")
	if verb == "approval" {
		return s.setToolApproval(w, r)
	}
	if verb != "attach" && verb != "detach" {
		return nil, errorf(http.StatusNotFound, "Not Found")
	}
	ids, err := pathIDs(r, "agent_id", "tool_id")
	if err != nil {
		return nil, err
	}
	if verb == "attach" {
		return s.svc.Agents.AttachTool(r.Context(), ids["agent_id"], ids["tool_id"])
	}
	return s.svc.Agents.DetachTool(r.Context(), ids["agent_id"], ids["tool_id"])
}

// setToolApproval serves PATCH /v1/agents/{agent_id}/tools/approval/{tool_name}
// (the name is in the tool_id slot; see routes), with requires_approval
// in the body or, as Letta still accepts, the query.
func (s *server) setToolApproval(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var body struct {
		RequiresApproval *bool `json:"requires_approval"`
	}
	if r.ContentLength != 0 {
		if err := s.decodeBody(w, r, &body); err != nil {
			return nil, err
		}
	}
	q := newQuery(r)
	if body.RequiresApproval == nil && q.has("requires_approval") {
		on := q.boolean("requires_approval")
		body.RequiresApproval = &on
	}
	if err := q.err(); err != nil {
		return nil, err
	}
	if body.RequiresApproval == nil {
		return nil, errorf(http.StatusUnprocessableEntity, "requires_approval must be provided either in request body or as query parameter")
	}
	return s.svc.Agents.SetToolApproval(r.Context(), id, r.PathValue("tool_id"), *body.RequiresApproval)
}

// runAgentTool serves POST /v1/agents/{agent_id}/tools/{tool_name}/run
// (the tool's name is in the verb slot; see routes).
func (s *server) runAgentTool(w http.ResponseWriter, r *http.Request) (any, error) {
	if r.PathValue("tool_id") != "run" {
		return nil, errorf(http.StatusNotFound, "Not Found")
	}
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	var req letta.ToolRunRequest
	if r.ContentLength != 0 {
		if err := s.decodeBody(w, r, &req); err != nil {
			return nil, err
		}
	}
	return s.svc.Tools.RunForAgent(r.Context(), id, r.PathValue("verb"), req.Args)
}

// listModels lists the models of the configured providers: an empty list
// when none is configured.
func (s *server) listModels(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Models.List(r.Context()), nil
}

// listEmbeddingModels lists embedding models: Kelpie has none yet.
func (s *server) listEmbeddingModels(http.ResponseWriter, *http.Request) (any, error) {
	return []any{}, nil
}
