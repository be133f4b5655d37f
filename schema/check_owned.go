package schema

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// checkMessages: each agent's messages are numbered from 1 without a gap,
// say their own agent and number, are located by their id index, lie in
// their run's range, and every tool call the server runs has its one result
// right after its message.
func (c *checker) checkMessages() {
	for _, agentID := range slices.Sorted(maps.Keys(c.messages)) {
		msgs := c.messages[agentID]
		if !c.agentExists(agentID) {
			continue // checkOrphans reports it
		}
		n := uint64(len(msgs))
		for seq := uint64(1); seq <= n; seq++ {
			if _, ok := msgs[seq]; !ok {
				c.report(agentID, "agent %s has %d messages but none numbered %d: its numbering has a gap", agentID, n, seq)
				break
			}
		}
		damaged := false
		for seq := uint64(1); seq <= n; seq++ {
			if m := msgs[seq]; m != nil {
				c.checkMessage(agentID, seq, m)
			} else {
				damaged = true
			}
		}
		if !damaged {
			c.checkToolResults(agentID, msgs)
		}
	}
}

func (c *checker) checkMessage(agentID string, seq uint64, m *Message) {
	where := string(messageLocation(agentID, seq))
	switch loc, ok := c.messageIDs[m.ID]; {
	case m.AgentID != agentID || m.Seq != seq:
		c.report(agentID, "message %s is stored as %s but says agent %s, number %d", m.ID, where, m.AgentID, m.Seq)
	case ok && loc == "": // a damaged index entry
	case loc != where:
		c.report(agentID, "message %s is stored as %s, but its id index says %q", m.ID, where, loc)
	}
	if m.RunID == "" {
		return
	}
	switch r, ok := c.runs[m.RunID]; {
	case !ok:
		c.report(agentID, "message %s (%s) belongs to run %s, which has no record", m.ID, where, m.RunID)
	case r != nil && (r.AgentID != agentID || seq < r.FirstSeq || seq > r.LastSeq):
		c.report(agentID, "message %s (%s) of run %s lies outside the run's messages %d..%d of agent %s", m.ID, where, m.RunID, r.FirstSeq, r.LastSeq, r.AgentID)
	}
}

// checkToolResults: a step commits its tool calls with their results, so
// the results of an assistant message's calls are the tool messages right
// after it, one per call the server runs, and nothing else answers calls.
func (c *checker) checkToolResults(agentID string, msgs map[uint64]*Message) {
	n := uint64(len(msgs))
	for seq := uint64(1); seq <= n; seq++ {
		m := msgs[seq]
		switch m.Role {
		case RoleTool:
			c.report(agentID, "tool result %s (message %d of agent %s, call %s) follows no assistant message", m.ID, seq, agentID, m.ToolCallID)
		case RoleAssistant:
			answered := map[string]int{}
			next := seq + 1
			for ; next <= n && msgs[next].Role == RoleTool; next++ {
				r := msgs[next]
				if !slices.ContainsFunc(m.ToolCalls, func(tc ToolCall) bool { return tc.ID == r.ToolCallID }) {
					c.report(agentID, "tool result %s (message %d of agent %s) answers call %s, which assistant message %s (message %d) did not make", r.ID, next, agentID, r.ToolCallID, m.ID, seq)
				}
				answered[r.ToolCallID]++
			}
			for _, tc := range m.ToolCalls {
				a := answered[tc.ID]
				if tc.Deferred && a == 0 && next > n {
					continue // running, or cut off: the next turn answers it
				}
				if !tc.Waiting() && a != 1 {
					c.report(agentID, "tool call %s of assistant message %s (message %d of agent %s) has %d results after it: a step was committed in pieces", tc.ID, m.ID, seq, agentID, a)
				}
			}
			seq = next - 1
		}
	}
}

// checkMessageIndexes: every message-id entry and conversation index entry
// names a stored message (of that conversation).
func (c *checker) checkMessageIndexes() {
	for _, id := range slices.Sorted(maps.Keys(c.messageIDs)) {
		loc := c.messageIDs[id]
		if loc == "" {
			continue
		}
		agentID, seq, err := parseMessageLocation([]byte(loc))
		if err != nil {
			c.report("", "the id index of message %s: %v", id, err)
			continue
		}
		switch m, ok := c.messages[agentID][seq]; {
		case !ok:
			c.report(agentID, "the id index names message %s as %s, which is not stored", id, loc)
		case m != nil && m.ID != id:
			c.report(agentID, "the id index names message %s as %s, which is message %s", id, loc, m.ID)
		}
	}
	for _, convID := range slices.Sorted(maps.Keys(c.convMessages)) {
		conv, ok := c.convs[convID]
		if !ok {
			c.report("", "conversation %s has indexed messages but no record", convID)
			continue
		}
		if conv == nil {
			continue
		}
		for _, seq := range c.convMessages[convID] {
			switch m, ok := c.messages[conv.AgentID][seq]; {
			case !ok:
				c.report(conv.AgentID, "conversation %s indexes message %d of agent %s, which is not stored", convID, seq, conv.AgentID)
			case m != nil && m.ConversationID != convID:
				c.report(conv.AgentID, "conversation %s indexes message %s (number %d of agent %s), which belongs to conversation %q", convID, m.ID, seq, conv.AgentID, m.ConversationID)
			}
		}
	}
}

// checkRuns: runs are indexed by creation time and by agent; at most one
// run of an agent is unfinished, and it is the agent's turn in progress.
func (c *checker) checkRuns() {
	indexed := map[string]bool{}
	for _, agentID := range slices.Sorted(maps.Keys(c.agentRuns)) {
		for _, runID := range c.agentRuns[agentID] {
			indexed[runID] = true
			if r, ok := c.runs[runID]; !ok || r != nil && r.AgentID != agentID {
				c.report(agentID, "agent %s lists run %s, which is not a run of it", agentID, runID)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.runIndex)) {
		if _, ok := c.runs[id]; !ok {
			c.report("", "index entry %q names run %s, which has no record", c.runIndex[id], id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.runs)) {
		r := c.runs[id]
		var created time.Time
		if r != nil {
			created = r.CreatedAt
		}
		c.checkIndexed("run", id, r != nil, created, RunIndex, c.runIndex)
		if r == nil {
			continue
		}
		if !indexed[id] {
			c.report(r.AgentID, "run %s is not listed among the runs of agent %s", id, r.AgentID)
		}
		if active, ok := c.active[r.AgentID]; !r.Finished() && active != id && !(ok && active == "") {
			c.report(r.AgentID, "run %s of agent %s is %s, but the agent's turn in progress is %q: an interrupted run was never closed", id, r.AgentID, r.Status, c.active[r.AgentID])
		}
	}
	for _, agentID := range slices.Sorted(maps.Keys(c.active)) {
		runID := c.active[agentID]
		if runID == "" {
			continue // damaged
		}
		switch r, ok := c.runs[runID]; {
		case !ok:
			c.report(agentID, "the turn in progress of agent %s is run %s, which has no record", agentID, runID)
		case r != nil && (r.AgentID != agentID || r.Finished()):
			c.report(agentID, "the turn in progress of agent %s is run %s, which is %s (agent %s)", agentID, runID, r.Status, r.AgentID)
		}
	}
}

// checkTurnKeys: every answered otid or key names a run of its agent.
func (c *checker) checkTurnKeys() {
	for _, agentID := range slices.Sorted(maps.Keys(c.turnKeys)) {
		for _, runID := range c.turnKeys[agentID] {
			switch r, ok := c.runs[runID]; {
			case !ok:
				c.report(agentID, "an answered otid or key of agent %s names run %s, which has no record", agentID, runID)
			case r != nil && r.AgentID != agentID:
				c.report(agentID, "an answered otid or key of agent %s names run %s of agent %s", agentID, runID, r.AgentID)
			}
		}
	}
}

// checkConversations: each conversation is indexed once among its agent's,
// at its creation time, and each index entry names one of the agent's.
func (c *checker) checkConversations() {
	indexed := map[string]string{}
	for _, agentID := range slices.Sorted(maps.Keys(c.agentConvs)) {
		for _, key := range c.agentConvs[agentID] {
			id := LastPart([]byte(key))
			if old, dup := indexed[id]; dup {
				c.report(agentID, "conversation %s has two index entries: %q and %q", id, old, key)
			}
			indexed[id] = key
			if conv, ok := c.convs[id]; !ok || conv != nil && conv.AgentID != agentID {
				c.report(agentID, "index entry %q names conversation %s, which is not one of agent %s", key, id, agentID)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.convs)) {
		conv := c.convs[id]
		if conv == nil {
			continue
		}
		want := string(IndexKey(AgentConversationsOf(conv.AgentID), conv.CreatedAt, id))
		if indexed[id] != want {
			c.report(conv.AgentID, "conversation %s: index entry %q, want %q", id, indexed[id], want)
		}
		if conv.LastRunID != "" {
			if r, ok := c.runs[conv.LastRunID]; !ok || r != nil && r.ConversationID != id {
				c.report(conv.AgentID, "conversation %s names run %s as its last, which is not a run of it", id, conv.LastRunID)
			}
		}
	}
}

// checkPassages: each passage is stored where its record says and located
// by its id index, and each id entry names a stored passage.
func (c *checker) checkPassages() {
	for _, key := range slices.Sorted(maps.Keys(c.passages)) {
		p := c.passages[key]
		if p == nil {
			continue
		}
		if want := string(PassageKey(p.Owner(), p.Seq, p.ID)); key != want {
			c.report(p.AgentID, "passage %s is stored at %q, but its record says %q", p.ID, key, want)
		}
		if loc, ok := c.passageIDs[p.ID]; !ok || loc != "" && loc != key {
			c.report(p.AgentID, "passage %s is stored at %q, but its id index says %q", p.ID, key, loc)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.passageIDs)) {
		if loc := c.passageIDs[id]; loc != "" {
			if _, ok := c.passages[loc]; !ok {
				c.report("", "the id index names passage %s at %q, which is not stored", id, loc)
			}
		}
	}
}

// checkOrphans: nothing an agent owns outlives it.
func (c *checker) checkOrphans() {
	owned := map[string][]string{} // agent -> what of it remains
	note := func(agentID, what string) {
		if !c.agentExists(agentID) && !slices.Contains(owned[agentID], what) {
			owned[agentID] = append(owned[agentID], what)
		}
	}
	for agentID := range c.messages {
		note(agentID, "messages")
	}
	for agentID := range c.turnKeys {
		note(agentID, "answered otids and keys")
	}
	for agentID := range c.active {
		note(agentID, "its turn in progress")
	}
	for agentID := range c.agentRuns {
		note(agentID, "runs")
	}
	for _, r := range c.runs {
		if r != nil {
			note(r.AgentID, "runs")
		}
	}
	for agentID := range c.agentConvs {
		note(agentID, "conversations")
	}
	for _, conv := range c.convs {
		if conv != nil {
			note(conv.AgentID, "conversations")
		}
	}
	for _, p := range c.passages {
		if p != nil && p.ArchiveID == "" && p.FolderID == "" {
			note(p.AgentID, "passages")
		}
	}
	for _, agentID := range slices.Sorted(maps.Keys(owned)) {
		what := owned[agentID]
		slices.Sort(what)
		c.report(agentID, "agent %s has no record, but its %s remain", agentID, strings.Join(what, ", "))
	}
}
