package sim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The listing checker. Every listing the API offers is read in the audit,
// when everything is at rest, whole (one page of up to maxListing items)
// and in both orders, and walked page by page with a small limit: forwards
// with after cursors and backwards from the far end with before cursors,
// in both orders. The walks must give exactly the whole listing, in its
// order, each item as the whole listing shows it; the whole listing must
// hold no item twice, be in the listing's order, be the other order's
// reversed, contain what the model says must exist and nothing it says is
// gone, and agree with the other listings (an agent's blocks with the
// agents of each block). During the run, each page a listing operation
// answers must hold no item twice, no more than its limit, in order.

// maxListing is the largest page the API gives (agent.MaxListLimit): the
// whole listing the walks compare with.
const maxListing = 1000

// sortKey is how a listing orders its items, ascending.
type sortKey int

const (
	byCreation sortKey = iota // created_at, then id
	byID
	// unseen: an order the JSON does not show (blocks: by creation, but
	// a block shows no created_at; messages: as stored; passages: as
	// inserted). The walks, the other order and, for passages, the order
	// clients inserted them in cover it.
	unseen
)

// listingKind is one of the API's listings.
type listingKind struct {
	name   string
	sortBy sortKey
	// defaultDesc: without an order parameter it lists in descending order.
	defaultDesc bool
	// ascendingParam: the order parameter is ascending=true|false, not
	// order=asc|desc.
	ascendingParam bool
	// grouped: the items are stored messages, each shown as one or more
	// parts sharing its id; the limit counts messages.
	grouped bool
}

var (
	agentsListing        = &listingKind{name: "agents", sortBy: byCreation, defaultDesc: true}
	blocksListing        = &listingKind{name: "blocks", sortBy: unseen}
	blockAgentsListing   = &listingKind{name: "a block's agents", sortBy: byCreation, defaultDesc: true}
	agentBlocksListing   = &listingKind{name: "an agent's blocks", sortBy: byID, defaultDesc: true}
	messagesListing      = &listingKind{name: "an agent's messages", sortBy: unseen, defaultDesc: true, grouped: true}
	runsListing          = &listingKind{name: "runs", sortBy: byCreation, defaultDesc: true}
	conversationsListing = &listingKind{name: "an agent's conversations", sortBy: byCreation, defaultDesc: true}
	passagesListing      = &listingKind{name: "an agent's passages", sortBy: unseen, ascendingParam: true}
)

// lister is an operation whose answer is one page of a listing.
type lister interface {
	listing() *listingKind
}

// listedItem is one item of a listing.
type listedItem struct {
	id      string
	agent   string    // agent_id, for runs and conversations
	created time.Time // created_at, when the listing is by creation
	raw     string    // as shown (a message's parts in stored order)
}

// page is the query of one page of k in path's listing.
func (k *listingKind) page(path string, asc bool, limit int, after, before string) string {
	q := url.Values{}
	if k.ascendingParam {
		q.Set("ascending", strconv.FormatBool(asc))
	} else {
		q.Set("order", map[bool]string{true: "asc", false: "desc"}[asc])
	}
	q.Set("limit", strconv.Itoa(limit))
	if after != "" {
		q.Set("after", after)
	}
	if before != "" {
		q.Set("before", before)
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.Encode()
}

// items parses a page of k, listed in descending order if desc.
func (k *listingKind) items(body []byte, desc bool) ([]listedItem, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		return nil, err
	}
	out := []listedItem{} // not nil: an empty listing read whole is whole
	for _, raw := range raws {
		var head struct {
			ID        string `json:"id"`
			AgentID   string `json:"agent_id"`
			CreatedAt string `json:"created_at"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, err
		}
		if n := len(out); k.grouped && n > 0 && out[n-1].id == head.ID {
			// A descending listing shows a message's parts reversed too.
			if desc {
				out[n-1].raw = string(raw) + "\n" + out[n-1].raw
			} else {
				out[n-1].raw += "\n" + string(raw)
			}
			continue
		}
		item := listedItem{id: head.ID, agent: head.AgentID, raw: string(raw)}
		if k.sortBy == byCreation {
			t, err := time.Parse(time.RFC3339Nano, head.CreatedAt)
			if err != nil {
				return nil, fmt.Errorf("item %s: created_at: %w", head.ID, err)
			}
			item.created = t
		}
		out = append(out, item)
	}
	return out, nil
}

// compare orders a and b as k lists them ascending.
func (k *listingKind) compare(a, b listedItem) int {
	if k.sortBy == byCreation {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
	}
	return strings.Compare(a.id, b.id)
}

// shapeProblem says what is wrong with items, a page of k in the order
// desc or not, on its own: an item twice, or two out of order.
func (k *listingKind) shapeProblem(items []listedItem, desc bool) string {
	at := map[string]int{}
	for i, it := range items {
		if j, dup := at[it.id]; dup {
			return fmt.Sprintf("%s is listed twice, at %d and %d", it.id, j, i)
		}
		at[it.id] = i
		if i == 0 || k.sortBy == unseen {
			continue
		}
		c := k.compare(items[i-1], it)
		if desc {
			c = -c
		}
		if c >= 0 {
			return fmt.Sprintf("%s is listed before %s, against the order (%s)", items[i-1].describe(k), it.describe(k), map[bool]string{true: "desc", false: "asc"}[desc])
		}
	}
	return ""
}

func (it listedItem) describe(k *listingKind) string {
	if k.sortBy == byCreation {
		return fmt.Sprintf("%s (created %s)", it.id, it.created.Format(time.RFC3339Nano))
	}
	return it.id
}

// checkPage checks the page a listing operation answered on its own.
func checkPage(k *listingKind, op *opRecord) string {
	u, err := url.Parse(op.Path)
	if err != nil {
		return fmt.Sprintf("cannot read its own path: %v", err)
	}
	q := u.Query()
	desc := k.defaultDesc
	switch {
	case k.ascendingParam && q.Has("ascending"):
		desc = q.Get("ascending") == "false"
	case q.Has("order"):
		desc = q.Get("order") == "desc"
	}
	items, err := k.items(op.Resp, desc)
	if err != nil {
		return fmt.Sprintf("the page does not parse: %v", err)
	}
	if limit, err := strconv.Atoi(q.Get("limit")); err == nil && limit > 0 && len(items) > limit {
		return fmt.Sprintf("the page has %d items, over its limit %d", len(items), limit)
	}
	if p := filterProblem(items, q.Get("agent_id")); p != "" {
		return p
	}
	return k.shapeProblem(items, desc)
}

// filterProblem says which item of a listing filtered by agent_id (if
// set) is another agent's.
func filterProblem(items []listedItem, agentID string) string {
	for _, it := range items {
		if agentID != "" && it.agent != agentID {
			return fmt.Sprintf("%s, of agent %q, is listed for agent_id=%s", it.id, it.agent, agentID)
		}
	}
	return ""
}

func ids(items []listedItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.id
	}
	return out
}

func idList(items []listedItem) string {
	return clipString("["+strings.Join(ids(items), " ")+"]", 600)
}

// sameItems reports whether a and b list the same items, shown alike, in
// the same order.
func sameItems(a, b []listedItem) bool {
	return slices.EqualFunc(a, b, func(x, y listedItem) bool { return x.id == y.id && x.raw == y.raw })
}

func reversed(items []listedItem) []listedItem {
	out := slices.Clone(items)
	slices.Reverse(out)
	return out
}
