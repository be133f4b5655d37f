package schema

import (
	"maps"
	"slices"
	"time"
)

// batchKeys is what Check read of batches.
type batchKeys struct {
	records map[string]*Batch // batch id -> record (nil when damaged)
	index   map[string]string // batch id -> index key
}

func (b *batchKeys) add(c *checker, f *Family, e Entry, p []string) {
	if b.records == nil {
		b.records, b.index = map[string]*Batch{}, map[string]string{}
	}
	switch f {
	case Batches:
		b.records[p[0]] = decodeInto[Batch](c, e, "batch")
	case BatchIndex:
		c.indexEntry(b.index, "batch", p[1], string(e.Key))
	}
}

// check: each batch has its index entry and a stored status, and names
// for each of its agents either a run or why none started (not both);
// each index entry names a batch.
func (b *batchKeys) check(c *checker) {
	for _, id := range slices.Sorted(maps.Keys(b.records)) {
		r := b.records[id]
		var created time.Time
		if r != nil {
			created = r.CreatedAt
			if r.Status != BatchRunning && r.Status != BatchCancelled {
				c.report(id, "batch %s has status %q, neither running nor cancelled", id, r.Status)
			}
			for _, it := range r.Items {
				if it.AgentID == "" || (it.RunID == "") == (it.Error == "") {
					c.report(id, "batch %s has an item without its agent, or without exactly one of a run and an error: %+v", id, it)
				}
			}
		}
		c.checkIndexed("batch", id, r != nil, created, BatchIndex, b.index)
	}
	for _, id := range slices.Sorted(maps.Keys(b.index)) {
		if _, ok := b.records[id]; !ok {
			c.report(id, "index entry %q names batch %s, which has no record", b.index[id], id)
		}
	}
}
