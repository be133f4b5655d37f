package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The listing checker's comparisons of the whole listings the audit read
// (walk.go) with the model and with each other:
//
//   - each listing holds what the model says must exist (an acknowledged
//     create that no delete may have undone: agents, blocks, an agent's
//     conversations and passages, the runs of acknowledged message sends,
//     listed with their agent and among all runs) and nothing it says is
//     gone (an acknowledged delete: of an agent, with its runs; of a block;
//     of a passage);
//   - the agents and blocks listed are those the audit found one by one;
//   - an agent's blocks listing holds the blocks the agents listing shows
//     it with, and a block's agents are the agents listed with it;
//   - an agent's passages are listed in the order they were inserted, as
//     far as the clients can tell (one acknowledged before another began).

// presence is what the model says of the objects of one listing: those
// that must be listed and those that must not, each with the operation
// that says so.
type presence struct {
	must, mustNot map[string]*opRecord
}

func newPresence() presence {
	return presence{must: map[string]*opRecord{}, mustNot: map[string]*opRecord{}}
}

// listingModel is what the operations say of the listings beyond agents
// and blocks (whose model objects say it): filled by operation.model.
type listingModel struct {
	conversations map[string]*opRecord // id -> its acknowledged create
	passages      map[string]*opRecord // id -> its acknowledged create
	passageGone   map[string]*opRecord // id -> its acknowledged delete
	passageMayGo  map[string]bool      // a delete may have removed it
}

func newListingModel() *listingModel {
	return &listingModel{conversations: map[string]*opRecord{}, passages: map[string]*opRecord{},
		passageGone: map[string]*opRecord{}, passageMayGo: map[string]bool{}}
}

// checkListings reports what the audit's walks found, and checks the whole
// listings against the model and against each other.
func (c *checker) checkListings() {
	a := c.msg.audit
	if a == nil {
		return
	}
	for _, path := range sortedKeys(a.listings) {
		listing := a.listings[path]
		c.count("listings_walked", 1)
		for _, p := range listing.problems {
			c.report("listing", fmt.Sprintf("%s, GET %s: %s", listing.kind.name, listing.path, p), c.historyOf(listing.object, -1))
		}
		for _, p := range listing.shortPages {
			c.report("listing", fmt.Sprintf("%s, GET %s: a page short of its limit: %s", listing.kind.name, listing.path, p), c.historyOf(listing.object, -1))
		}
	}
	agents, blocks := c.objectPresence("agent "), c.objectPresence("block ")
	c.checkPresence(a.listings["/v1/agents"], agents)
	c.checkAgentFilters(a)
	c.checkPresence(a.listings["/v1/blocks"], blocks)
	c.checkAudited(a)
	runs, gone := c.runPresence(agents)
	c.checkPresence(a.listings["/v1/runs"], presence{must: flatten(runs), mustNot: gone})
	for _, agentID := range sortedKeys(agents.must) {
		c.checkPresence(a.listings["/v1/runs?agent_id="+agentID], presence{must: runs[agentID]})
		c.checkPresence(a.listings["/v1/conversations?agent_id="+agentID], presence{must: c.listed.conversationsOf(agentID)})
		passages := c.listed.passagesOf(agentID)
		c.checkPresence(a.listings["/v1/agents/"+agentID+"/archival-memory"], passages)
		c.checkInsertionOrder(a.listings["/v1/agents/"+agentID+"/archival-memory"], passages.must)
		c.checkPassageSearches(a, agentID, passages.must)
	}
	c.checkAttachments(a)
}

// objectPresence is what the model's operations on the objects whose names
// start with prefix ("agent " or "block ") say must be listed: those with
// an acknowledged create and no delete that may have happened; and what
// must not: those with an acknowledged delete.
func (c *checker) objectPresence(prefix string) presence {
	p := newPresence()
	for obj, modelOps := range c.objects {
		id, ok := strings.CutPrefix(obj, prefix)
		if !ok {
			continue
		}
		var created *opRecord
		mayDelete := false
		for _, m := range modelOps {
			switch {
			case isCreate(m) && m.result == resultOK:
				created = m.op
			case isDelete(m) && m.result == resultOK:
				p.mustNot[id] = m.op
				mayDelete = true
			case isDelete(m) && m.result == resultUnknown:
				mayDelete = true
			}
		}
		if created != nil && !mayDelete {
			p.must[id] = created
		}
	}
	return p
}

// runPresence returns the runs that must be listed, by agent: those of
// every acknowledged message send to an agent that must exist; and those
// that must not be listed among all runs: every run of an agent whose
// delete was acknowledged.
func (c *checker) runPresence(agents presence) (must map[string]map[string]*opRecord, mustNot map[string]*opRecord) {
	must, mustNot = map[string]map[string]*opRecord{}, map[string]*opRecord{}
	for _, first := range c.msg.sends {
		for _, op := range append([]*opRecord{first}, first.Retries...) {
			r := op.Send
			if r == nil || r.RunID == "" {
				continue
			}
			if del := agents.mustNot[first.Agent]; del != nil {
				mustNot[r.RunID] = del
			}
			if _, ok := agents.must[first.Agent]; ok && op.Out == okOutcome && r.Done {
				if must[first.Agent] == nil {
					must[first.Agent] = map[string]*opRecord{}
				}
				must[first.Agent][r.RunID] = op
			}
		}
	}
	return must, mustNot
}

func flatten(byAgent map[string]map[string]*opRecord) map[string]*opRecord {
	out := map[string]*opRecord{}
	for _, m := range byAgent {
		for id, op := range m {
			out[id] = op
		}
	}
	return out
}

func (m *listingModel) conversationsOf(agentID string) map[string]*opRecord {
	out := map[string]*opRecord{}
	for id, op := range m.conversations {
		if op.Agent == agentID {
			out[id] = op
		}
	}
	return out
}

func (m *listingModel) passagesOf(agentID string) presence {
	p := newPresence()
	for id, op := range m.passages {
		if op.Agent == agentID && !m.passageMayGo[id] {
			p.must[id] = op
		}
	}
	for id, op := range m.passageGone {
		if op.Agent == agentID {
			p.mustNot[id] = op
		}
	}
	return p
}

// checkPresence checks listing's whole listing against p.
func (c *checker) checkPresence(listing *listingAudit, p presence) {
	if listing == nil || listing.whole == nil {
		return // not read whole: the walk reported why, or the agent is not listed
	}
	listed := map[string]bool{}
	for _, it := range listing.whole {
		listed[it.id] = true
	}
	for _, id := range sortedKeys(p.must) {
		c.count("listed_as_modelled", 1)
		if op := p.must[id]; !listed[id] {
			c.report("listing", fmt.Sprintf("%s, GET %s: lacks %s, which op #%d made and was acknowledged, and nothing may have deleted", listing.kind.name, listing.path, id, op.ID),
				c.historyOf(id, op.ID))
			return
		}
	}
	for _, id := range sortedKeys(p.mustNot) {
		if op := p.mustNot[id]; listed[id] {
			c.report("listing", fmt.Sprintf("%s, GET %s: lists %s, which op #%d deleted and was acknowledged", listing.kind.name, listing.path, id, op.ID),
				c.historyOf(id, op.ID))
			return
		}
	}
}

// checkAgentFilters: each listing of agents by tag is the whole listing's
// agents shown with the tag, in the same order; the count of agents is the
// whole listing's length and the count by a tag is how many it shows with
// the tag (the term indexes and counts agree with the records).
func (c *checker) checkAgentFilters(a *audit) {
	whole := a.listings["/v1/agents"]
	if whole == nil || whole.whole == nil {
		return
	}
	if a.agentCount >= 0 && a.agentCount != len(whole.whole) {
		c.report("listing", fmt.Sprintf("GET /v1/agents/count answered %d, but GET /v1/agents lists %d agents", a.agentCount, len(whole.whole)), "")
	}
	for _, t := range agentTags {
		byTag := a.listings["/v1/agents?tags="+t]
		if byTag == nil || byTag.whole == nil {
			continue
		}
		var want, got []string
		for _, it := range whole.whole {
			var shown agentJSON
			if json.Unmarshal([]byte(it.raw), &shown) == nil && slices.Contains(shown.Tags, t) {
				want = append(want, it.id)
			}
		}
		for _, it := range byTag.whole {
			got = append(got, it.id)
		}
		c.count("agents_filtered_by_tag", len(got))
		if !slices.Equal(got, want) {
			c.report("listing", fmt.Sprintf("agents, GET %s lists %v; the agents GET /v1/agents shows with tag %q are %v", byTag.path, got, t, want), "")
		}
		if n, ok := a.tagCounts[t]; ok && n >= 0 && n != len(want) {
			c.report("listing", fmt.Sprintf("GET /v1/agents/count?tags=%s answered %d, but GET /v1/agents shows %d agents with the tag", t, n, len(want)), "")
		}
	}
}

// checkAudited: the agents and blocks listed are those the audit found one
// by one.
func (c *checker) checkAudited(a *audit) {
	check := func(listing *listingAudit, statusOf func(id string) int, ids []string) {
		if listing == nil || listing.whole == nil {
			return
		}
		listed := map[string]bool{}
		for _, it := range listing.whole {
			listed[it.id] = true
		}
		for _, id := range ids {
			if status := statusOf(id); status == 200 && !listed[id] || status == 404 && listed[id] {
				c.report("listing", fmt.Sprintf("%s, GET %s: listed is %v for %s, which the audit read with status %d", listing.kind.name, listing.path, listed[id], id, status), c.historyOf(id, -1))
				return
			}
		}
	}
	check(a.listings["/v1/agents"], func(id string) int { return a.agents[id].status }, sortedKeys(a.agents))
	check(a.listings["/v1/blocks"], func(id string) int { return a.blocks[id].status }, sortedKeys(a.blocks))
}

// checkAttachments: an agent's blocks listing holds the blocks the agents
// listing shows it with, and each block's agents listing the agents shown
// with it.
func (c *checker) checkAttachments(a *audit) {
	agents := a.listings["/v1/agents"]
	if agents == nil || agents.whole == nil {
		return
	}
	agentsOf := map[string][]string{} // block -> agents shown with it
	for _, it := range agents.whole {
		var shown agentJSON
		if err := json.Unmarshal([]byte(it.raw), &shown); err != nil {
			c.report("listing", fmt.Sprintf("agents, GET %s: agent %s does not parse: %v", agents.path, it.id, err), "")
			return
		}
		for _, b := range shown.blockIDs() {
			agentsOf[b] = append(agentsOf[b], it.id)
		}
		c.checkSameIDs(a.listings["/v1/agents/"+it.id+"/core-memory/blocks"], shown.blockIDs(), "the agents listing shows it with")
	}
	for _, path := range sortedKeys(a.listings) {
		if listing := a.listings[path]; listing.kind == blockAgentsListing {
			c.checkSameIDs(listing, agentsOf[listing.object], "the agents listing shows with it")
		}
	}
}

// checkSameIDs checks that listing's whole listing holds want, in any order.
func (c *checker) checkSameIDs(listing *listingAudit, want []string, what string) {
	if listing == nil || listing.whole == nil {
		return
	}
	got := ids(listing.whole)
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	c.count("attachments_compared", 1)
	if !slices.Equal(got, want) {
		c.report("listing", fmt.Sprintf("%s, GET %s: lists %v, not %v, which %s", listing.kind.name, listing.path, got, want, what), c.historyOf(listing.object, -1))
	}
}

// checkInsertionOrder: passages that clients created one after the other
// (the first acknowledged before the second was sent) are listed in that
// order, ascending.
func (c *checker) checkInsertionOrder(listing *listingAudit, created map[string]*opRecord) {
	if listing == nil || listing.whole == nil {
		return
	}
	at := map[string]int{}
	for i, it := range listing.whole {
		at[it.id] = i
	}
	for _, p := range sortedKeys(created) {
		for _, q := range sortedKeys(created) {
			pAt, pListed := at[p]
			qAt, qListed := at[q]
			if pListed && qListed && created[p].Ret < created[q].Call && pAt > qAt {
				c.report("listing", fmt.Sprintf("%s, GET %s: lists %s (made by op #%d) after %s (made by op #%d, sent after the first was acknowledged)",
					listing.kind.name, listing.path, p, created[p].ID, q, created[q].ID), c.historyOf(listing.object, created[q].ID))
				return
			}
		}
	}
}
