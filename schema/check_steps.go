package schema

import (
	"maps"
	"slices"
)

// stepKeys is what Check read of steps.
type stepKeys struct {
	records map[string]*Step  // step id -> record (nil when damaged)
	entries map[string]string // run-step key -> step id ("" when damaged)
}

func (c *checker) addStep(f *Family, e Entry, p []string) {
	switch f {
	case Steps:
		c.steps.records[p[0]] = decodeInto[Step](c, e, "step")
	case RunSteps:
		c.steps.entries[string(e.Key)] = ""
		if !e.Damaged {
			c.steps.entries[string(e.Key)] = string(e.Value)
		}
	}
}

// checkSteps: each step belongs to an existing run of its agent and has
// exactly its entry among that run's steps, at its assistant message,
// which is a message of the run; each entry names such a step.
func (c *checker) checkSteps() {
	s := &c.steps
	for _, key := range slices.Sorted(maps.Keys(s.entries)) {
		id := s.entries[key]
		if id == "" {
			continue // damaged
		}
		r, ok := s.records[id]
		if !ok {
			c.report("", "entry %q names step %s, which has no record", key, id)
			continue
		}
		if r != nil && key != string(RunStepKey(r.RunID, r.Seq)) {
			c.report(r.AgentID, "entry %q names step %s, whose entry is %q", key, id, RunStepKey(r.RunID, r.Seq))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(s.records)) {
		st := s.records[id]
		if st == nil {
			continue
		}
		// A damaged entry ("") may have named it: only a missing entry, or
		// one naming another step, is wrong.
		if e, ok := s.entries[string(RunStepKey(st.RunID, st.Seq))]; !ok || e != "" && e != id {
			c.report(st.AgentID, "step %s has no entry among the steps of run %s", id, st.RunID)
		}
		run, ok := c.runs[st.RunID]
		switch {
		case !ok:
			c.report(st.AgentID, "step %s belongs to run %s, which has no record", id, st.RunID)
		case run != nil && run.AgentID != st.AgentID:
			c.report(st.AgentID, "step %s of agent %s belongs to run %s of agent %s", id, st.AgentID, st.RunID, run.AgentID)
		case run != nil && (st.Seq < run.FirstSeq || st.Seq > run.LastSeq):
			c.report(st.AgentID, "step %s's message %d lies outside the messages %d..%d of its run %s", id, st.Seq, run.FirstSeq, run.LastSeq, st.RunID)
		}
	}
}
