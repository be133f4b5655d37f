package api

import (
	"net/http"
	"slices"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// decodeIdentity reads an identity body; create and upsert need
// identifier_key, name and identity_type (pydantic's 422 when missing), and
// identity_type must be one of Letta's.
func (s *server) decodeIdentity(w http.ResponseWriter, r *http.Request, create bool) (letta.IdentityRequest, error) {
	var req letta.IdentityRequest
	if err := s.decodeBody(w, r, &req); err != nil {
		return req, err
	}
	var errs []pyErr
	if create {
		for _, name := range req.MissingOnCreate() {
			errs = append(errs, pyErr{typ: "missing", loc: pyTuple{"body", name}, msg: "Field required", noInput: true})
		}
	}
	if t := req.IdentityType; t != nil && !slices.Contains(letta.IdentityTypes, *t) {
		errs = append(errs, pyErr{typ: "enum", loc: pyTuple{"body", "identity_type"}, msg: "Input should be " + quotedList(letta.IdentityTypes),
			input: *t, ctx: pyDict{{"expected", quotedList(letta.IdentityTypes)}}})
	}
	if len(errs) > 0 {
		return req, validationError(errs...)
	}
	return req, nil
}

func (s *server) createIdentity(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := s.decodeIdentity(w, r, true)
	if err != nil {
		return nil, err
	}
	return s.svc.Identities.Create(r.Context(), req)
}

func (s *server) upsertIdentity(w http.ResponseWriter, r *http.Request) (any, error) {
	req, err := s.decodeIdentity(w, r, true)
	if err != nil {
		return nil, err
	}
	return s.svc.Identities.Upsert(r.Context(), req)
}

func (s *server) listIdentities(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	f := agent.IdentityFilter{Name: q.str("name"), ProjectID: q.str("project_id"), IdentifierKey: q.str("identifier_key"), IdentityType: q.str("identity_type")}
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Identities.List(r.Context(), f, page)
}

func (s *server) countIdentities(_ http.ResponseWriter, r *http.Request) (any, error) {
	return s.svc.Identities.Count(r.Context())
}

func (s *server) getIdentity(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "identity_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Identities.Get(r.Context(), id)
}

func (s *server) updateIdentity(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "identity_id")
	if err != nil {
		return nil, err
	}
	req, err := s.decodeIdentity(w, r, false)
	if err != nil {
		return nil, err
	}
	return s.svc.Identities.Update(r.Context(), id, req)
}

func (s *server) setIdentityProperties(w http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "identity_id")
	if err != nil {
		return nil, err
	}
	var props []letta.IdentityProperty
	if err := s.decodeBody(w, r, &props); err != nil {
		return nil, err
	}
	return s.svc.Identities.SetProperties(r.Context(), id, props)
}

func (s *server) deleteIdentity(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "identity_id")
	if err != nil {
		return nil, err
	}
	// Letta answers an identity delete with a JSON null.
	return nil, s.svc.Identities.Delete(r.Context(), id)
}

func (s *server) listIdentityBlocks(_ http.ResponseWriter, r *http.Request) (any, error) {
	id, err := pathID(r, "identity_id")
	if err != nil {
		return nil, err
	}
	q := newQuery(r)
	page := q.page(letta.Desc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Identities.Blocks(r.Context(), id, page)
}

func (s *server) attachIdentity(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "identity_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Agents.AttachIdentity(r.Context(), ids["agent_id"], ids["identity_id"])
}

func (s *server) detachIdentity(_ http.ResponseWriter, r *http.Request) (any, error) {
	ids, err := pathIDs(r, "agent_id", "identity_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Agents.DetachIdentity(r.Context(), ids["agent_id"], ids["identity_id"])
}

func (s *server) listTags(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := newQuery(r)
	name := q.str("name")
	if name == "" {
		name = q.str("query_text") // Letta's older name for the filter
	}
	page := q.page(letta.Asc)
	if err := q.err(); err != nil {
		return nil, err
	}
	return s.svc.Tags.List(r.Context(), name, page)
}
