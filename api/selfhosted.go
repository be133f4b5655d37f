package api

import (
	"net/http"
	"time"
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
	defaultOrgID    = "org-00000000-0000-4000-8000-000000000000"
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

func (s *server) listSharedAgents(http.ResponseWriter, *http.Request) (any, error) {
	return sharedAgents{Agents: []any{}}, nil
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
