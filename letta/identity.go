package letta

// IdentityTypes are the kinds of identity Letta knows.
var IdentityTypes = []string{"org", "user", "other"}

// IdentityPropertyTypes are the types of an identity's property values.
var IdentityPropertyTypes = []string{"string", "number", "boolean", "json"}

// IdentityProperty is one property of an identity.
type IdentityProperty struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
	Type  string `json:"type"`
}

// Identity is an identity as the API returns it: a user or organisation
// of the client's own, known by its identifier_key, that agents and blocks
// belong to.
type Identity struct {
	ID             string             `json:"id"`
	IdentifierKey  string             `json:"identifier_key"`
	Name           string             `json:"name"`
	IdentityType   string             `json:"identity_type"`
	ProjectID      *string            `json:"project_id"`
	AgentIDs       []string           `json:"agent_ids"`
	BlockIDs       []string           `json:"block_ids"`
	OrganizationID *string            `json:"organization_id"`
	Properties     []IdentityProperty `json:"properties"`
}

// IdentityRequest is the body of the identity routes: IdentityCreate and
// IdentityUpsert (identifier_key, name and identity_type required) and
// IdentityUpdate (every field optional). Absent fields are nil.
type IdentityRequest struct {
	IdentifierKey *string             `json:"identifier_key"`
	Name          *string             `json:"name"`
	IdentityType  *string             `json:"identity_type"`
	ProjectID     *string             `json:"project_id"`
	AgentIDs      *[]string           `json:"agent_ids"`
	BlockIDs      *[]string           `json:"block_ids"`
	Properties    *[]IdentityProperty `json:"properties"`
}

// MissingOnCreate names the fields a create needs that r lacks, in Letta's
// order.
func (r IdentityRequest) MissingOnCreate() []string {
	var out []string
	for _, f := range []struct {
		name string
		v    *string
	}{{"identifier_key", r.IdentifierKey}, {"name", r.Name}, {"identity_type", r.IdentityType}} {
		if f.v == nil {
			out = append(out, f.name)
		}
	}
	return out
}
