package schema

import (
	"time"

	"github.com/kelpie/kelpie/actor"
)

// idemRecords are the idempotency records and expiry entries Check read.
type idemRecords struct {
	written map[string]time.Time // record hash -> when written (zero: before expiry; damaged: absent)
	damaged map[string]bool      // record hashes whose value is damaged or unreadable
	expiry  map[string][]time.Time
}

func (r *idemRecords) add(c *checker, f *Family, e Entry) {
	if r.written == nil {
		r.written, r.damaged, r.expiry = map[string]time.Time{}, map[string]bool{}, map[string][]time.Time{}
	}
	switch f {
	case ActorIdempotency:
		hash := string(e.Key[len(f.Prefix):])
		if e.Damaged {
			r.damaged[hash] = true
			return
		}
		at, err := actor.IdemRecordAt(e.Value)
		if err != nil {
			c.report("", "%q: %v", e.Key, err)
			r.damaged[hash] = true
			return
		}
		r.written[hash] = at
	case ActorIdempotencyExpiry:
		at, hash, err := actor.ParseIdemExpiryKey(e.Key)
		if err != nil {
			c.report("", "%v", err)
			return
		}
		r.expiry[hash] = append(r.expiry[hash], at)
	}
}

// check: each record written with a time has one expiry entry at that
// time, and each entry names a record.
func (r *idemRecords) check(c *checker) {
	for hash, at := range r.written {
		entries := r.expiry[hash]
		switch {
		case at.IsZero() && len(entries) > 0:
			c.report("", "idempotency record %s has no time but %d expiry entries", hash, len(entries))
		case !at.IsZero() && (len(entries) != 1 || !entries[0].Equal(at)):
			c.report("", "idempotency record %s written at %v has expiry entries %v, want exactly one at that time", hash, at, entries)
		}
	}
	for hash, entries := range r.expiry {
		if _, ok := r.written[hash]; !ok && !r.damaged[hash] {
			c.report("", "expiry entries %v name idempotency record %s, which does not exist", entries, hash)
		}
	}
}
