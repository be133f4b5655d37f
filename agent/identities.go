package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Identities is the surface of identities: the client's own users and
// organisations, that agents and blocks belong to.
type Identities struct{ c *core }

// Limits on identities.
const (
	MaxIdentityChars         = 256       // identifier_key and name
	MaxIdentityProperties    = 100       // properties of one identity
	MaxIdentityRecordBytes   = 256 << 10 // an identity's fields, as JSON
	MaxLinkedIDs             = 1000      // ids in one list of agent, block or identity ids
	DefaultIdentityListLimit = 50
)

// Operations of the identity actor.
const (
	opCreateIdentity = "create"
	opUpdateIdentity = "update"
	opDeleteIdentity = "delete"
)

// identityPayload is what the create and update operations take.
type identityPayload struct {
	Req letta.IdentityRequest `json:"req"`
	// Upsert makes a create of an existing (project, identifier key)
	// replace that identity; otherwise it is a conflict.
	Upsert bool `json:"upsert,omitempty"`
	// Replace makes an update replace properties and links rather than
	// add to them.
	Replace bool `json:"replace,omitempty"`
}

// Create creates an identity; its (project, identifier_key) must be new.
func (s *Identities) Create(ctx context.Context, req letta.IdentityRequest) (*letta.Identity, error) {
	return s.create(ctx, req, false)
}

// Upsert creates an identity, or replaces the one with its (project,
// identifier_key): its name, type, properties and agents.
func (s *Identities) Upsert(ctx context.Context, req letta.IdentityRequest) (*letta.Identity, error) {
	return s.create(ctx, req, true)
}

func (s *Identities) create(ctx context.Context, req letta.IdentityRequest, upsert bool) (*letta.Identity, error) {
	if err := checkIdentity(req, true); err != nil {
		return nil, err
	}
	id, err := s.c.newIDFor(ctx, "identity")
	if err != nil {
		return nil, err
	}
	return s.invoke(ctx, id, opCreateIdentity, identityPayload{Req: req, Upsert: upsert})
}

// Update changes an identity: given fields replace its own, properties are
// merged by key and agents and blocks are added.
func (s *Identities) Update(ctx context.Context, id string, req letta.IdentityRequest) (*letta.Identity, error) {
	if err := letta.CheckID("identity_id", "identity", id); err != nil {
		return nil, err
	}
	if err := checkIdentity(req, false); err != nil {
		return nil, err
	}
	return s.invoke(ctx, id, opUpdateIdentity, identityPayload{Req: req})
}

// SetProperties replaces an identity's properties.
func (s *Identities) SetProperties(ctx context.Context, id string, props []letta.IdentityProperty) (*letta.Identity, error) {
	return s.updateReplacing(ctx, id, letta.IdentityRequest{Properties: &props})
}

func (s *Identities) updateReplacing(ctx context.Context, id string, req letta.IdentityRequest) (*letta.Identity, error) {
	if err := letta.CheckID("identity_id", "identity", id); err != nil {
		return nil, err
	}
	if err := checkIdentity(req, false); err != nil {
		return nil, err
	}
	return s.invoke(ctx, id, opUpdateIdentity, identityPayload{Req: req, Replace: true})
}

// Delete deletes an identity; its agents and blocks remain.
func (s *Identities) Delete(ctx context.Context, id string) error {
	if err := letta.CheckID("identity_id", "identity", id); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.IdentityActor(id), opDeleteIdentity, nil, nil)
}

func (s *Identities) invoke(ctx context.Context, id, op string, p identityPayload) (*letta.Identity, error) {
	var out letta.Identity
	if err := s.c.invoke(ctx, schema.IdentityActor(id), op, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns an identity.
func (s *Identities) Get(ctx context.Context, id string) (*letta.Identity, error) {
	if err := letta.CheckID("identity_id", "identity", id); err != nil {
		return nil, err
	}
	var out *letta.Identity
	err := s.c.read(ctx, func(txn kv.Txn) error {
		r, err := schema.GetIdentity(txn, id)
		if err == nil {
			out, err = renderIdentity(txn, r)
		}
		return err
	})
	return out, err
}

// IdentityFilter narrows a listing of identities; empty fields match all.
type IdentityFilter struct {
	Name, ProjectID, IdentifierKey, IdentityType string
}

func (f IdentityFilter) match(r *schema.Identity) bool {
	switch {
	case f.Name != "" && !strings.Contains(strings.ToLower(r.Name), strings.ToLower(f.Name)),
		f.ProjectID != "" && (r.ProjectID == nil || *r.ProjectID != f.ProjectID),
		f.IdentifierKey != "" && r.IdentifierKey != f.IdentifierKey,
		f.IdentityType != "" && r.IdentityType != f.IdentityType:
		return false
	}
	return true
}

var identityIndex = index[*schema.Identity]{
	prefix: schema.IdentityIndex.Prefix, idPrefix: "identity", get: schema.GetIdentity,
	created: func(r *schema.Identity) time.Time { return r.CreatedAt },
}

// List lists identities by creation time.
func (s *Identities) List(ctx context.Context, f IdentityFilter, p letta.Page) ([]*letta.Identity, error) {
	p, err := checkPage(p, DefaultIdentityListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.Identity{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		return listIndex(txn, identityIndex, p, func(r *schema.Identity) (bool, error) {
			if !f.match(r) {
				return true, nil
			}
			id, err := renderIdentity(txn, r)
			if err != nil {
				return false, err
			}
			out = append(out, id)
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// Count counts the identities.
func (s *Identities) Count(ctx context.Context) (int, error) {
	n := 0
	err := s.c.read(ctx, func(txn kv.Txn) error {
		return kv.ScanEach(txn, kv.PrefixRange([]byte(schema.IdentityIndex.Prefix)), false, func(kv.KeyValue) (bool, error) {
			n++
			return true, nil
		})
	})
	return n, err
}

// Agents lists the agents of an identity, in id order (Letta's is
// creation order).
func (s *Identities) Agents(ctx context.Context, id string, p letta.Page, withBlocks bool) ([]*letta.AgentState, error) {
	return listLinked(ctx, s.c, ofIdentity, id, p, schema.AgentsOf, func(txn kv.Txn, agentID string) (*letta.AgentState, error) {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return nil, err
		}
		return loadAgent(txn, a, withBlocks)
	})
}

// Blocks lists the blocks of an identity, in id order.
func (s *Identities) Blocks(ctx context.Context, id string, p letta.Page) ([]*letta.Block, error) {
	return listLinked(ctx, s.c, ofIdentity, id, p, schema.BlocksOf, func(txn kv.Txn, blockID string) (*letta.Block, error) {
		b, err := schema.GetBlock(txn, blockID)
		if err != nil {
			return nil, err
		}
		return &b.Block, nil
	})
}

// linkedTo names the object whose links listLinked pages through: the
// name and id prefix of its id, and how to check it exists.
type linkedTo struct {
	param, prefix string
	get           func(kv.Txn, string) error
}

var ofIdentity = linkedTo{"identity_id", "identity", func(txn kv.Txn, id string) error {
	_, err := schema.GetIdentity(txn, id)
	return err
}}

// listLinked reads a page of the objects linked to id (an identity, an
// archive).
func listLinked[T any](ctx context.Context, c *core, of linkedTo, id string, p letta.Page,
	linked func(kv.Txn, string) ([]string, error), load func(kv.Txn, string) (T, error)) ([]T, error) {
	if err := letta.CheckID(of.param, of.prefix, id); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultIdentityListLimit)
	if err != nil {
		return nil, err
	}
	out := []T{}
	err = c.read(ctx, func(txn kv.Txn) error {
		if err := of.get(txn, id); err != nil {
			return err
		}
		ids, err := linked(txn, id)
		if err != nil {
			return err
		}
		if p.Order == letta.Desc {
			slices.Reverse(ids)
		}
		for _, linkedID := range pageOfIDs(ids, p) {
			v, err := load(txn, linkedID)
			if err != nil {
				return schema.Dangling(err, "%s %s links %s", of.prefix, id, linkedID)
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

// renderIdentity is the API shape of an identity, with its links.
func renderIdentity(txn kv.Txn, r *schema.Identity) (*letta.Identity, error) {
	agents, err := schema.AgentsOf(txn, r.ID)
	if err != nil {
		return nil, err
	}
	blocks, err := schema.BlocksOf(txn, r.ID)
	if err != nil {
		return nil, err
	}
	return &letta.Identity{
		ID: r.ID, IdentifierKey: r.IdentifierKey, Name: r.Name, IdentityType: r.IdentityType, ProjectID: r.ProjectID,
		AgentIDs: agents, BlockIDs: blocks, Properties: nonNil(r.Properties),
	}, nil
}

// checkIdentity validates an identity request; create requires the fields
// Letta requires on create.
func checkIdentity(req letta.IdentityRequest, create bool) error {
	if missing := req.MissingOnCreate(); create && len(missing) > 0 {
		return letta.Invalidf("%s: Field required", missing[0])
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"identifier_key", req.IdentifierKey}, {"name", req.Name}, {"project_id", req.ProjectID}} {
		if f.v != nil {
			if err := letta.CheckChars(f.name, *f.v, MaxIdentityChars); err != nil {
				return err
			}
		}
	}
	if t := req.IdentityType; t != nil && !slices.Contains(letta.IdentityTypes, *t) {
		return letta.Invalidf("identity_type %q: want one of %s", letta.Clip(*t), strings.Join(letta.IdentityTypes, ", "))
	}
	if req.AgentIDs != nil {
		if err := checkIDs("agent_ids", "agent", *req.AgentIDs); err != nil {
			return err
		}
	}
	if req.BlockIDs != nil {
		if err := checkIDs("block_ids", "block", *req.BlockIDs); err != nil {
			return err
		}
	}
	if req.Properties != nil {
		if err := checkProperties(*req.Properties); err != nil {
			return err
		}
	}
	data, err := schema.Encode(req)
	if err != nil {
		return letta.Invalidf("request: %v", err)
	}
	if len(data) > MaxIdentityRecordBytes {
		return letta.Invalidf("identity fields total %d bytes of JSON, over the limit of %d", len(data), MaxIdentityRecordBytes)
	}
	return nil
}

func checkProperties(props []letta.IdentityProperty) error {
	if len(props) > MaxIdentityProperties {
		return letta.Invalidf("properties: at most %d, got %d", MaxIdentityProperties, len(props))
	}
	for i, p := range props {
		if p.Key == "" {
			return letta.Invalidf("properties[%d].key: Field required", i)
		}
		if !slices.Contains(letta.IdentityPropertyTypes, p.Type) {
			return letta.Invalidf("properties[%d].type %q: want one of %s", i, letta.Clip(p.Type), strings.Join(letta.IdentityPropertyTypes, ", "))
		}
		if p.Value == nil {
			return letta.Invalidf("properties[%d].value: Field required", i)
		}
	}
	return nil
}

// identityActor serialises operations on one identity. It keeps no state:
// the identity lives at its keys, which agent actors also link to.
type identityActor struct{ c *core }

func (identityActor) Decode(actor.ID, []byte) (any, error) { return nil, nil }
func (identityActor) Encode(any) ([]byte, error)           { return nil, nil }

func (identityActor) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	truncateNow(call)
	switch call.Op {
	case opCreateIdentity, opUpdateIdentity:
		p, err := decodePayload[identityPayload](call)
		if err != nil {
			return nil, err
		}
		if call.Op == opCreateIdentity {
			return createIdentity(call, p)
		}
		r, err := schema.GetIdentity(call.Txn, call.ID.Key)
		if err != nil {
			return nil, err
		}
		return updateIdentity(call, r, p)
	case opDeleteIdentity:
		r, err := schema.GetIdentity(call.Txn, call.ID.Key)
		if err != nil {
			return nil, err
		}
		return nil, schema.DeleteIdentity(call.Txn, r)
	}
	return nil, fmt.Errorf("identity actor: unknown operation %q", call.Op)
}

// createIdentity creates identity call.ID.Key; an upsert of an existing
// (project, identifier key) replaces that identity instead.
func createIdentity(call *actor.Call, p identityPayload) ([]byte, error) {
	req := p.Req
	existing, err := schema.FindIdentity(call.Txn, req.ProjectID, *req.IdentifierKey)
	if err != nil {
		return nil, err
	}
	if existing != "" {
		if !p.Upsert {
			return nil, letta.Conflictf("A unique constraint was violated for Identity. An identity with identifier_key='%s', project_id='%s' already exists.",
				letta.Clip(*req.IdentifierKey), letta.Clip(or(req.ProjectID, "None")))
		}
		r, err := schema.GetIdentity(call.Txn, existing)
		if err != nil {
			return nil, schema.Dangling(err, "identity key of %s", existing)
		}
		// Letta's upsert keeps the project and the blocks.
		req.ProjectID, req.BlockIDs = nil, nil
		return updateIdentity(call, r, identityPayload{Req: req, Replace: true})
	}
	r := &schema.Identity{ID: call.ID.Key, ProjectID: req.ProjectID, CreatedAt: call.Now, Properties: []letta.IdentityProperty{}}
	return updateIdentity(call, r, identityPayload{Req: req, Replace: true})
}

// updateIdentity applies a request to an identity (new when it has no
// record yet) and writes it with its links.
func updateIdentity(call *actor.Call, r *schema.Identity, p identityPayload) ([]byte, error) {
	txn, req := call.Txn, p.Req
	was, err := schema.GetIdentity(txn, r.ID)
	if letta.KindOf(err) == letta.KindNotFound {
		was, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	is := *r
	set(&is.IdentifierKey, req.IdentifierKey)
	set(&is.Name, req.Name)
	set(&is.IdentityType, req.IdentityType)
	if req.Properties != nil {
		is.Properties = mergeProperties(is.Properties, *req.Properties, p.Replace)
		if len(is.Properties) > MaxIdentityProperties {
			return nil, letta.Invalidf("properties: at most %d, got %d", MaxIdentityProperties, len(is.Properties))
		}
	}
	if other, err := schema.FindIdentity(txn, is.ProjectID, is.IdentifierKey); err != nil || other != "" && other != is.ID {
		if err != nil {
			return nil, err
		}
		return nil, letta.Conflictf("identity %s already has identifier_key '%s'", other, letta.Clip(is.IdentifierKey))
	}
	is.UpdatedAt = call.Now
	if err := schema.PutIdentity(txn, was, &is); err != nil {
		return nil, err
	}
	if err := linkAll(txn, is.ID, req.AgentIDs, p.Replace, schema.AgentsOf, schema.SetIdentityAgent, func(id string) error {
		_, err := schema.GetAgent(txn, id)
		return err
	}); err != nil {
		return nil, err
	}
	if err := linkAll(txn, is.ID, req.BlockIDs, p.Replace, schema.BlocksOf, schema.SetIdentityBlock, func(id string) error {
		_, err := schema.GetBlock(txn, id)
		return err
	}); err != nil {
		return nil, err
	}
	out, err := renderIdentity(txn, &is)
	if err != nil {
		return nil, err
	}
	return schema.Encode(out)
}

// mergeProperties replaces old by given, or merges given into old by key.
func mergeProperties(old, given []letta.IdentityProperty, replace bool) []letta.IdentityProperty {
	if replace {
		return nonNil(given)
	}
	out := slices.Clone(old)
	for _, p := range given {
		if i := slices.IndexFunc(out, func(o letta.IdentityProperty) bool { return o.Key == p.Key }); i >= 0 {
			out[i] = p
		} else {
			out = append(out, p)
		}
	}
	return out
}

// linkAll links the objects ids names to an identity (nil: leave the links
// as they are); replace unlinks the others. Each must exist.
func linkAll(txn kv.Txn, identityID string, ids *[]string, replace bool, linked func(kv.Txn, string) ([]string, error),
	setLink func(kv.Txn, string, string, bool) error, exists func(string) error) error {
	if ids == nil {
		return nil
	}
	for _, id := range *ids {
		if err := exists(id); err != nil {
			return err
		}
	}
	if replace {
		current, err := linked(txn, identityID)
		if err != nil {
			return err
		}
		for _, id := range current {
			if !slices.Contains(*ids, id) {
				if err := setLink(txn, identityID, id, false); err != nil {
					return err
				}
			}
		}
	}
	for _, id := range *ids {
		if err := setLink(txn, identityID, id, true); err != nil {
			return err
		}
	}
	return nil
}

// setAgentIdentities makes an agent belong to exactly the identities ids
// names, each of which must exist.
func setAgentIdentities(txn kv.Txn, agentID string, ids []string) error {
	current, err := schema.IdentitiesOfAgent(txn, agentID)
	if err != nil {
		return err
	}
	return joinIdentities(txn, agentID, current, ids)
}

// joinIdentities moves an agent from the identities current (which it
// belongs to) to exactly ids: a new agent belongs to none, so its create
// reads nothing back.
func joinIdentities(txn kv.Txn, agentID string, current, ids []string) error {
	for _, id := range ids {
		if _, err := schema.GetIdentity(txn, id); err != nil {
			return err
		}
	}
	for _, id := range current {
		if !slices.Contains(ids, id) {
			if err := schema.SetIdentityAgent(txn, id, agentID, false); err != nil {
				return err
			}
		}
	}
	for _, id := range ids {
		if err := schema.SetIdentityAgent(txn, id, agentID, true); err != nil {
			return err
		}
	}
	return nil
}

// attachIdentity and detachIdentity are agent operations: an agent joins
// or leaves an identity.
func attachIdentity(_ *core, call *actor.Call, a *schema.Agent, identityID string) ([]byte, error) {
	if _, err := schema.GetIdentity(call.Txn, identityID); err != nil {
		return nil, err
	}
	if err := schema.SetIdentityAgent(call.Txn, identityID, a.ID, true); err != nil {
		return nil, err
	}
	return renderCommitted(call.Txn, a)
}

func detachIdentity(_ *core, call *actor.Call, a *schema.Agent, identityID string) ([]byte, error) {
	if err := schema.SetIdentityAgent(call.Txn, identityID, a.ID, false); err != nil {
		return nil, err
	}
	return renderCommitted(call.Txn, a)
}

// AttachIdentity makes an agent belong to an identity.
func (s *Agents) AttachIdentity(ctx context.Context, agentID, identityID string) (*letta.AgentState, error) {
	return s.identityOp(ctx, opAttachIdentity, agentID, identityID)
}

// DetachIdentity makes an agent leave an identity.
func (s *Agents) DetachIdentity(ctx context.Context, agentID, identityID string) (*letta.AgentState, error) {
	return s.identityOp(ctx, opDetachIdentity, agentID, identityID)
}

func (s *Agents) identityOp(ctx context.Context, op, agentID, identityID string) (*letta.AgentState, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if err := letta.CheckID("identity_id", "identity", identityID); err != nil {
		return nil, err
	}
	var st letta.AgentState
	if err := s.c.invoke(ctx, schema.AgentActor(agentID), op, identityID, &st); err != nil {
		return nil, err
	}
	return &st, nil
}
