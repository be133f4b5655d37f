package schema

import (
	"maps"
	"slices"
)

// checkContexts: each context (an agent's default conversation, each
// conversation) names as its system message a stored system message of its
// own, and as its summary a stored summary message of its own; it starts
// at most one past the agent's last message.
func (c *checker) checkContexts() {
	for _, id := range slices.Sorted(maps.Keys(c.agents)) {
		if a := c.agents[id]; a != nil {
			c.checkContext(id, "", "agent "+id, a.Context)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.convs)) {
		if conv := c.convs[id]; conv != nil && c.agentExists(conv.AgentID) {
			c.checkContext(conv.AgentID, id, "conversation "+id, conv.Context)
		}
	}
}

func (c *checker) checkContext(agentID, convID, owner string, ctx Context) {
	msgs := c.messages[agentID]
	named := func(what, role, id string, seq uint64) {
		if id == "" {
			return
		}
		switch m, ok := msgs[seq]; {
		case !ok:
			c.report(agentID, "%s names message %d of agent %s as its %s, which is not stored", owner, seq, agentID, what)
		case m != nil && (m.ID != id || m.Role != role || m.ConversationID != convID):
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
