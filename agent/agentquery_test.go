package agent_test

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// modelAgent is what the filters see of an agent.
type modelAgent struct {
	st         *letta.AgentState
	hidden     bool
	project    string
	identities map[string]bool
}

func (m modelAgent) matches(f agent.AgentFilter) bool {
	if m.hidden || f.Name != "" && m.st.Name != f.Name || f.ProjectID != "" && m.project != f.ProjectID ||
		f.IdentityID != "" && !m.identities[f.IdentityID] ||
		!strings.Contains(strings.ToLower(m.st.Name), strings.ToLower(f.QueryText)) {
		return false
	}
	if len(f.Tags) == 0 {
		return true
	}
	for _, t := range f.Tags {
		if slices.Contains(m.st.Tags, t) != f.MatchAllTags {
			return !f.MatchAllTags
		}
	}
	return f.MatchAllTags
}

// Spec: filtered listings and counts, served by the term indexes and the
// term counts, return exactly what filtering every agent returns, in
// order, page by page, as agents are created, renamed, retagged, moved,
// hidden, joined to identities and taken out of them (from either side)
// and deleted, and as an identity is deleted; the store then keeps every
// rule (schema.Check adds up each term's count). A query_text (a
// case-insensitive substring of the name) joins the indexes of its
// trigrams; a name with too many of them to index is still found.
func TestAgentFiltersMatchAFullScan(t *testing.T) {
	store := kv.NewDB(kv.NewMemEngine())
	svc := newService(t, store, churn)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(7, 7))
	long := "abcdefghijklmnopqrstuvwxyz0123456789αβγδεζηθικλμνξοπρστυφχψωбвгдежз Anna" // more than MaxNameGrams trigrams
	names := []string{"ann", "bob", "cy", "Joanna Smith", "ÄNNCHEN", long}
	tags := []string{"red", "green", "blue", "grey"}
	projects := []string{"", "p1", "p2"}
	pickTags := func() []string {
		var out []string
		for _, t := range tags {
			if rng.IntN(3) == 0 {
				out = append(out, t)
			}
		}
		return out
	}
	var identities []string
	for i := range 3 {
		key, name, kind := fmt.Sprint("key-", i), fmt.Sprint("identity ", i), "user"
		id, err := svc.Identities.Create(ctx, letta.IdentityRequest{IdentifierKey: &key, Name: &name, IdentityType: &kind})
		if err != nil {
			t.Fatal(err)
		}
		identities = append(identities, id.ID)
	}
	pickIdentities := func() ([]string, map[string]bool) {
		out, set := []string{}, map[string]bool{}
		for _, id := range identities {
			if rng.IntN(3) == 0 {
				out, set[id] = append(out, id), true
			}
		}
		return out, set
	}
	agents := map[string]*modelAgent{}
	randomAgent := func() *modelAgent {
		return agents[slices.Sorted(maps.Keys(agents))[rng.IntN(len(agents))]]
	}
	for i := range 1000 {
		switch r := rng.IntN(12); {
		case r < 6 || len(agents) == 0:
			name, project, hidden := names[rng.IntN(len(names))], projects[rng.IntN(len(projects))], rng.IntN(8) == 0
			ids, set := pickIdentities()
			req := letta.CreateAgentRequest{Name: &name, Tags: pickTags(), Hidden: &hidden, IdentityIDs: ids}
			if project != "" {
				req.ProjectID = &project
			}
			st, err := svc.Agents.Create(ctx, req)
			if err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
			agents[st.ID] = &modelAgent{st: st, hidden: hidden, project: project, identities: set}
		case r < 9:
			m := randomAgent()
			name, project, hidden, newTags := names[rng.IntN(len(names))], projects[1+rng.IntN(2)], rng.IntN(8) == 0, pickTags()
			req := letta.UpdateAgentRequest{Name: &name, Tags: &newTags, ProjectID: &project, Hidden: &hidden}
			var set map[string]bool
			if rng.IntN(2) == 0 {
				var ids []string
				ids, set = pickIdentities()
				req.IdentityIDs = &ids
			}
			st, err := svc.Agents.Update(ctx, m.st.ID, req)
			if err != nil {
				t.Fatalf("update %s: %v", m.st.ID, err)
			}
			m.st, m.project, m.hidden = st, project, hidden
			if set != nil {
				m.identities = set
			}
		case r < 11:
			// An agent joins or leaves an identity, from the agent's side or
			// (joining) from the identity's.
			m, id := randomAgent(), identities[rng.IntN(len(identities))]
			var err error
			switch rng.IntN(3) {
			case 0:
				_, err = svc.Agents.AttachIdentity(ctx, m.st.ID, id)
				m.identities[id] = true
			case 1:
				_, err = svc.Agents.DetachIdentity(ctx, m.st.ID, id)
				delete(m.identities, id)
			default:
				_, err = svc.Identities.Update(ctx, id, letta.IdentityRequest{AgentIDs: &[]string{m.st.ID}})
				m.identities[id] = true
			}
			if err != nil {
				t.Fatalf("identity %s of %s: %v", id, m.st.ID, err)
			}
		default:
			for id := range agents {
				if err := svc.Agents.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
				delete(agents, id)
				break
			}
		}
	}
	// An identity deleted takes its links, and its count, with it.
	gone := identities[0]
	if err := svc.Identities.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	for _, m := range agents {
		delete(m.identities, gone)
	}
	all := make([]*modelAgent, 0, len(agents))
	for _, m := range agents {
		all = append(all, m)
	}
	slices.SortFunc(all, func(x, y *modelAgent) int {
		return cmp.Or(x.st.CreatedAt.Time.Compare(y.st.CreatedAt.Time), cmp.Compare(x.st.ID, y.st.ID))
	})
	var filters []agent.AgentFilter
	for _, name := range append([]string{""}, names[:3]...) {
		for _, project := range projects {
			for _, ts := range [][]string{nil, {"red"}, {"red", "blue"}, {"green", "grey", "blue"}, {"none"}} {
				for _, matchAll := range []bool{false, true} {
					filters = append(filters, agent.AgentFilter{Name: name, ProjectID: project, Tags: ts, MatchAllTags: matchAll})
				}
			}
		}
	}
	for _, id := range identities {
		filters = append(filters, agent.AgentFilter{IdentityID: id}, agent.AgentFilter{IdentityID: id, Tags: []string{"red"}})
	}
	for _, q := range []string{"ann", "AN", "nna", "smi", "änn", "ωбв", "nopqrst", "zzz", "ann s"} {
		for _, ts := range [][]string{nil, {"red"}} {
			filters = append(filters, agent.AgentFilter{QueryText: q, Tags: ts})
		}
	}
	for _, f := range filters {
		var want []string
		for _, m := range all {
			if m.matches(f) {
				want = append(want, m.st.ID)
			}
		}
		n, err := svc.Agents.Count(ctx, f)
		if err != nil || n != len(want) {
			t.Fatalf("count %+v = %d, %v; want %d", f, n, err, len(want))
		}
		if len(want) > 0 {
			k := rng.IntN(len(want))
			page, err := svc.Agents.List(ctx, f, letta.Page{Before: want[k], Limit: agent.MaxListLimit, Order: letta.Asc})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range page {
				got = append(got, st.ID)
			}
			if !slices.Equal(got, want[:k]) {
				t.Fatalf("list %+v before %s:\n got %v\nwant %v", f, want[k], got, want[:k])
			}
		}
		for _, order := range []letta.Order{letta.Asc, letta.Desc} {
			wantOrdered := slices.Clone(want)
			if order == letta.Desc {
				slices.Reverse(wantOrdered)
			}
			var got []string
			p := letta.Page{Limit: 1 + rng.IntN(7), Order: order}
			for {
				page, err := svc.Agents.List(ctx, f, p)
				if err != nil {
					t.Fatal(err)
				}
				for _, st := range page {
					got = append(got, st.ID)
				}
				if len(page) < p.Limit {
					break
				}
				p.After = page[len(page)-1].ID
			}
			if !slices.Equal(got, wantOrdered) {
				t.Fatalf("list %+v %s, by pages of %d:\n got %v\nwant %v", f, order, p.Limit, got, wantOrdered)
			}
		}
	}
	if len(all) < 50 {
		t.Fatalf("only %d agents at the end: the workload is too thin to test filters", len(all))
	}
	checkStore(t, store)
}
