package schema

import (
	"maps"
	"slices"
	"strings"
)

// mcpKeys is what Check read of MCP servers.
type mcpKeys struct {
	records map[string]*MCPServer // server id -> record (nil when damaged)
	names   map[string]string     // name -> server id ("" when damaged)
	tools   map[[2]string]bool    // (server, tool)
}

func newMCPKeys() mcpKeys {
	return mcpKeys{records: map[string]*MCPServer{}, names: map[string]string{}, tools: map[[2]string]bool{}}
}

func (c *checker) addMCP(f *Family, e Entry, p []string) {
	m := &c.mcp
	switch f {
	case MCPServers:
		m.records[p[0]] = decodeInto[MCPServer](c, e, "mcp server")
	case MCPServerNames:
		name := strings.TrimPrefix(string(e.Key), MCPServerNames.Prefix)
		m.names[name] = ""
		if !e.Damaged {
			m.names[name] = string(e.Value)
		}
	case MCPServerTools:
		m.tools[[2]string{p[0], p[1]}] = true
	}
}

// checkMCPServers: each server has the name entry naming it and each name
// entry names a server of that name; each mapping entry links an existing
// server to an existing tool of type external_mcp whose metadata names that
// server; and each such tool has its mapping entry.
func (c *checker) checkMCPServers() {
	m := &c.mcp
	for _, id := range slices.Sorted(maps.Keys(m.records)) {
		if r := m.records[id]; r != nil {
			if got, ok := m.names[r.Name]; !ok || got != id && got != "" {
				c.report(id, "mcp server %s (name %q) has no name entry naming it", id, r.Name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.names)) {
		id := m.names[name]
		if id == "" {
			continue
		}
		if r, ok := m.records[id]; !ok || r != nil && r.Name != name {
			c.report(id, "name entry %q names mcp server %s, which has no record of that name", name, id)
		}
	}
	links := slices.SortedFunc(maps.Keys(m.tools), func(x, y [2]string) int { return strings.Compare(x[0]+"/"+x[1], y[0]+"/"+y[1]) })
	for _, l := range links {
		sid, tid := l[0], l[1]
		if _, ok := m.records[sid]; !ok {
			c.report(sid, "tool %s is mapped to mcp server %s, which has no record", tid, sid)
		}
		t, ok := c.tools.records[tid]
		switch {
		case !ok:
			c.report(sid, "mcp server %s maps tool %s, which has no record", sid, tid)
		case t != nil && MCPServerOf(t) != sid:
			c.report(sid, "mcp server %s maps tool %s, which is not one of its tools (type %q, server %q)", sid, tid, t.ToolType, MCPServerOf(t))
		}
	}
	for _, tid := range slices.Sorted(maps.Keys(c.tools.records)) {
		t := c.tools.records[tid]
		if t == nil || t.ToolType != ToolTypeMCP {
			continue
		}
		if sid := MCPServerOf(t); !m.tools[[2]string{sid, tid}] {
			c.report(tid, "mcp tool %s (server %q) has no mapping entry", tid, sid)
		}
	}
}
