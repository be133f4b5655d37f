package agent

import (
	"slices"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Agent listings and counts read indexes: a filter on name, project or
// tags walks the term indexes of those values (schema.AgentTerms), joined
// in listing order, so a filtered page reads O(log n + page) keys when the
// terms are selective; an unfiltered count, or one filtered by one name,
// project, tag or identity alone, reads a count (base and recent deltas).
// A count by several terms walks their joined indexes, and one by an
// identity with other filters walks the listing. A
// query_text filter (a substring of the name) joins the indexes of its
// trigrams; only one shorter than three characters walks every agent.

// cursor walks index entries in listing order. An entry is named by its
// suffix, "<created, 16 hex>/<agent-id>", which sorts by creation time.
type cursor interface {
	// head returns the entry at the cursor; ok is false past the last.
	head() (suffix string, ok bool, err error)
	// next moves past the head.
	next() error
	// seek moves to the first entry at or beyond suffix.
	seek(suffix string) error
}

// order compares suffixes in listing order.
type order bool // descending

func (o order) before(a, b string) bool {
	if o {
		return a > b
	}
	return a < b
}

// indexCursor walks one index, reading up to indexBatch entries at a
// time. A seek past what it has read starts again at one entry, doubling
// as the walk goes on: in a join, a dense index is sought once per entry
// of a sparse one, and reads about one entry each time.
type indexCursor struct {
	txn    kv.Txn
	prefix string
	r      kv.Range // what is left to read
	desc   order
	buf    []kv.KeyValue
	batch  int  // entries the next read asks for
	done   bool // r holds nothing more
}

const indexBatch = 64

func newIndexCursor(txn kv.Txn, prefix string, after, before string, desc bool) *indexCursor {
	key := func(s string) []byte {
		if s == "" {
			return nil
		}
		return []byte(prefix + s)
	}
	return &indexCursor{txn: txn, prefix: prefix, r: schema.Window([]byte(prefix), key(after), key(before), desc), desc: order(desc), batch: indexBatch}
}

func (c *indexCursor) head() (string, bool, error) {
	if len(c.buf) == 0 && !c.done {
		kvs, err := c.txn.Scan(c.r, c.batch, bool(c.desc))
		if err != nil {
			return "", false, err
		}
		c.buf, c.done = kvs, len(kvs) < c.batch
		c.batch = min(2*c.batch, indexBatch)
		if n := len(kvs); n > 0 {
			if c.desc {
				c.r.End = kvs[n-1].Key
			} else {
				c.r.Start = append(kvs[n-1].Key[:len(kvs[n-1].Key):len(kvs[n-1].Key)], 0)
			}
		}
	}
	if len(c.buf) == 0 {
		return "", false, nil
	}
	return string(c.buf[0].Key[len(c.prefix):]), true, nil
}

func (c *indexCursor) next() error {
	if _, ok, err := c.head(); err != nil || !ok {
		return err
	}
	c.buf = c.buf[1:]
	return nil
}

func (c *indexCursor) seek(suffix string) error {
	for len(c.buf) > 0 {
		if !c.desc.before(string(c.buf[0].Key[len(c.prefix):]), suffix) {
			return nil
		}
		c.buf = c.buf[1:]
	}
	// Past the buffer: narrow what is left to read.
	c.batch = 1
	k := []byte(c.prefix + suffix)
	if c.desc {
		if c.r.End == nil || string(k) < string(c.r.End) {
			c.r.End = append(k, 0)
		}
	} else if string(k) > string(c.r.Start) {
		c.r.Start = k
	}
	return nil
}

// union walks the entries in any of its cursors, each once.
type union struct {
	cs   []cursor
	desc order
}

func (u *union) head() (string, bool, error) {
	best, found := "", false
	for _, c := range u.cs {
		s, ok, err := c.head()
		if err != nil {
			return "", false, err
		}
		if ok && (!found || u.desc.before(s, best)) {
			best, found = s, true
		}
	}
	return best, found, nil
}

func (u *union) next() error {
	s, ok, err := u.head()
	if err != nil || !ok {
		return err
	}
	for _, c := range u.cs {
		if h, ok, err := c.head(); err != nil {
			return err
		} else if ok && h == s {
			if err := c.next(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (u *union) seek(suffix string) error {
	for _, c := range u.cs {
		if err := c.seek(suffix); err != nil {
			return err
		}
	}
	return nil
}

// intersection walks the entries in all of its cursors: each seeks to the
// furthest head of the others until all agree (a leapfrog join), so it
// reads about as many entries as the most selective cursor holds.
type intersection struct {
	cs   []cursor
	desc order
}

func (x *intersection) head() (string, bool, error) {
	for {
		target, agreed := "", true
		for i, c := range x.cs {
			s, ok, err := c.head()
			if err != nil || !ok {
				return "", false, err
			}
			switch {
			case i == 0:
				target = s
			case s != target:
				agreed = false
				if x.desc.before(target, s) {
					target = s
				}
			}
		}
		if agreed {
			return target, true, nil
		}
		if err := x.seek(target); err != nil {
			return "", false, err
		}
	}
}

func (x *intersection) next() error {
	if _, ok, err := x.head(); err != nil || !ok {
		return err
	}
	for _, c := range x.cs {
		if err := c.next(); err != nil {
			return err
		}
	}
	return nil
}

func (x *intersection) seek(suffix string) error {
	for _, c := range x.cs {
		if err := c.seek(suffix); err != nil {
			return err
		}
	}
	return nil
}

// terms says whether f filters on terms (name, project, tags, or the
// trigrams of a query_text): then agentCursor walks their indexes;
// otherwise it walks every agent.
func (f AgentFilter) terms() bool {
	return f.Name != "" || f.ProjectID != "" || len(f.Tags) > 0 || len(schema.Grams(f.QueryText)) > 0
}

// maxQueryGrams is how many of a query_text's trigrams a listing joins:
// the join reads about as many entries as its most selective index holds,
// and every agent it yields is checked against the whole query anyway.
const maxQueryGrams = 8

// agentCursor walks the agents a listing with f and p may return, in
// listing order between p's cursors (suffixes, "" for none): every agent
// the filter's terms select, or every agent when it has none.
func agentCursor(txn kv.Txn, f AgentFilter, after, before string, desc bool) cursor {
	term := func(kind, value string) cursor {
		return newIndexCursor(txn, string(schema.TermPrefix(schema.Term{Kind: kind, Value: value})), after, before, desc)
	}
	if !f.terms() {
		return newIndexCursor(txn, schema.AgentIndex.Prefix, after, before, desc)
	}
	all := &intersection{desc: order(desc)}
	if f.Name != "" {
		all.cs = append(all.cs, term(schema.TermName, f.Name))
	}
	if f.ProjectID != "" {
		all.cs = append(all.cs, term(schema.TermProject, f.ProjectID))
	}
	if grams := schema.Grams(f.QueryText); len(grams) > 0 {
		// An agent whose name holds the query has all its trigrams,
		// unless its name has too many to index (GramsOverflow).
		has := &intersection{desc: order(desc)}
		for _, g := range grams[:min(len(grams), maxQueryGrams)] {
			has.cs = append(has.cs, term(schema.TermGram, g))
		}
		all.cs = append(all.cs, &union{cs: []cursor{has, term(schema.TermGram, schema.GramsOverflow)}, desc: order(desc)})
	}
	if len(f.Tags) > 0 {
		tags := make([]cursor, len(f.Tags))
		for i, t := range f.Tags {
			tags[i] = term(schema.TermTag, t)
		}
		if f.MatchAllTags {
			all.cs = append(all.cs, tags...)
		} else {
			all.cs = append(all.cs, &union{cs: tags, desc: order(desc)})
		}
	}
	if len(all.cs) == 1 {
		return all.cs[0]
	}
	return all
}

// agentSuffix is the suffix of the index entries of the agent a page
// cursor names, or "" when there is no such agent (Letta ignores unknown
// cursors).
func agentSuffix(txn kv.Txn, id string) (string, error) {
	if id == "" || !letta.ValidID("agent", id) {
		return "", nil
	}
	a, err := schema.GetAgent(txn, id)
	if letta.KindOf(err) == letta.KindNotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return string(schema.IndexKey("", a.CreatedAt, a.ID)), nil
}

// eachAgent calls visit with each agent a listing with f and p returns,
// in order, until visit returns false.
func eachAgent(txn kv.Txn, f AgentFilter, p letta.Page, visit func(*schema.Agent) (bool, error)) error {
	after, err := agentSuffix(txn, p.After)
	if err != nil {
		return err
	}
	before, err := agentSuffix(txn, p.Before)
	if err != nil {
		return err
	}
	c := agentCursor(txn, f, after, before, p.Order == letta.Desc)
	for {
		s, ok, err := c.head()
		if err != nil || !ok {
			return err
		}
		a, err := schema.GetAgent(txn, schema.LastPart([]byte(s)))
		if err != nil {
			return schema.Dangling(err, "agent index entry %q", s)
		}
		if f.match(a) {
			if more, err := visit(a); err != nil || !more {
				return err
			}
		}
		if err := c.next(); err != nil {
			return err
		}
	}
}

// countAgents counts the agents a listing with f returns: from the count
// of all agents without a filter, from the count of the term (schema.TermTotal)
// with one name, project, tag or identity alone; otherwise from the term
// index entries with terms only, or by walking the listing.
func countAgents(txn kv.Txn, f AgentFilter) (int, error) {
	if f.QueryText == "" && f.IdentityID == "" && !f.terms() {
		return schema.Total(txn, schema.CountedAgents)
	}
	if t, ok := f.onlyTerm(); ok {
		return schema.TermTotal(txn, t)
	}
	n := 0
	if f.QueryText == "" && f.IdentityID == "" {
		c := agentCursor(txn, f, "", "", false)
		for {
			_, ok, err := c.head()
			if err != nil || !ok {
				return n, err
			}
			n++
			if err := c.next(); err != nil {
				return n, err
			}
		}
	}
	f, err := f.withMembers(txn)
	if err != nil {
		return 0, err
	}
	err = eachAgent(txn, f, letta.Page{Order: letta.Asc}, func(*schema.Agent) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// onlyTerm returns the one counted term f filters on, if it filters on
// nothing else.
func (f AgentFilter) onlyTerm() (schema.Term, bool) {
	var terms []schema.Term
	if f.Name != "" {
		terms = append(terms, schema.Term{Kind: schema.TermName, Value: f.Name})
	}
	if f.ProjectID != "" {
		terms = append(terms, schema.Term{Kind: schema.TermProject, Value: f.ProjectID})
	}
	if f.IdentityID != "" {
		terms = append(terms, schema.Term{Kind: schema.TermIdentity, Value: f.IdentityID})
	}
	for _, tag := range slices.Compact(slices.Sorted(slices.Values(f.Tags))) {
		terms = append(terms, schema.Term{Kind: schema.TermTag, Value: tag})
	}
	if len(terms) != 1 || f.QueryText != "" {
		return schema.Term{}, false
	}
	return terms[0], true
}
