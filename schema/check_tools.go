package schema

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// toolKeys is what Check read of custom tools.
type toolKeys struct {
	records    map[string]*Tool   // tool id -> record (nil when damaged)
	names      map[string]string  // name -> tool id ("" when damaged)
	index      map[string]string  // tool id -> index key
	agentTools map[[2]string]bool // (agent, tool)
	toolAgents map[[2]string]bool // (agent, tool), from the tool's side
}

func newToolKeys() toolKeys {
	return toolKeys{records: map[string]*Tool{}, names: map[string]string{}, index: map[string]string{},
		agentTools: map[[2]string]bool{}, toolAgents: map[[2]string]bool{}}
}

func (c *checker) addTool(f *Family, e Entry, p []string) {
	t := &c.tools
	switch f {
	case Tools:
		t.records[p[0]] = decodeInto[Tool](c, e, "tool")
	case ToolNames:
		t.names[strings.TrimPrefix(string(e.Key), ToolNames.Prefix)] = ""
		if !e.Damaged {
			t.names[strings.TrimPrefix(string(e.Key), ToolNames.Prefix)] = string(e.Value)
		}
	case ToolIndex:
		c.indexEntry(t.index, "tool", p[1], string(e.Key))
	case AgentTools:
		t.agentTools[[2]string{p[0], p[1]}] = true
	case ToolAgents:
		t.toolAgents[[2]string{p[1], p[0]}] = true
	}
}

// checkTools: each tool has its index and name entries, each entry names a
// tool, and attachments are symmetric between existing agents and tools.
func (c *checker) checkTools() {
	t := &c.tools
	for _, id := range slices.Sorted(maps.Keys(t.records)) {
		var created time.Time
		r := t.records[id]
		if r != nil {
			created = r.CreatedAt
			if got, ok := t.names[r.Name]; !ok || got != id && got != "" {
				c.report(id, "tool %s (name %q) has no name entry naming it", id, r.Name)
			}
		}
		c.checkIndexed("tool", id, r != nil, created, ToolIndex, t.index)
	}
	for _, id := range slices.Sorted(maps.Keys(t.index)) {
		if _, ok := t.records[id]; !ok {
			c.report(id, "index entry %q names tool %s, which has no record", t.index[id], id)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.names)) {
		id := t.names[name]
		if id == "" {
			continue
		}
		if r, ok := t.records[id]; !ok || r != nil && r.Name != name {
			c.report(id, "name entry %q names tool %s, which has no record of that name", name, id)
		}
	}
	pairs := slices.Collect(maps.Keys(t.agentTools))
	for p := range t.toolAgents {
		if !t.agentTools[p] {
			pairs = append(pairs, p)
		}
	}
	slices.SortFunc(pairs, func(x, y [2]string) int { return strings.Compare(x[0]+x[1], y[0]+y[1]) })
	for _, p := range pairs {
		a, id := p[0], p[1]
		switch {
		case !t.agentTools[p]:
			c.report(a, "tool %s lists agent %s, which does not have it attached", id, a)
		case !t.toolAgents[p]:
			c.report(a, "agent %s has tool %s attached, which does not list it", a, id)
		}
		if !c.agentExists(a) {
			c.report(a, "tool %s is attached to agent %s, which has no record", id, a)
		}
		if _, ok := t.records[id]; !ok {
			c.report(a, "agent %s has tool %s attached, which has no record", a, id)
		}
	}
}
