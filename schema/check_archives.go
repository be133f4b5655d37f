package schema

import (
	"maps"
	"slices"
	"time"
)

// archiveEntries is what Check reads of archives.
type archiveEntries struct {
	records map[string]*Archive // nil: damaged
	index   map[string]string   // archive id -> index key
	links   map[[2]string]int   // (archive, agent) -> 1 archive-agent, 2 agent-archive, 3 both
}

func (c *checker) addArchive(f *Family, e Entry, p []string) {
	ax := &c.archives
	switch f {
	case Archives:
		ax.records[p[0]] = decodeInto[Archive](c, e, "archive")
	case ArchiveIndex:
		c.indexEntry(ax.index, "archive", p[1], string(e.Key))
	case ArchiveAgents:
		ax.links[[2]string{p[0], p[1]}] |= 1
	case AgentArchives:
		ax.links[[2]string{p[1], p[0]}] |= 2
	}
}

// checkArchives: each archive has its one index entry and every entry
// names an archive; links are kept from both sides and join an archive to
// an agent that exist; an archive's passages belong to a stored archive
// and to no agent.
func (c *checker) checkArchives() {
	ax := &c.archives
	for _, id := range slices.Sorted(maps.Keys(ax.records)) {
		var created time.Time
		if r := ax.records[id]; r != nil {
			created = r.CreatedAt
		}
		c.checkIndexed("archive", id, ax.records[id] != nil, created, ArchiveIndex, ax.index)
	}
	for _, id := range slices.Sorted(maps.Keys(ax.index)) {
		if _, ok := ax.records[id]; !ok {
			c.report(id, "index entry %q names archive %s, which has no record", ax.index[id], id)
		}
	}
	for _, l := range slices.SortedFunc(maps.Keys(ax.links), func(a, b [2]string) int { return slices.Compare(a[:], b[:]) }) {
		archive, agent := l[0], l[1]
		if _, ok := ax.records[archive]; !ok {
			c.report(archive, "archive %s is linked to agent %s but has no record", archive, agent)
		}
		if !c.agentExists(agent) {
			c.report(agent, "agent %s is linked to archive %s but has no record", agent, archive)
		}
		if ax.links[l] != 3 {
			c.report(archive, "the link of archive %s and agent %s is kept from one side only", archive, agent)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(c.passages)) {
		p := c.passages[key]
		if p == nil || p.ArchiveID == "" {
			continue
		}
		if _, ok := ax.records[p.ArchiveID]; !ok {
			c.report(p.ArchiveID, "passage %s belongs to archive %s, which has no record", p.ID, p.ArchiveID)
		}
		if p.AgentID != "" {
			c.report(p.ArchiveID, "passage %s of archive %s also names agent %s", p.ID, p.ArchiveID, p.AgentID)
		}
	}
}
