package schema

import (
	"maps"
	"slices"
)

// checkPassageVectors: each passage naming an embedding has one vector of
// whole float32s at its own place, and each vector belongs to a stored
// passage that names an embedding.
func (c *checker) checkPassageVectors() {
	for _, key := range slices.Sorted(maps.Keys(c.passages)) {
		p := c.passages[key]
		if p == nil || p.Embedding == "" {
			continue
		}
		n, ok := c.vectors[string(PassageVectorFor([]byte(key)))]
		switch {
		case !ok:
			c.report(p.AgentID, "passage %s names embedding %q but has no vector", p.ID, p.Embedding)
		case n >= 0 && (n == 0 || n%4 != 0):
			c.report(p.AgentID, "passage %s has a vector of %d bytes: want a positive multiple of 4", p.ID, n)
		}
	}
	for _, vk := range slices.Sorted(maps.Keys(c.vectors)) {
		pk := Passages.Prefix + vk[len(PassageVectors.Prefix):]
		p, stored := c.passages[pk]
		switch {
		case !stored:
			c.report("", "vector %q has no passage", vk)
		case p != nil && p.Embedding == "":
			c.report(p.AgentID, "passage %s has a vector but names no embedding", p.ID)
		}
	}
}
