package schema

import (
	"maps"
	"slices"
	"strings"
)

// repoEntries is what Check reads of the agents' memory repositories.
type repoEntries struct {
	objects map[string]bool   // "<agent-id>/<hash>"
	refs    map[string]string // "<agent-id>/<ref name>" -> hash ("" when damaged)
}

func (r *repoEntries) add(c *checker, f *Family, e Entry, p []string) {
	key := strings.Join(p, "/")
	if f == GitObjects {
		if len(p) != 2 || len(p[1]) != 40 {
			c.report(p[0], "git object key %q does not end in a 40-hex hash", e.Key)
		}
		r.objects[key] = true
		return
	}
	r.refs[key] = ""
	if !e.Damaged {
		r.refs[key] = string(e.Value)
	}
}

// check: every ref names an object stored in its own agent's repository,
// and every object and ref belongs to an agent that exists (a deleted
// agent's repository is deleted with it).
func (r *repoEntries) check(c *checker) {
	gone := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(r.refs)) {
		agentID, ref, _ := strings.Cut(key, "/")
		if !c.agentExists(agentID) {
			gone[agentID] = true
			continue
		}
		if h := r.refs[key]; h != "" && !r.objects[agentID+"/"+h] {
			c.report(agentID, "ref %s of agent %s names %s, which is not an object of its repository", ref, agentID, h)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(r.objects)) {
		if agentID, _, _ := strings.Cut(key, "/"); !c.agentExists(agentID) {
			gone[agentID] = true
		}
	}
	for _, agentID := range slices.Sorted(maps.Keys(gone)) {
		c.report(agentID, "agent %s has no record, but its memory repository remains", agentID)
	}
}
