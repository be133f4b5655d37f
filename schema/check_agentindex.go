package schema

import (
	"maps"
	"slices"
	"strconv"
)

// agentIndexes is what Check reads of the agent terms, the agent counts
// and the layout version.
type agentIndexes struct {
	terms      map[string]bool           // term index keys
	termCounts map[string]bool           // "<kind>/<hash>" of the term counts stored
	bases      map[string]int            // what -> stored base; absent when damaged or missing
	deltas     map[string]map[string]int // what -> object id -> its deltas, its create's included
	damaged    map[string]bool           // what -> a count key of it is damaged
	unknown    map[[2]string]bool        // {what, object id}: a delta key of the object is damaged
	created    bool                      // a create's count key is damaged: any count may be off
	version    string                    // "" when absent
}

func (c *checker) addAgentIndexes(f *Family, e Entry, p []string) {
	ix := &c.agentIx
	switch f {
	case AgentTerms, TagNames:
		ix.terms[string(e.Key)] = true
	case Counts:
		c.addCount(e, p)
	case TermCounts:
		c.addTermCount(e, p)
	case CreateCounts:
		c.addCreateCount(e)
	case Meta:
		if string(e.Key) != VersionKey {
			c.report("", "%q is not a known meta key", e.Key)
		} else if !e.Damaged {
			ix.version = string(e.Value)
		}
	}
}

// checkAgentIndexes: each listed agent has one term entry per term (and
// one tag-name entry per tag), and every such entry is one of an agent's;
// the counts of listed agents, of blocks and of terms add up; the layout
// version, if recorded, is Version.
func (c *checker) checkAgentIndexes() {
	ix := &c.agentIx
	want := map[string]string{} // term key -> agent id
	listed := map[string]bool{}
	damaged := false
	for _, id := range slices.Sorted(maps.Keys(c.agents)) {
		a := c.agents[id]
		damaged = damaged || a == nil
		if !Listed(a) {
			continue
		}
		listed[id] = true
		for _, t := range AgentTermsOf(a) {
			for _, key := range TermKeys(t, a.CreatedAt, a.ID) {
				k := string(key)
				want[k] = id
				if !ix.terms[k] {
					c.report(id, "agent %s has %s %q but no entry %q in its index", id, t.Kind, t.Value, k)
				}
			}
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
	blocks := map[string]bool{}
	for id := range c.blocks {
		blocks[id] = true
	}
	c.checkCount(CountedAgents, listed, damaged)
	c.checkCount(CountedBlocks, blocks, false)
	c.checkTermCounts(damaged)
	if ix.version != "" && ix.version != strconv.Itoa(Version) {
		c.report("", "the store records layout version %q; this checker knows version %d", ix.version, Version)
	}
}

// addCount takes a count key: count/<what>/base or count/<what>/delta/<id>.
func (c *checker) addCount(e Entry, p []string) {
	ix := &c.agentIx
	what := p[0]
	switch {
	case what != CountedAgents && what != CountedBlocks || len(p) < 2 || p[1] == "base" && len(p) != 2 || p[1] == "delta" && len(p) != 3:
		c.report("", "%q is not the key of a count of agents or blocks", e.Key)
		return
	case p[1] != "base" && p[1] != "delta":
		c.report("", "%q is not the key of a count's base or of a delta", e.Key)
		return
	case e.Damaged:
		ix.damaged[what] = true
		if p[1] == "delta" {
			ix.unknown[[2]string{what, p[2]}] = true
		}
		return
	}
	n, err := parseCount(e.Key, e.Value)
	if err != nil {
		c.report("", "%v", err)
		return
	}
	if p[1] == "base" {
		ix.bases[what] = n
		return
	}
	c.addDelta(e, what, p[2], n)
}

// addDelta files an object's stored delta key of the count what.
func (c *checker) addDelta(e Entry, what, id string, n int) {
	if n != 1 && n != -1 {
		c.report(id, "%q holds a delta of %d; want 1 or -1", e.Key, n)
	}
	c.fileDelta(what, id, n)
}

// fileDelta adds n to the deltas of object id in the count what.
func (c *checker) fileDelta(what, id string, n int) {
	ix := &c.agentIx
	if ix.deltas[what] == nil {
		ix.deltas[what] = map[string]int{}
	}
	ix.deltas[what][id] += n
}

// addCreateCount takes the count key of a create (CreateCounts), each of
// whose lines adds 1 for an object to a count.
func (c *checker) addCreateCount(e Entry) {
	ix := &c.agentIx
	if e.Damaged {
		ix.created = true
		return
	}
	err := eachCreated(e.Key, e.Value, func(what, id string) error {
		if what != CountedAgents && what != CountedBlocks {
			ix.termCounts[what] = true
		}
		c.fileDelta(what, id, 1)
		return nil
	})
	if err != nil {
		c.report("", "%v", err)
	}
}

// checkCount: the base and deltas of the count of what add up to how many
// objects it counts (counted); an object's deltas (its own and its
// create's) add up to 1 for an object counted now, -1 for one not counted
// now, or 0, unless a delta key of the object is damaged. damaged: some
// object may be counted or not.
func (c *checker) checkCount(what string, counted map[string]bool, damaged bool) {
	ix := &c.agentIx
	damaged = damaged || ix.created
	total := ix.bases[what]
	for _, id := range slices.Sorted(maps.Keys(ix.deltas[what])) {
		n := ix.deltas[what][id]
		total += n
		if n < -1 || n > 1 {
			c.report(id, "the count of %s holds deltas adding up to %d for %s; want 1, 0 or -1", what, n, id)
		} else if !damaged && n != 0 && !ix.unknown[[2]string{what, id}] && counted[id] != (n == 1) {
			c.report(id, "the count of %s holds deltas adding up to %d for %s, which is counted: %v", what, n, id, counted[id])
		}
	}
	if !damaged && !ix.damaged[what] && total != len(counted) {
		c.report("", "the count of %s is %d (base %d and %d deltas), but %d %s are counted", what, total, ix.bases[what], len(ix.deltas[what]), len(counted), what)
	}
}
