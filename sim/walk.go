package sim

import (
	"fmt"
	"math/rand/v2"
	"net/url"
)

// The listing walks of the audit (see listing.go).

// listingAudit is what the audit read of one listing.
type listingAudit struct {
	kind *listingKind
	path string // the route and its filter, without paging
	// object is the agent or block the listing is of ("" for none), for
	// the history a violation shows.
	object string
	// whole is the whole listing, ascending; nil when it could not be
	// read whole.
	whole []listedItem
	// problems are what the walks found wrong.
	problems []string
	// shortPages are pages of a grouped listing that were exactly its
	// next items, but fewer than they should be: a client paging by limit
	// would stop there, before the listing ends.
	shortPages []string
}

func (la *listingAudit) problem(format string, args ...any) {
	la.problems = append(la.problems, fmt.Sprintf(format, args...))
}

// mismatch notes a page that is not want: a short page when it is a start
// of want in a grouped listing, else a problem.
func (la *listingAudit) mismatch(what string, page, want []listedItem) {
	if la.kind.grouped && len(page) < len(want) && sameItems(page, want[:len(page)]) {
		la.shortPages = append(la.shortPages, what)
		return
	}
	la.problems = append(la.problems, what)
}

// walker reads listings in the audit.
type walker struct {
	// get reads a path; excused: it failed on a value damaged at rest,
	// and the listing is not walked.
	get func(path string) (status int, body []byte, excused bool)
	rng *rand.Rand // page sizes
}

// walk reads the listing of kind at path whole in both orders and checks
// its shape; with pages, it also walks it in both orders with after cursors
// and in one with before cursors.
func (wk *walker) walk(kind *listingKind, path, object string, pages bool) *listingAudit {
	la := &listingAudit{kind: kind, path: path, object: object}
	asc, ok := wk.whole(la, true)
	desc, ok2 := wk.whole(la, false)
	if !ok || !ok2 {
		return la
	}
	filter := ""
	if u, err := url.Parse(path); err == nil {
		filter = u.Query().Get("agent_id")
	}
	switch {
	case filterProblem(asc, filter) != "":
		la.problem("the whole listing: %s", filterProblem(asc, filter))
	case kind.shapeProblem(asc, false) != "":
		la.problem("the whole listing, ascending: %s", kind.shapeProblem(asc, false))
	case kind.shapeProblem(desc, true) != "":
		la.problem("the whole listing, descending: %s", kind.shapeProblem(desc, true))
	case !sameItems(reversed(desc), asc):
		la.problem("the whole listing descending is not the ascending one reversed: ascending %s, descending %s", idList(asc), idList(desc))
	}
	la.whole = asc
	if !pages {
		return la
	}
	limit := 1 + wk.rng.IntN(4)
	wk.walkAfter(la, true, limit, asc)
	wk.walkAfter(la, false, limit, desc)
	// Back from the far end in one order, drawn: a seed's listings cover
	// both.
	if wk.rng.IntN(2) == 0 {
		wk.walkBefore(la, true, limit, asc)
	} else {
		wk.walkBefore(la, false, limit, desc)
	}
	return la
}

// whole reads the whole listing in one order; false if it could not.
func (wk *walker) whole(la *listingAudit, asc bool) ([]listedItem, bool) {
	path := la.kind.page(la.path, asc, maxListing, "", "")
	items, ok := wk.page(la, path, asc)
	if ok && len(items) == maxListing {
		return nil, false // perhaps not whole: nothing to compare with
	}
	return items, ok
}

// page reads one page; false (with the problem noted) if it failed.
func (wk *walker) page(la *listingAudit, path string, asc bool) ([]listedItem, bool) {
	status, body, excused := wk.get(path)
	if status != 200 {
		if !excused {
			la.problem("GET %s answered %d: %s", path, status, clipString(string(body), 200))
		}
		return nil, false
	}
	items, err := la.kind.items(body, !asc)
	if err != nil {
		la.problem("GET %s answered what does not parse: %v", path, err)
		return nil, false
	}
	return items, true
}

// walkAfter walks the listing from its start, each page after the last
// item of the one before, and compares each page with the next items of
// want, the whole listing in that order. It ends at the first page short
// of the limit: at most one page more than the full ones.
func (wk *walker) walkAfter(la *listingAudit, asc bool, limit int, want []listedItem) {
	done, after := 0, ""
	for range len(want)/limit + 1 {
		path := la.kind.page(la.path, asc, limit, after, "")
		items, ok := wk.page(la, path, asc)
		if !ok {
			return
		}
		next := want[done:min(done+limit, len(want))]
		if !sameItems(items, next) {
			la.mismatch(fmt.Sprintf("walking with after cursors, GET %s answered %s where the whole listing has %s next", path, idList(items), idList(next)), items, next)
			return
		}
		if len(items) < limit {
			return
		}
		done, after = done+len(items), items[len(items)-1].id
	}
}

// walkBefore walks the listing from its end back to its start, each page
// the limit's worth of items before the first item of the page after it:
// before that item and after the one a limit further back (so that the
// page is the same whether a page before a cursor is the first or the last
// of the items before it), and the first page with a before cursor alone.
func (wk *walker) walkBefore(la *listingAudit, asc bool, limit int, want []listedItem) {
	end := len(want)
	for end > 0 {
		start := max(0, end-limit)
		after, before := "", ""
		if start > 0 {
			after = want[start-1].id
		}
		if end < len(want) {
			before = want[end].id
		}
		path := la.kind.page(la.path, asc, limit, after, before)
		items, ok := wk.page(la, path, asc)
		if !ok {
			return
		}
		if !sameItems(items, want[start:end]) {
			la.mismatch(fmt.Sprintf("walking back with before cursors, GET %s answered %s where the whole listing has %s", path, idList(items), idList(want[start:end])), items, want[start:end])
			return
		}
		end = start
	}
}
