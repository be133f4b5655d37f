package agent_test

import (
	"cmp"
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
	st      *letta.AgentState
	hidden  bool
	project string
}

func (m modelAgent) matches(f agent.AgentFilter) bool {
	if m.hidden || f.Name != "" && m.st.Name != f.Name || f.ProjectID != "" && m.project != f.ProjectID ||
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

// Spec: filtered listings and counts, served by the term indexes, return
// exactly what filtering every agent returns, in order, page by page, as
// agents are created, renamed, retagged, moved, hidden and deleted. A
// query_text (a case-insensitive substring of the name) joins the indexes
// of its trigrams; a name with too many of them to index is still found.
func TestAgentFiltersMatchAFullScan(t *testing.T) {
	svc := newService(t, kv.NewDB(kv.NewMemEngine()), churn)
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
	agents := map[string]*modelAgent{}
	for i := range 1000 {
		switch r := rng.IntN(10); {
		case r < 6 || len(agents) == 0:
			name, project, hidden := names[rng.IntN(len(names))], projects[rng.IntN(len(projects))], rng.IntN(8) == 0
			req := letta.CreateAgentRequest{Name: &name, Tags: pickTags(), Hidden: &hidden}
			if project != "" {
				req.ProjectID = &project
			}
			st, err := svc.Agents.Create(ctx, req)
			if err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
			agents[st.ID] = &modelAgent{st: st, hidden: hidden, project: project}
		case r < 9:
			id := slices.Sorted(func(yield func(string) bool) {
				for id := range agents {
					yield(id)
				}
			})[rng.IntN(len(agents))]
			m := agents[id]
			name, project, hidden, newTags := names[rng.IntN(len(names))], projects[1+rng.IntN(2)], rng.IntN(8) == 0, pickTags()
			st, err := svc.Agents.Update(ctx, id, letta.UpdateAgentRequest{Name: &name, Tags: &newTags, ProjectID: &project, Hidden: &hidden})
			if err != nil {
				t.Fatalf("update %s: %v", id, err)
			}
			m.st, m.project, m.hidden = st, project, hidden
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
}
