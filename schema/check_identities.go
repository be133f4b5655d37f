package schema

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// identityEntries is what Check reads of identities.
type identityEntries struct {
	records map[string]*Identity // nil: damaged
	index   map[string]string    // identity id -> index key
	keys    map[string]string    // key entry -> identity id ("" when damaged)
	links   map[*Family]map[[2]string]bool
}

func (c *checker) addIdentity(f *Family, e Entry, p []string) {
	ix := &c.identities
	switch f {
	case Identities:
		ix.records[p[0]] = decodeInto[Identity](c, e, "identity")
	case IdentityIndex:
		c.indexEntry(ix.index, "identity", p[1], string(e.Key))
	case IdentityKeys:
		ix.keys[string(e.Key)] = ""
		if !e.Damaged {
			ix.keys[string(e.Key)] = string(e.Value)
		}
	default:
		if ix.links[f] == nil {
			ix.links[f] = map[[2]string]bool{}
		}
		ix.links[f][[2]string{p[0], p[1]}] = true
	}
}

// checkIdentities: each identity has its one index entry and the key entry
// of its (project, identifier key), and every entry names an identity;
// links are kept from both sides and join an identity to an agent or block
// that exists.
func (c *checker) checkIdentities() {
	ix := &c.identities
	for _, id := range slices.Sorted(maps.Keys(ix.records)) {
		r := ix.records[id]
		var created time.Time
		if r != nil {
			created = r.CreatedAt
			if k := string(IdentityKeyKey(r.ProjectID, r.IdentifierKey)); ix.keys[k] != id {
				c.report(id, "identity %s (identifier key %q) has no key entry %q naming it", id, r.IdentifierKey, k)
			}
		}
		c.checkIndexed("identity", id, r != nil, created, IdentityIndex, ix.index)
	}
	for _, id := range slices.Sorted(maps.Keys(ix.index)) {
		if _, ok := ix.records[id]; !ok {
			c.report(id, "index entry %q names identity %s, which has no record", ix.index[id], id)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ix.keys)) {
		id := ix.keys[k]
		if r, ok := ix.records[id]; id != "" && (!ok || r != nil && string(IdentityKeyKey(r.ProjectID, r.IdentifierKey)) != k) {
			c.report(id, "key entry %q names identity %s, which does not have that key", k, id)
		}
	}
	c.checkLinks(identityAgents, "agent", c.agentExists)
	c.checkLinks(identityBlocks, "block", func(id string) bool { _, ok := c.blocks[id]; return ok })
}

// checkLinks checks the links of l: each is stored both ways and joins an
// identity to an object (kind) that exists.
func (c *checker) checkLinks(l link, kind string, exists func(string) bool) {
	fwd, back := c.identities.links[l.forward], c.identities.links[l.backward]
	pairs := map[[2]string]bool{} // (identity, other)
	for p := range fwd {
		pairs[p] = true
	}
	for p := range back {
		pairs[[2]string{p[1], p[0]}] = true
	}
	for _, p := range slices.SortedFunc(maps.Keys(pairs), func(x, y [2]string) int {
		return strings.Compare(x[0]+"/"+x[1], y[0]+"/"+y[1])
	}) {
		id, other := p[0], p[1]
		switch {
		case !fwd[p]:
			c.report(id, "%s %s lists identity %s, which does not list it", kind, other, id)
		case !back[[2]string{other, id}]:
			c.report(id, "identity %s lists %s %s, which does not list it", id, kind, other)
		}
		if _, ok := c.identities.records[id]; !ok {
			c.report(id, "%s %s belongs to identity %s, which has no record", kind, other, id)
		}
		if !exists(other) {
			c.report(id, "identity %s lists %s %s, which has no record", id, kind, other)
		}
	}
}
