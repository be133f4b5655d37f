package schema

import (
	"maps"
	"slices"
	"time"
)

// groupKeys is what Check read of groups.
type groupKeys struct {
	records map[string]*Group  // group id -> record (nil when damaged)
	index   map[string]string  // group id -> index key
	members map[[2]string]bool // (agent, group)
}

func (c *checker) addGroup(f *Family, e Entry, p []string) {
	g := &c.groups
	switch f {
	case Groups:
		g.records[p[0]] = decodeInto[Group](c, e, "group")
	case GroupIndex:
		c.indexEntry(g.index, "group", p[1], string(e.Key))
	case AgentGroups:
		g.members[[2]string{p[0], p[1]}] = true
	}
}

// checkGroups: each group has its index entry and an entry for each of
// its agents (and its manager), which exist; each entry names a group
// that names the agent.
func (c *checker) checkGroups() {
	g := &c.groups
	for _, id := range slices.Sorted(maps.Keys(g.records)) {
		r := g.records[id]
		var created time.Time
		if r != nil {
			created = r.CreatedAt
			for _, agentID := range r.Members() {
				if !g.members[[2]string{agentID, id}] {
					c.report(id, "group %s names agent %s, which has no entry for it", id, agentID)
				}
				if _, ok := c.agents[agentID]; !ok {
					c.report(id, "group %s names agent %s, which has no record", id, agentID)
				}
			}
		}
		c.checkIndexed("group", id, r != nil, created, GroupIndex, g.index)
	}
	for _, id := range slices.Sorted(maps.Keys(g.index)) {
		if _, ok := g.records[id]; !ok {
			c.report(id, "index entry %q names group %s, which has no record", g.index[id], id)
		}
	}
	for _, m := range slices.SortedFunc(maps.Keys(g.members), func(a, b [2]string) int {
		return slices.Compare(a[:], b[:])
	}) {
		r, ok := g.records[m[1]]
		if !ok {
			c.report(m[0], "agent %s's entry names group %s, which has no record", m[0], m[1])
			continue
		}
		if r != nil && !slices.Contains(r.Members(), m[0]) {
			c.report(m[0], "agent %s's entry names group %s, which does not name it", m[0], m[1])
		}
	}
}
