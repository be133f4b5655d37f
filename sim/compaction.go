package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The summary checker: compaction loses no message from a context unseen.
// Each summary the scripted model writes is noted with the transcript it
// was asked to summarise (llm.go). The audit reads each agent's default
// conversation and the ids in its context (AgentState.message_ids); then
// every user message of it is either still in context or in the
// transcript of a summary stored in it — never both (a summary covers
// only what left the context) and never neither (a message left the
// context without its summariser seeing it). Agents whose messages may
// have been reset (which empties the context on purpose) are left out.

// contextAudit is an agent's default conversation as the audit read it.
type contextAudit struct {
	status    int // of both reads: 200 when both answered
	hist      []msgJSON
	inContext map[string]bool
}

// contexts reads the default conversation and the context of each agent
// whose history the audit read.
func (r *auditReader) contexts(a *audit) map[string]*contextAudit {
	out := map[string]*contextAudit{}
	for _, id := range sortedKeys(a.agents) {
		if a.agents[id].status != 200 {
			continue
		}
		ca := &contextAudit{inContext: map[string]bool{}}
		out[id] = ca
		status, body, _ := r.get("/v1/agents/" + id)
		var st struct {
			MessageIDs []string `json:"message_ids"`
		}
		if status == 200 && json.Unmarshal(body, &st) != nil {
			status = 500
		}
		for _, m := range st.MessageIDs {
			ca.inContext[m] = true
		}
		read := r.historyIn(id, "default")
		ca.status, ca.hist = max(status, read.status), read.hist
	}
	return out
}

// summaryKey is the part of a summary message the scripted model wrote.
func summaryKey(summary string) string {
	if i := strings.LastIndex(summary, "summary "); i >= 0 {
		return summary[i:]
	}
	return ""
}

// checkSummaries: see above.
func (c *checker) checkSummaries(a *audit) {
	if a == nil {
		return
	}
	reset := map[string]bool{}
	for _, op := range c.ops {
		if op.Kind == (resetMessagesOp{}) && op.Out != failedOutcome {
			reset[op.Agent] = true
		}
	}
	c.sys.llm.mu.Lock()
	defer c.sys.llm.mu.Unlock()
	for _, id := range sortedKeys(a.contexts) {
		ca := a.contexts[id]
		if ca.status != 200 || reset[id] {
			continue
		}
		var transcripts []string
		for _, m := range ca.hist {
			if m.MessageType != mtSummary {
				continue
			}
			t, ok := c.sys.llm.transcripts[summaryKey(m.Summary)]
			if !ok {
				c.report("compaction", fmt.Sprintf("agent %s: summary message %s says %q, which the model never wrote", id, m.ID, clipString(m.Summary, 200)), c.historyOf(id, -1))
				continue
			}
			transcripts = append(transcripts, t)
		}
		c.count("contexts_compared", 1)
		c.count("summaries_compared", len(transcripts))
		for _, m := range ca.hist {
			if m.MessageType != mtUser || m.Otid == "" {
				continue
			}
			summarised := slices.ContainsFunc(transcripts, func(t string) bool { return strings.Contains(t, m.Otid) })
			switch in := ca.inContext[m.ID]; {
			case !in && !summarised:
				c.report("compaction", fmt.Sprintf("agent %s: user message %s (otid %s) left the context, and no stored summary's transcript holds it", id, m.ID, m.Otid), c.historyOf(id, -1))
			case in && summarised:
				c.report("compaction", fmt.Sprintf("agent %s: user message %s (otid %s) is in the context and was also summarised", id, m.ID, m.Otid), c.historyOf(id, -1))
			}
		}
	}
}
