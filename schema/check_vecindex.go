package schema

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kelpie/kelpie/embedding"
)

// vectorIndexEntries is what Check reads of the vector index.
type vectorIndexEntries struct {
	lists    map[string]int      // "<owner>/<space>/<list>" -> its count (-1 when damaged)
	dims     map[string]int      // "<owner>/<space>/<list>" -> its centroid's dimension
	postings map[string]int      // "<owner>/<space>/<list>" -> postings stored under it
	postedAt map[string][]string // passage key -> "<space>/<list>" of each of its postings
	postDims map[string]int      // passage key -> its posting's dimension (-1 when damaged)
	members  map[string]string   // passage key -> the member entry's value ("" when damaged)
}

func newVectorIndexEntries() vectorIndexEntries {
	return vectorIndexEntries{lists: map[string]int{}, dims: map[string]int{}, postings: map[string]int{},
		postedAt: map[string][]string{}, postDims: map[string]int{}, members: map[string]string{}}
}

func (x *vectorIndexEntries) add(c *checker, f *Family, e Entry, p []string) {
	want := map[*Family]int{VectorCentroids: 3, VectorPostings: 5, VectorMembers: 3}[f]
	if len(p) != want {
		c.report("", "vector index key %q has %d parts, want %d", e.Key, len(p), want)
		return
	}
	switch f {
	case VectorCentroids:
		list := strings.Join(p, "/")
		size, centroid := DecodeCentroid(e.Value)
		x.lists[list], x.dims[list] = int(size), embedding.QuantizedDim(centroid)
		if e.Damaged {
			x.lists[list] = -1
		}
	case VectorPostings:
		pk := string(PassagesOf(p[0])) + p[3] + "/" + p[4]
		x.postings[strings.Join(p[:3], "/")]++
		x.postedAt[pk] = append(x.postedAt[pk], p[1]+"/"+p[2])
		x.postDims[pk] = embedding.QuantizedDim(e.Value)
		if e.Damaged {
			x.postDims[pk] = -1
		}
	case VectorMembers:
		pk := string(PassagesOf(p[0])) + p[1] + "/" + p[2]
		x.members[pk] = ""
		if !e.Damaged {
			x.members[pk] = string(e.Value)
		}
	}
}

// check: each posting has its member entry naming it, its list, and its
// passage, which names an embedding of the posting's space; a passage has
// one posting at most; each list counts its postings and its centroid
// has its space's dimension; no space is both indexed and left in scan
// vectors.
func (x *vectorIndexEntries) check(c *checker) {
	for _, pk := range slices.Sorted(maps.Keys(x.postedAt)) {
		at := x.postedAt[pk]
		owner := strings.SplitN(pk[len(Passages.Prefix):], "/", 2)[0]
		if len(at) > 1 {
			c.report(owner, "passage %q has %d postings in the vector index: %v", pk, len(at), at)
		}
		if m, ok := x.members[pk]; !ok || m != "" && m != at[0] {
			c.report(owner, "the posting of passage %q in %s has no member entry naming it (member: %q)", pk, at[0], m)
		}
		if _, ok := x.lists[owner+"/"+at[0]]; !ok {
			c.report(owner, "the posting of passage %q is in list %s, which has no centroid", pk, at[0])
		}
		p, stored := c.passages[pk]
		switch {
		case !stored:
			c.report(owner, "the vector index holds passage %q, which is not stored", pk)
		case p != nil && (p.Embedding == "" || at[0][:strings.IndexByte(at[0], '/')] != VectorSpace(EmbeddingModelHash(p.Embedding), x.postDims[pk])) && x.postDims[pk] >= 0:
			c.report(owner, "passage %s names embedding %q but its posting is in space %s", p.ID, p.Embedding, at[0])
		}
	}
	for _, pk := range slices.Sorted(maps.Keys(x.members)) {
		if _, ok := x.postedAt[pk]; !ok {
			c.report("", "vector member entry of passage %q names %q, where it has no posting", pk, x.members[pk])
		}
	}
	for _, list := range slices.Sorted(maps.Keys(x.lists)) {
		n, space := x.lists[list], strings.Split(list, "/")[1]
		if n >= 0 && (n != x.postings[list] || n == 0) {
			c.report("", "vector list %s counts %d postings but holds %d", list, n, x.postings[list])
		}
		if _, dim, _ := strings.Cut(space, "-"); n >= 0 && dim != strconv.Itoa(x.dims[list]) {
			c.report("", "vector list %s has a centroid of %d dimensions", list, x.dims[list])
		}
	}
	for _, list := range slices.Sorted(maps.Keys(x.postings)) {
		if _, ok := x.lists[list]; !ok {
			c.report("", "vector list %s holds %d postings but has no centroid", list, x.postings[list])
		}
	}
	indexed := map[string]bool{} // "<owner>/<space>"
	for list := range x.lists {
		indexed[list[:strings.LastIndexByte(list, '/')]] = true
	}
	for _, sk := range slices.Sorted(maps.Keys(c.scanVectors)) {
		owner := strings.SplitN(sk[len(PassageScanVectors.Prefix):], "/", 2)[0]
		space := VectorSpace(c.scanModels[sk], c.scanVectors[sk]-8)
		if c.scanVectors[sk] >= 0 && indexed[owner+"/"+space] {
			c.report(owner, "scan vector %q is of space %s, which has a vector index", sk, space)
		}
	}
}
