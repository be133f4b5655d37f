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

// Groups is the surface of multi-agent groups (Letta's groups): agents
// with a manager type (round robin, supervisor, dynamic, sleep-time) that
// decides who answers a message sent to the group.
type Groups struct{ c *core }

// Limits of groups.
const (
	MaxGroupAgents        = 32
	DefaultGroupListLimit = 50
	// DefaultSleeptimeFrequency is how many turns of its manager agent a
	// sleep-time group lets pass between runs of its sleep-time agents
	// (Letta's default for agents created with enable_sleeptime).
	DefaultSleeptimeFrequency = 5
)

// managerNeedsAgent are the manager types that name a manager agent.
var managerNeedsAgent = map[string]bool{
	letta.ManagerSupervisor: true, letta.ManagerDynamic: true, letta.ManagerSleeptime: true, letta.ManagerVoiceSleeptime: true,
}

// Operations of the group actor.
const (
	opCreateGroup    = "create"
	opUpdateGroup    = "update"
	opDeleteGroup    = "delete"
	opSleeptimeCheck = "sleeptime_check"
)

// Create creates a group of existing agents.
func (s *Groups) Create(ctx context.Context, req letta.GroupCreate) (*letta.Group, error) {
	if err := checkGroupCreate(req); err != nil {
		return nil, err
	}
	id, err := s.c.newIDFor(ctx, "group")
	if err != nil {
		return nil, err
	}
	return s.invoke(ctx, id, opCreateGroup, req)
}

func (s *Groups) invoke(ctx context.Context, id, op string, payload any) (*letta.Group, error) {
	var out letta.Group
	if err := s.c.invoke(ctx, schema.GroupActor(id), op, payload, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// checkGroupCreate checks a create as Letta's GroupCreate and group
// manager do.
func checkGroupCreate(req letta.GroupCreate) error {
	if req.Description == nil {
		return letta.Invalidf("description is required")
	}
	if err := letta.CheckChars("description", *req.Description, letta.MaxDescriptionChars); err != nil {
		return err
	}
	if err := checkGroupAgents(req.AgentIDs); err != nil {
		return err
	}
	return checkManager(req.ManagerConfig, true, true)
}

func checkGroupAgents(ids []string) error {
	if len(ids) > MaxGroupAgents {
		return letta.Invalidf("agent_ids: a group may have at most %d agents, got %d", MaxGroupAgents, len(ids))
	}
	if err := checkIDs("agent_ids", "agent", ids); err != nil {
		return err
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		return letta.Invalidf("Duplicate agent ids found in list")
	}
	return nil
}

// checkManager checks a manager configuration; ids says its agent id is
// a stored agent's (not an agent file's).
func checkManager(m *letta.ManagerConfig, create, ids bool) error {
	if m == nil {
		return nil
	}
	switch m.ManagerType {
	case letta.ManagerRoundRobin, letta.ManagerSupervisor, letta.ManagerDynamic, letta.ManagerSleeptime, letta.ManagerVoiceSleeptime:
	default:
		return letta.Invalidf("manager_type %q is not one of round_robin, supervisor, dynamic, sleeptime, voice_sleeptime", letta.Clip(m.ManagerType))
	}
	if managerNeedsAgent[m.ManagerType] {
		if m.ManagerAgentID == nil && create {
			return letta.Invalidf("manager_config.manager_agent_id is required for a %s group", m.ManagerType)
		}
		if m.ManagerAgentID != nil && ids {
			if err := letta.CheckID("manager_config.manager_agent_id", "agent", *m.ManagerAgentID); err != nil {
				return err
			}
		}
	}
	for _, n := range []struct {
		field string
		v     *int
	}{{"max_turns", m.MaxTurns}, {"sleeptime_agent_frequency", m.SleeptimeAgentFrequency}} {
		if n.v != nil && *n.v < 0 {
			return letta.Invalidf("manager_config.%s must not be negative, got %d", n.field, *n.v)
		}
	}
	return nil
}

// applyManager sets a group's manager fields from a configuration.
func applyManager(g *schema.Group, m *letta.ManagerConfig) {
	if m == nil {
		m = &letta.ManagerConfig{ManagerType: letta.ManagerRoundRobin}
	}
	g.ManagerType = m.ManagerType
	setPtr(&g.ManagerAgentID, m.ManagerAgentID)
	if m.ManagerType == letta.ManagerDynamic && m.TerminationToken == nil && g.TerminationToken == nil {
		g.TerminationToken = new("DONE!")
	}
	setPtr(&g.TerminationToken, m.TerminationToken)
	setPtr(&g.MaxTurns, m.MaxTurns)
	setPtr(&g.SleeptimeAgentFrequency, m.SleeptimeAgentFrequency)
	setPtr(&g.MaxMessageBufferLength, m.MaxMessageBufferLength)
	setPtr(&g.MinMessageBufferLength, m.MinMessageBufferLength)
}

// groupActor serialises operations on one group. It keeps no state: the
// group lives at its keys.
type groupActor struct{ c *core }

func (groupActor) Decode(actor.ID, []byte) (any, error) { return nil, nil }
func (groupActor) Encode(any) ([]byte, error)           { return nil, nil }

func (b groupActor) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	truncateNow(call)
	if call.Op == opCreateGroup {
		req, err := decodePayload[letta.GroupCreate](call)
		if err != nil {
			return nil, err
		}
		g, err := newGroup(call.Txn, call.ID.Key, req, call.Now)
		if err != nil {
			return nil, err
		}
		return schema.Encode(g.Group)
	}
	g, err := schema.GetGroup(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	switch call.Op {
	case opUpdateGroup:
		u, err := decodePayload[letta.GroupUpdate](call)
		if err != nil {
			return nil, err
		}
		return updateGroup(call, g, u)
	case opDeleteGroup:
		return nil, schema.DeleteGroup(call.Txn, g)
	case opSleeptimeCheck:
		p, err := decodePayload[sleeptimeCheck](call)
		if err != nil {
			return nil, err
		}
		return checkSleeptime(call, g, p)
	}
	return nil, fmt.Errorf("group actor: unknown operation %q", call.Op)
}

// newGroup writes a new group of existing agents in txn; creating are
// agents this transaction creates, whose records are not written yet.
func newGroup(txn kv.Txn, id string, req letta.GroupCreate, now time.Time, creating ...string) (*schema.Group, error) {
	g := &schema.Group{Group: letta.Group{ID: id, AgentIDs: nonNil(req.AgentIDs), Description: deref(req.Description),
		ProjectID: req.ProjectID, SharedBlockIDs: nonNil(req.SharedBlockIDs), Hidden: req.Hidden}, CreatedAt: now, UpdatedAt: now}
	applyManager(g, req.ManagerConfig)
	existing := slices.DeleteFunc(g.Members(), func(id string) bool { return slices.Contains(creating, id) })
	if err := groupAgentsExist(txn, existing); err != nil {
		return nil, err
	}
	return g, schema.PutGroup(txn, g, nil)
}

// groupAgentsExist answers Letta's 404 naming the agents that do not
// exist.
func groupAgentsExist(txn kv.Txn, ids []string) error {
	var missing []string
	for _, id := range ids {
		_, err := schema.GetAgent(txn, id)
		if letta.KindOf(err) == letta.KindNotFound {
			missing = append(missing, id)
		} else if err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return letta.NotFoundf("Items not found in agents: %s", strings.Join(missing, ", "))
	}
	return nil
}

func updateGroup(call *actor.Call, g *schema.Group, u letta.GroupUpdate) ([]byte, error) {
	was := *g
	if u.ManagerConfig != nil && u.ManagerConfig.ManagerType != g.ManagerType {
		return nil, letta.Invalidf("Cannot change group pattern after creation")
	}
	if u.AgentIDs != nil {
		g.AgentIDs = nonNil(*u.AgentIDs)
	}
	if u.Description != nil {
		g.Description = *u.Description
	}
	setPtr(&g.ProjectID, u.ProjectID)
	if u.SharedBlockIDs != nil {
		g.SharedBlockIDs = nonNil(*u.SharedBlockIDs)
	}
	if u.ManagerConfig != nil {
		applyManager(g, u.ManagerConfig)
	}
	if err := groupAgentsExist(call.Txn, g.Members()); err != nil {
		return nil, err
	}
	g.UpdatedAt = call.Now
	if err := schema.PutGroup(call.Txn, g, &was); err != nil {
		return nil, err
	}
	return schema.Encode(g.Group)
}

// Get returns a group.
func (s *Groups) Get(ctx context.Context, id string) (*letta.Group, error) {
	if err := letta.CheckID("group_id", "group", id); err != nil {
		return nil, err
	}
	var out *letta.Group
	err := s.c.read(ctx, func(txn kv.Txn) error {
		g, err := schema.GetGroup(txn, id)
		if err == nil {
			out = &g.Group
		}
		return err
	})
	return out, err
}

// Update applies a PATCH to a group; its manager type cannot change.
func (s *Groups) Update(ctx context.Context, id string, u letta.GroupUpdate) (*letta.Group, error) {
	if err := letta.CheckID("group_id", "group", id); err != nil {
		return nil, err
	}
	if u.AgentIDs != nil {
		if err := checkGroupAgents(*u.AgentIDs); err != nil {
			return nil, err
		}
	}
	if u.Description != nil {
		if err := letta.CheckChars("description", *u.Description, letta.MaxDescriptionChars); err != nil {
			return nil, err
		}
	}
	if err := checkManager(u.ManagerConfig, false, true); err != nil {
		return nil, err
	}
	return s.invoke(ctx, id, opUpdateGroup, u)
}

// Delete deletes a group; its agents remain.
func (s *Groups) Delete(ctx context.Context, id string) error {
	if err := letta.CheckID("group_id", "group", id); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.GroupActor(id), opDeleteGroup, nil, nil)
}

// GroupFilter narrows a listing of groups.
type GroupFilter struct {
	ManagerType, ProjectID string
	ShowHidden             bool
}

func (f GroupFilter) match(g *schema.Group) bool {
	switch {
	case f.ManagerType != "" && g.ManagerType != f.ManagerType,
		f.ProjectID != "" && (g.ProjectID == nil || *g.ProjectID != f.ProjectID),
		!f.ShowHidden && g.Hidden != nil && *g.Hidden:
		return false
	}
	return true
}

var groupIndex = index[*schema.Group]{
	prefix: schema.GroupIndex.Prefix, idPrefix: "group", get: schema.GetGroup,
	created: func(g *schema.Group) time.Time { return g.CreatedAt },
}

// List lists groups by creation time.
func (s *Groups) List(ctx context.Context, f GroupFilter, p letta.Page) ([]letta.Group, error) {
	p, err := checkPage(p, DefaultGroupListLimit)
	if err != nil {
		return nil, err
	}
	out := []letta.Group{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		return listIndex(txn, groupIndex, p, func(g *schema.Group) (bool, error) {
			if f.match(g) {
				out = append(out, g.Group)
			}
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// Count counts the groups a listing with f would return.
func (s *Groups) Count(ctx context.Context, f GroupFilter) (int, error) {
	n := 0
	err := s.c.read(ctx, func(txn kv.Txn) error {
		return listIndex(txn, groupIndex, letta.Page{Order: letta.Asc}, func(g *schema.Group) (bool, error) {
			if f.match(g) {
				n++
			}
			return true, nil
		})
	})
	return n, err
}

// ForAgent lists the groups an agent belongs to (or manages).
func (s *Groups) ForAgent(ctx context.Context, agentID string, managerType string) ([]letta.Group, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	out := []letta.Group{}
	err := s.c.read(ctx, func(txn kv.Txn) error {
		if _, err := schema.GetAgent(txn, agentID); err != nil {
			return err
		}
		gs, err := groupsOf(txn, agentID)
		for _, g := range gs {
			if managerType == "" || g.ManagerType == managerType {
				out = append(out, g.Group)
			}
		}
		return err
	})
	return out, err
}

// groupsOf reads the groups an agent belongs to.
func groupsOf(txn kv.Txn, agentID string) ([]*schema.Group, error) {
	ids, err := schema.GroupsOfAgent(txn, agentID)
	if err != nil {
		return nil, err
	}
	out := make([]*schema.Group, 0, len(ids))
	for _, id := range ids {
		g, err := schema.GetGroup(txn, id)
		if err != nil {
			return nil, schema.Dangling(err, "entry %q", schema.AgentGroupKey(agentID, id))
		}
		out = append(out, g)
	}
	return out, nil
}

// managedGroup is the group an agent manages (Letta's multi_agent_group),
// nil if none.
func managedGroup(txn kv.Txn, agentID string) (*schema.Group, error) {
	gs, err := groupsOf(txn, agentID)
	for _, g := range gs {
		if g.ManagerAgentID != nil && *g.ManagerAgentID == agentID {
			return g, err
		}
	}
	return nil, err
}
