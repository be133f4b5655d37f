package schema

import (
	"maps"
	"slices"
)

func (c *checker) addContextEntry(e Entry, owner string) {
	seq, err := SeqOf(e.Key)
	if err != nil {
		c.report("", "%v", err)
		return
	}
	if c.ctxEntries[owner] == nil {
		c.ctxEntries[owner] = map[uint64]string{}
	}
	c.ctxEntries[owner][seq] = string(e.Value) // "" when damaged
}

// checkContexts: each context (an agent's default conversation, each
// conversation) names as its system message a stored system message of its
// own, and as its summary a stored summary message of its own; it starts
// at most one past the agent's last message; its index entries name its own
// messages from its start on, but its system message (prompt) and
// summaries, and an indexed context has an entry for each of them (system
// inputs may lack theirs: see checkContextEntries).
func (c *checker) checkContexts() {
	defer c.checkContextEntries()
	for _, id := range slices.Sorted(maps.Keys(c.agents)) {
		if a := c.agents[id]; a != nil {
			c.checkContext(id, "", "agent "+id, a.Context, false)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.convs)) {
		if conv := c.convs[id]; conv != nil && c.agentExists(conv.AgentID) {
			c.checkContext(conv.AgentID, id, "conversation "+id, conv.Context, conv.ForkedFrom != "")
		}
	}
}

// checkContext checks one context; a forked one may hold (as its summary
// too) messages of the context it was forked from.
func (c *checker) checkContext(agentID, convID, owner string, ctx Context, forked bool) {
	msgs := c.messages[agentID]
	named := func(what, role, id string, seq uint64) {
		if id == "" {
			return
		}
		switch m, ok := msgs[seq]; {
		case !ok:
			c.report(agentID, "%s names message %d of agent %s as its %s, which is not stored", owner, seq, agentID, what)
		case m != nil && (m.ID != id || m.Role != role || m.ConversationID != convID && !(forked && what == "summary")):
			c.report(agentID, "%s names %s (message %d of agent %s) as its %s, but that is %s, a %s message of conversation %q",
				owner, id, seq, agentID, what, m.ID, m.Role, m.ConversationID)
		}
	}
	named("system message", RoleSystem, ctx.SystemID, ctx.SystemSeq)
	named("summary", RoleSummary, ctx.SummaryID, ctx.SummarySeq)
	if n := uint64(len(msgs)); ctx.Start > n+1 {
		c.report(agentID, "%s starts at message %d, but agent %s has %d messages", owner, ctx.Start, agentID, n)
	}
}

// contextOf returns the context of an owner (an agent or conversation id)
// and its agent, or ok false if the owner is gone.
func (c *checker) contextOf(owner string) (ctx *Context, agentID string, ok bool) {
	if a, found := c.agents[owner]; found && a != nil {
		return &a.Context, owner, true
	}
	if conv, found := c.convs[owner]; found && conv != nil && c.agentExists(conv.AgentID) {
		return &conv.Context, conv.AgentID, true
	}
	return nil, "", false
}

// forked reports whether owner is a forked conversation.
func (c *checker) forked(owner string) bool {
	conv := c.convs[owner]
	return conv != nil && conv.ForkedFrom != ""
}

func (c *checker) checkContextEntries() {
	for _, owner := range slices.Sorted(maps.Keys(c.ctxEntries)) {
		ctx, agentID, ok := c.contextOf(owner)
		_, damagedAgent := c.agents[owner]
		_, damagedConv := c.convs[owner]
		switch {
		case !ok && !damagedAgent && !damagedConv:
			c.report(owner, "context %s has index entries, but neither an agent nor a conversation has that id", owner)
			continue
		case !ok:
			continue // a damaged record
		}
		for _, seq := range slices.Sorted(maps.Keys(c.ctxEntries[owner])) {
			id := c.ctxEntries[owner][seq]
			switch m, stored := c.messages[agentID][seq]; {
			case !stored:
				c.report(agentID, "context %s lists message %d of agent %s, which is not stored", owner, seq, agentID)
			case m == nil || id == "":
			case m.ID != id || ContextOwner(m) != owner && !c.forked(owner) || m.ID == ctx.SystemID || m.Role == RoleSummary:
				c.report(agentID, "context %s lists %s as message %d of agent %s, which is %s, a %s message of context %s", owner, id, seq, agentID, m.ID, m.Role, ContextOwner(m))
			case seq < ctx.Start:
				c.report(agentID, "context %s lists message %d of agent %s, before its start %d", owner, seq, agentID, ctx.Start)
			}
		}
	}
	for _, agentID := range slices.Sorted(maps.Keys(c.messages)) {
		msgs := c.messages[agentID]
		for _, seq := range slices.Sorted(maps.Keys(msgs)) {
			m := msgs[seq]
			if m == nil || m.Role == RoleSummary || m.Role == RoleSystem {
				// A system-role input is indexed now, but stores
				// written before that was fixed hold such inputs
				// unindexed (out of context): allowed, not upgraded.
				continue
			}
			owner := ContextOwner(m)
			ctx, _, ok := c.contextOf(owner)
			if ok && ctx.Indexed && seq >= ctx.Start {
				if _, listed := c.ctxEntries[owner][seq]; !listed {
					c.report(agentID, "message %s (%d of agent %s) is in the context of %s but not in its index", m.ID, seq, agentID, owner)
				}
			}
		}
	}
}
