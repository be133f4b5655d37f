package schema

import (
	"encoding/hex"
	"maps"
	"slices"
	"strings"
)

// passageIndexEntries is what Check reads of the passages' word index and
// counts.
type passageIndexEntries struct {
	postings  map[string]bool           // posting key
	counts    map[string]int            // owner -> stored count (-1 when damaged)
	tagCounts map[string]map[string]int // owner -> tag -> stored count (-1 when damaged)
}

func newPassageIndexEntries() passageIndexEntries {
	return passageIndexEntries{postings: map[string]bool{}, counts: map[string]int{}, tagCounts: map[string]map[string]int{}}
}

func (x *passageIndexEntries) add(c *checker, f *Family, e Entry, p []string) {
	want := map[*Family]int{PassageTerms: 4, PassageCounts: 1, PassageTagCounts: 2}[f]
	if len(p) != want {
		c.report("", "passage index key %q has %d parts, want %d", e.Key, len(p), want)
		return
	}
	n := -1
	if f != PassageTerms && !e.Damaged {
		var err error
		if n, err = parseCount(e.Key, e.Value); err != nil {
			c.report(p[0], "%v", err)
			n = -1
		}
	}
	switch f {
	case PassageTerms:
		x.postings[string(e.Key)] = true
	case PassageCounts:
		x.counts[p[0]] = n
	case PassageTagCounts:
		tag, err := hex.DecodeString(p[1])
		if err != nil {
			c.report(p[0], "passage tag count %q: the tag is not hex", e.Key)
			return
		}
		if x.tagCounts[p[0]] == nil {
			x.tagCounts[p[0]] = map[string]int{}
		}
		x.tagCounts[p[0]][string(tag)] = n
	}
}

// check: each agent or archive passage has one posting per indexed term
// (IndexedTerms) and every posting is one of a passage's; each owner's
// count is how many passages it has, and each tag count how many of them
// have the tag (no count is stored for none).
func (x *passageIndexEntries) check(c *checker) {
	want := map[string]bool{}
	owners := map[string]int{}
	tags := map[string]map[string]int{}
	damaged := map[string]bool{} // owner -> one of its passages is damaged
	for _, key := range slices.Sorted(maps.Keys(c.passages)) {
		owner := parts(Passages, key)[0]
		owners[owner]++
		p := c.passages[key]
		if p == nil {
			damaged[owner] = true
			continue
		}
		for _, t := range IndexedTerms(p) {
			k := string(PassageTermKey(owner, t, []byte(key)))
			want[k] = true
			if !x.postings[k] {
				c.report(owner, "passage %s has the word %q but no posting %q", p.ID, t, k)
			}
		}
		if tags[owner] == nil {
			tags[owner] = map[string]int{}
		}
		for _, tag := range distinctTags(p) {
			tags[owner][tag]++
		}
	}
	for _, k := range slices.Sorted(maps.Keys(x.postings)) {
		if want[k] {
			continue
		}
		p := parts(PassageTerms, k)
		pk := string(PassagesOf(p[0])) + strings.Join(p[2:], "/")
		if rec, ok := c.passages[pk]; !ok || rec != nil {
			c.report(p[0], "posting %q is not one of the words of passage %q (or the passage is not stored)", k, pk)
		}
	}
	for _, owner := range slices.Sorted(maps.Keys(merged(owners, x.counts))) {
		if n, ok := x.counts[owner]; n != owners[owner] && n != -1 {
			c.report(owner, "the passage count of %s is %d (stored: %v), but it has %d passages", owner, n, ok, owners[owner])
		}
	}
	for _, owner := range slices.Sorted(maps.Keys(merged(tags, x.tagCounts))) {
		if damaged[owner] {
			continue
		}
		for _, tag := range slices.Sorted(maps.Keys(merged(tags[owner], x.tagCounts[owner]))) {
			if n, ok := x.tagCounts[owner][tag]; n != tags[owner][tag] && n != -1 {
				c.report(owner, "the count of %s's passages tagged %q is %d (stored: %v), but %d have the tag", owner, tag, n, ok, tags[owner][tag])
			}
		}
	}
}

// merged returns the union of the keys of a and b.
func merged[V any, W any](a map[string]V, b map[string]W) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
