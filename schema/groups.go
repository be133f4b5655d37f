package schema

import (
	"slices"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Groups of agents (multi-agent): a record each, indexed by creation time,
// and an entry per agent of the group (its agents and its manager agent),
// so that deleting an agent finds its groups. Group operations run on a
// per-group actor that keeps no state; a new agent's sleep-time group is
// written by the agent's create, in the same transaction.
var (
	Groups = &Family{"group", "group/",
		"group/<group-id>", "a Group record (JSON)"}
	GroupIndex = &Family{"group-index", "index/groups/",
		"index/groups/<created, 16 hex>/<group-id>", "empty: every group, by creation time"}
	AgentGroups = &Family{"agent-group", "agent-group/",
		"agent-group/<agent-id>/<group-id>", "empty: the agent is one of the group's agents or its manager"}
)

// GroupNamespace is the actor namespace of group operations.
const GroupNamespace = "groups"

// GroupActor is the actor that serialises operations on a group.
func GroupActor(groupID string) actor.ID { return actor.ID{Namespace: GroupNamespace, Key: groupID} }

// Group is a stored group: the API's shape plus what only storage needs.
type Group struct {
	letta.Group
	// LastProcessedSeq is the manager agent's last message a sleep-time
	// agent was given (its transcripts start after it).
	LastProcessedSeq uint64    `json:"last_processed_seq,omitempty"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Members are the agents a group names: its agents, then its manager.
func (g *Group) Members() []string {
	out := slices.Clone(g.AgentIDs)
	if g.ManagerAgentID != nil && !slices.Contains(out, *g.ManagerAgentID) {
		out = append(out, *g.ManagerAgentID)
	}
	return out
}

// GroupKey is where a group's record is.
func GroupKey(groupID string) []byte               { return []byte(Groups.Prefix + groupID) }
func AgentGroupKey(agentID, groupID string) []byte { return join(AgentGroups, agentID, groupID) }
func AgentGroupsOf(agentID string) []byte          { return join(AgentGroups, agentID, "") }

// ErrGroupNotFound is Letta's answer for a missing group.
func GroupNotFound(groupID string) error {
	return letta.NotFoundf("Group with id %s not found", groupID)
}

// GetGroup returns a group's record.
func GetGroup(txn kv.Txn, groupID string) (*Group, error) {
	return get[Group](txn, GroupKey(groupID), "group", GroupNotFound(groupID))
}

// PutGroup writes a group's record, its index entry (a new group) and its
// members' entries, moved from was (nil for a new group).
func PutGroup(txn kv.Txn, g *Group, was *Group) error {
	if err := put(txn, GroupKey(g.ID), g); err != nil {
		return err
	}
	if was == nil {
		if err := txn.Set(IndexKey(GroupIndex.Prefix, g.CreatedAt, g.ID), nil); err != nil {
			return err
		}
	} else {
		for _, id := range was.Members() {
			if err := txn.Delete(AgentGroupKey(id, g.ID)); err != nil {
				return err
			}
		}
	}
	for _, id := range g.Members() {
		if err := txn.Set(AgentGroupKey(id, g.ID), nil); err != nil {
			return err
		}
	}
	return nil
}

// DeleteGroup deletes a group with its index and members' entries.
func DeleteGroup(txn kv.Txn, g *Group) error {
	for _, id := range g.Members() {
		if err := txn.Delete(AgentGroupKey(id, g.ID)); err != nil {
			return err
		}
	}
	if err := txn.Delete(IndexKey(GroupIndex.Prefix, g.CreatedAt, g.ID)); err != nil {
		return err
	}
	return txn.Delete(GroupKey(g.ID))
}

// GroupsOfAgent returns the ids of the groups an agent belongs to.
func GroupsOfAgent(txn kv.Txn, agentID string) ([]string, error) {
	kvs, err := txn.Scan(kv.PrefixRange(AgentGroupsOf(agentID)), 0, false)
	out := make([]string, 0, len(kvs))
	for _, p := range kvs {
		out = append(out, LastPart(p.Key))
	}
	return out, err
}

// leaveGroups takes a deleted agent out of its groups, as Letta does: a
// group it managed is deleted; a group left without agents is deleted; the
// others lose it from their agents.
func leaveGroups(txn kv.Txn, agentID string) error {
	ids, err := GroupsOfAgent(txn, agentID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		g, err := GetGroup(txn, id)
		if err != nil {
			return Dangling(err, "entry %q", AgentGroupKey(agentID, id))
		}
		was := *g
		was.AgentIDs = slices.Clone(g.AgentIDs)
		g.AgentIDs = slices.DeleteFunc(g.AgentIDs, func(a string) bool { return a == agentID })
		if g.ManagerAgentID != nil && *g.ManagerAgentID == agentID || len(g.AgentIDs) == 0 {
			if err := DeleteGroup(txn, &was); err != nil {
				return err
			}
			continue
		}
		if err := PutGroup(txn, g, &was); err != nil {
			return err
		}
	}
	return nil
}
