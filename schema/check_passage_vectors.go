package schema

import (
	"maps"
	"slices"
)

// checkPassageVectors: each passage naming an embedding has one vector of
// whole float32s at its own place, and each vector belongs to a stored
// passage that names an embedding; each vector has either its scan vector
// or its posting in the vector index (not both), of its dimension, and each
// scan vector its vector.
func (c *checker) checkPassageVectors() {
	for _, vk := range slices.Sorted(maps.Keys(c.vectors)) {
		pk := Passages.Prefix + vk[len(PassageVectors.Prefix):]
		sk := PassageScanVectorFor([]byte(pk))
		n := c.vectors[vk]
		m, scanned := c.scanVectors[string(sk)]
		d, posted := c.vecIndex.postDims[pk]
		switch {
		case !scanned && !posted:
			c.report("", "vector %q has neither a scan vector nor a posting in the vector index", vk)
		case scanned && posted:
			c.report("", "vector %q has both a scan vector and a posting in the vector index", vk)
		case scanned && n >= 0 && m >= 0 && m-8 != n/4:
			c.report("", "vector %q has %d dimensions but its scan vector %d", vk, n/4, m-8)
		case posted && n >= 0 && d >= 0 && d != n/4:
			c.report("", "vector %q has %d dimensions but its posting %d", vk, n/4, d)
		}
	}
	for _, sk := range slices.Sorted(maps.Keys(c.scanVectors)) {
		if _, ok := c.vectors[string(PassageVectorFor(PassageKeyOfScanVector([]byte(sk))))]; !ok {
			c.report("", "scan vector %q has no vector", sk)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(c.passages)) {
		p := c.passages[key]
		if p == nil || p.Embedding == "" {
			continue
		}
		sk := PassageScanVectorFor([]byte(key))
		if m, ok := c.scanVectors[string(sk)]; ok && m >= 0 && c.scanModels[string(sk)] != EmbeddingModelHash(p.Embedding) {
			c.report(p.AgentID, "passage %s names embedding %q but its scan vector another model", p.ID, p.Embedding)
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
