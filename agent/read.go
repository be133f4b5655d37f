package agent

import (
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// MaxListLimit bounds the items one list call returns.
const MaxListLimit = 1000

// MaxResponseBytes bounds the content one listing returns (block values,
// message text, ...): a page that reaches it ends early and the client pages
// on, so one listing request holds at most about this much, whatever its
// limit and however large the items.
const MaxResponseBytes = 32 << 20

// checkPage validates a page and fills in its default limit.
func checkPage(p letta.Page, defaultLimit int) (letta.Page, error) {
	switch p.Order {
	case letta.Asc, letta.Desc:
	default:
		return p, letta.Invalidf("order %q: want asc or desc", letta.Clip(string(p.Order)))
	}
	if p.Limit < 0 || p.Limit > MaxListLimit {
		return p, letta.Invalidf("limit %d is out of range: want 1 to %d", p.Limit, MaxListLimit)
	}
	if p.Limit == 0 {
		p.Limit = defaultLimit
	}
	p.MaxBytes = MaxResponseBytes
	return p, nil
}

// index is an index of records R by creation time (see schema.IndexKey).
type index[R any] struct {
	prefix   string // of the index's keys
	idPrefix string // of the ids of its records
	get      func(kv.Txn, string) (R, error)
	created  func(R) time.Time
}

// listIndex visits the records an index lists, in the page's order,
// strictly between its cursors, until visit returns false. An unknown or
// malformed cursor is ignored, as Letta does.
func listIndex[R any](txn kv.Txn, ix index[R], p letta.Page, visit func(R) (bool, error)) error {
	cursor := func(id string) ([]byte, error) {
		if id == "" || !letta.ValidID(ix.idPrefix, id) {
			return nil, nil
		}
		rec, err := ix.get(txn, id)
		if letta.KindOf(err) == letta.KindNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return schema.IndexKey(ix.prefix, ix.created(rec), id), nil
	}
	after, err := cursor(p.After)
	if err != nil {
		return err
	}
	before, err := cursor(p.Before)
	if err != nil {
		return err
	}
	desc := p.Order == letta.Desc
	return kv.ScanEach(txn, schema.Window([]byte(ix.prefix), after, before, desc), desc, func(e kv.KeyValue) (bool, error) {
		rec, err := ix.get(txn, schema.LastPart(e.Key))
		if err != nil {
			return false, schema.Dangling(err, "index entry %q", e.Key)
		}
		return visit(rec)
	})
}

// pageOfIDs applies exclusive id cursors to ids already in listing order.
func pageOfIDs(ids []string, p letta.Page) []string {
	beyond := func(a, b string) bool { // a comes after b in the listing
		if p.Order == letta.Desc {
			return a < b
		}
		return a > b
	}
	var out []string
	for _, id := range ids {
		if p.After != "" && !beyond(id, p.After) || p.Before != "" && !beyond(p.Before, id) {
			continue
		}
		if out = append(out, id); len(out) == p.Limit {
			break
		}
	}
	return out
}
