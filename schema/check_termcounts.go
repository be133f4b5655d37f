package schema

import (
	"maps"
	"slices"
)

// addTermCount takes a term count key: count-term/base/<kind>/<hash> or
// count-term/delta/<kind>/<hash>/<agent-id>. It files it with the counts of
// agents and blocks (agentIndexes), under "<kind>/<hash>".
func (c *checker) addTermCount(e Entry, p []string) {
	ix := &c.agentIx
	if len(p) < 3 || !Counted(p[1]) || p[0] == "base" && len(p) != 3 || p[0] == "delta" && len(p) != 4 || p[0] != "base" && p[0] != "delta" {
		c.report("", "%q is not the key of a term count's base or of a delta", e.Key)
		return
	}
	what := p[1] + "/" + p[2]
	ix.termCounts[what] = true
	if e.Damaged {
		ix.damaged[what] = true
		if p[0] == "delta" {
			ix.unknown[[2]string{what, p[3]}] = true
		}
		return
	}
	n, err := parseCount(e.Key, e.Value)
	switch {
	case err != nil:
		c.report("", "%v", err)
	case p[0] == "base" && n <= 0:
		c.report("", "the count at %q is %d; a term no listed agent has has no base", e.Key, n)
	case p[0] == "base":
		ix.bases[what] = n
	default:
		c.addDelta(e, what, p[3], n)
	}
}

// checkTermCounts: the count of each term of a counted kind (base and
// deltas) is how many listed agents have it — for an identity, how many
// listed agents it links — and each delta is 1 for an agent that has it, -1
// for one that has not. damaged: some agent's terms are unknown.
func (c *checker) checkTermCounts(damaged bool) {
	holders := map[string]map[string]bool{} // "<kind>/<hash>" -> agent ids
	hold := func(t Term, agentID string) {
		what := termPath(t)
		if holders[what] == nil {
			holders[what] = map[string]bool{}
		}
		holders[what][agentID] = true
	}
	for id, a := range c.agents {
		for _, t := range AgentTermsOf(a) {
			if Counted(t.Kind) {
				hold(t, id)
			}
		}
	}
	for link := range c.identities.links[IdentityAgents] {
		if a, ok := c.agents[link[1]]; ok && a == nil {
			damaged = true
		} else if Listed(a) {
			hold(Term{TermIdentity, link[0]}, link[1])
		}
	}
	terms := c.agentIx.termCounts
	for what := range holders {
		terms[what] = true
	}
	for _, what := range slices.Sorted(maps.Keys(terms)) {
		c.checkCount(what, holders[what], damaged)
	}
}
