package schema

import (
	"maps"
	"slices"
	"strconv"
)

// agentIndexes is what Check reads of the agent terms, the agent counts
// and the layout version.
type agentIndexes struct {
	terms   map[string]bool // term index keys
	counts  map[string]int  // count key -> stored count; -1 when damaged
	version string          // "" when absent
}

func (c *checker) addAgentIndexes(f *Family, e Entry, p []string) {
	ix := &c.agentIx
	switch f {
	case AgentTerms:
		ix.terms[string(e.Key)] = true
	case Counts:
		if len(p) != 2 || p[0] != CountedAgents && p[0] != CountedBlocks {
			c.report("", "%q is not the key of a count of agents or blocks", e.Key)
			return
		}
		if shard, err := strconv.ParseUint(p[1], 16, 8); err != nil || int(shard) >= CountShards || string(CountKey(p[0], int(shard))) != string(e.Key) {
			c.report("", "%q is not the key of a count shard (0 to %d)", e.Key, CountShards-1)
			return
		}
		if e.Damaged {
			ix.counts[string(e.Key)] = -1
			return
		}
		n, err := parseCount(e.Key, e.Value)
		if err != nil {
			c.report("", "%v", err)
			return
		}
		ix.counts[string(e.Key)] = n
	case Meta:
		if string(e.Key) != VersionKey {
			c.report("", "%q is not a known meta key", e.Key)
		} else if !e.Damaged {
			ix.version = string(e.Value)
		}
	}
}

// checkAgentIndexes: each listed agent has one term entry per term, and
// every term entry is one of an agent's; each count shard holds how many
// listed agents, or blocks, it counts; the layout version, if recorded, is
// Version.
func (c *checker) checkAgentIndexes() {
	ix := &c.agentIx
	want := map[string]string{} // term key -> agent id
	agents := make([]int, CountShards)
	damaged := false
	for _, id := range slices.Sorted(maps.Keys(c.agents)) {
		a := c.agents[id]
		if a == nil {
			damaged = true
			continue
		}
		for _, t := range AgentTermsOf(a) {
			k := string(IndexKey(string(TermPrefix(t)), a.CreatedAt, a.ID))
			want[k] = id
			if !ix.terms[k] {
				c.report(id, "agent %s has %s %q but no entry %q in the term index", id, t.Kind, t.Value, k)
			}
		}
		if Listed(a) {
			agents[shardOf(id)]++
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ix.terms)) {
		if _, ok := want[k]; ok {
			continue
		}
		id := LastPart([]byte(k))
		if a, ok := c.agents[id]; !ok || a != nil {
			c.report(id, "term index entry %q is not one of agent %s's terms (or the agent has no record)", k, id)
		}
	}
	if !damaged {
		c.checkCounts(CountedAgents, agents)
	}
	blocks := make([]int, CountShards)
	for id := range c.blocks {
		blocks[shardOf(id)]++
	}
	c.checkCounts(CountedBlocks, blocks)
	if ix.version != "" && ix.version != strconv.Itoa(Version) {
		c.report("", "the store records layout version %q; this checker knows version %d", ix.version, Version)
	}
}

// checkCounts compares the stored count of what with want, by shard.
func (c *checker) checkCounts(what string, want []int) {
	for shard, n := range want {
		k := string(CountKey(what, shard))
		stored, ok := c.agentIx.counts[k]
		if ok && stored >= 0 && stored != n || !ok && n > 0 {
			c.report("", "count shard %q holds %d (absent: %v), but %d %s hash to it", k, stored, !ok, n, what)
		}
	}
}
