package api

import (
	"net/http"
	"time"

	"github.com/kelpie/kelpie/letta"
)

// Routes of Letta Cloud that a self-hosted server does not serve. Clients
// call some of them unasked (letta-code polls its Shared tab and the user's
// metadata), and a 404 there makes some clients retry in a loop. So each
// gets a definite answer: an empty listing where the resource simply has
// nothing on a self-hosted server, or notSelfHosted, which tells the client
// not to retry.

// The default user and organization of a self-hosted Letta server.
const (
	defaultUserID   = "user-00000000-0000-4000-8000-000000000000"
	defaultUserName = "default_user"
	defaultOrgID    = letta.DefaultOrgID
)

// notSelfHosted answers a Letta Cloud feature: 501, and no retry.
func notSelfHosted(r *http.Request) error {
	return errorf(http.StatusNotImplemented, "%s %s is a Letta Cloud feature; this self-hosted server does not provide it", r.Method, r.URL.Path).
		withHeader("X-Should-Retry", "false")
}

func (s *server) cloudOnly(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, notSelfHosted(r)
}

// sharedAgents is letta-code's listing of agents shared with the user (its
// Shared tab): it reads an object with agents and nextCursor, not a bare
// array. Nothing is shared on a self-hosted server.
type sharedAgents struct {
	Agents     []any   `json:"agents"`
	NextCursor *string `json:"nextCursor"`
}

// user is Letta's User.
type user struct {
	ID             string    `json:"id"`
	OrganizationID string    `json:"organization_id"`
	Name           string    `json:"name"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	IsDeleted      bool      `json:"is_deleted"`
}

// currentUser is the user every request acts as: the default user, as on a
// self-hosted Letta server without users.
func (s *server) currentUser(http.ResponseWriter, *http.Request) (any, error) {
	// The handler's start stands for the user's creation.
	return user{ID: defaultUserID, OrganizationID: defaultOrgID, Name: defaultUserName, CreatedAt: s.started, UpdatedAt: s.started}, nil
}

// cloudRoutes are the Letta Cloud routes of @letta-ai/letta-client 1.12.1
// (and those letta-code calls) that a self-hosted server answers with
// notSelfHosted: templates, client-side access tokens, remote
// environments, scheduled messages, the Turbopuffer message search, billing.
var cloudRoutes = []struct{ method, pattern string }{
	{"POST", "/v1/templates"},
	{"PATCH", "/v1/templates/{template_name}"},
	{"DELETE", "/v1/templates/{template_name}"},
	{"POST", "/v1/templates/{template_name}/rollback"},
	{"POST", "/v1/templates/{template_name}/save"},
	{"POST", "/v1/templates/{template_version}/agents"},
	{"POST", "/v1/client-side-access-tokens"},
	{"DELETE", "/v1/client-side-access-tokens/{token}"},
	{"GET", "/v1/environments/{device_id}"},
	{"POST", "/v1/environments/{connection_id}/messages"},
	{"POST", "/v1/agents/{agent_id}/schedule"},
	{"GET", "/v1/agents/{agent_id}/schedule/{scheduled_message_id}"},
	{"DELETE", "/v1/agents/{agent_id}/schedule/{scheduled_message_id}"},
	{"POST", "/v1/messages/search"},
	{"GET", "/v1/metadata/balance"},
	{"POST", "/v1/metadata/feedback"},
	{"POST", "/v1/metadata/telemetry"},
	{"GET", "/v1/organizations/self/quotas"},
}

// emptyCloudListings are the Letta Cloud listings a self-hosted server
// answers as empty, in the shape the client reads.
var emptyCloudListings = []struct {
	pattern string
	empty   any
}{
	{"/v1/shared-agents", sharedAgents{Agents: []any{}}},
	{"/v1/client-side-access-tokens", map[string]any{"tokens": []any{}, "hasNextPage": false}},
	{"/v1/environments", map[string]any{"connections": []any{}, "hasNextPage": false}},
}

// selfHostedRoutes registers the answers to Letta Cloud's routes.
func (s *server) selfHostedRoutes() {
	for _, r := range cloudRoutes {
		s.handle(r.method, r.pattern, s.cloudOnly)
	}
	for _, l := range emptyCloudListings {
		s.handle("GET", l.pattern, func(http.ResponseWriter, *http.Request) (any, error) { return l.empty, nil })
	}
	s.handle("GET", "/v1/agents/{agent_id}/schedule", s.listSchedule)
	s.handle("GET", "/v1/metadata/user", s.currentUser)
	s.handle("POST", "/v1/tools/search", s.searchTools)
}

// toolSearchUnavailable is how a self-hosted Letta answers a semantic tool
// search: it needs tool embeddings in Turbopuffer, a Letta Cloud service.
const toolSearchUnavailable = "Tool semantic search requires tool embedding to be enabled (embed_tools=True)."

// searchTools answers a semantic tool search as a self-hosted Letta does:
// a 400 naming what it needs, after the body is read as JSON.
func (s *server) searchTools(w http.ResponseWriter, r *http.Request) (any, error) {
	var req map[string]any
	if err := s.decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	return nil, errorf(http.StatusBadRequest, "%s", toolSearchUnavailable)
}

// listSchedule lists an agent's scheduled messages: none, as scheduling is
// a Letta Cloud feature; the agent must exist.
func (s *server) listSchedule(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathAgentID(r)
	if err != nil {
		return nil, err
	}
	if _, err := s.svc.Agents.Get(r.Context(), id, false); err != nil {
		return nil, err
	}
	return map[string]any{"scheduled_messages": []any{}, "has_next_page": false}, nil
}
