package sim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Prefixes the planted bugs and the fault engine look for, from the one
// declaration of the storage layout.
var (
	agentStatePrefix  = string(schema.AgentKey(""))
	agentIndexPrefix  = schema.AgentIndex.Prefix
	blockPrefix       = schema.Blocks.Prefix
	attachmentPrefix  = schema.Attachments.Prefix
	blockAgentsPrefix = schema.BlockAgents.Prefix
	msgKeyPrefix      = schema.Messages.Prefix
	msgIDPrefix       = schema.MessageIDs.Prefix
	turnKeyPrefix     = schema.TurnKeys.Prefix
	epochPrefix       = actor.EpochPrefix
)

// unseal checks a value as kv.DB stores it and returns the value.
func unseal(key, stored []byte) ([]byte, bool) {
	v, err := kv.Unseal(key, stored)
	return v, err == nil
}

// checkInvariants reads the whole disk, at rest, and checks it against the
// storage schema (schema.Check): records, indexes and attachments agree,
// each agent's messages are whole, runs are closed, blocks within their
// limits. A partial effect of any operation shows up as a broken rule.
// Damaged values (injected corruption) are skipped. It returns the report,
// whose key counts say what the rules had to check.
func (s *system) checkInvariants(when string) schema.Report {
	rep := storageReport(s.disk)
	for _, p := range rep.Problems {
		s.violation("invariants", p.Object, "%s: %s", when, p.Message)
	}
	return rep
}

// storageReport checks a snapshot of the disk against the schema.
func storageReport(disk *kv.MemEngine) schema.Report {
	fail := func(format string, args ...any) schema.Report {
		return schema.Report{Problems: []schema.Problem{{Message: fmt.Sprintf(format, args...)}}}
	}
	snap, err := disk.NewSnapshot()
	if err != nil {
		return fail("cannot read the disk: %v", err)
	}
	defer snap.Close()
	kvs, err := snap.Scan(kv.Range{Start: []byte{0}}, 0, false)
	if err != nil {
		return fail("cannot scan the disk: %v", err)
	}
	entries := make([]schema.Entry, len(kvs))
	for i, p := range kvs {
		v, ok := unseal(p.Key, p.Value)
		entries[i] = schema.Entry{Key: p.Key, Value: v, Damaged: !ok}
	}
	return schema.Check(entries)
}

// checkFamiliesSeen asserts that the last storage check examined the keys
// of every family the audit shows must exist: a check that matches nothing
// (a family renamed apart from its checker, say) would pass vacuously.
func (s *system) checkFamiliesSeen(rep schema.Report, a *audit) {
	if a == nil {
		return
	}
	var want []*schema.Family
	for _, id := range sortedKeys(a.agents) {
		aa := a.agents[id]
		if aa.status != 200 {
			continue
		}
		want = append(want, schema.ActorStates, schema.AgentIndex, schema.AgentTerms, schema.Counts, schema.TermCounts)
		if len(aa.hist) > 0 {
			want = append(want, schema.Messages, schema.MessageIDs)
		}
		// A history holds its system message from the agent's create on;
		// a message of a run shows a turn, and every simulated turn's
		// message carries an otid. (A run in which no turn committed has
		// no runs at all.)
		if slices.ContainsFunc(aa.hist, func(m msgJSON) bool { return m.RunID != "" }) {
			want = append(want, schema.Runs, schema.AgentRuns, schema.RunIndex, schema.TurnKeys)
		}
	}
	for _, id := range sortedKeys(a.blocks) {
		if a.blocks[id].status == 200 {
			want = append(want, schema.Blocks, schema.BlockIndex)
		}
	}
	for _, id := range sortedKeys(a.repos) {
		if len(a.repos[id].commits) > 0 {
			want = append(want, schema.GitObjects, schema.GitRefs)
		}
	}
	// What the audit's listings show exists.
	shows := map[string][]*schema.Family{
		"/v1/conversations?agent_id=": {schema.Conversations, schema.AgentConversations},
		"/archival-memory":            {schema.Passages, schema.PassageIDs, schema.PassageCounts},
		"/core-memory/blocks":         {schema.Attachments, schema.BlockAgents},
	}
	for _, path := range sortedKeys(a.listings) {
		if len(a.listings[path].whole) == 0 {
			continue
		}
		for _, pattern := range sortedKeys(shows) {
			if strings.Contains(path, pattern) {
				want = append(want, shows[pattern]...)
			}
		}
	}
	for _, f := range want {
		if rep.Keys[f.Name] == 0 {
			s.violation("invariants", "", "the storage check at the end of the run saw no key of family %s (%s), which the audit shows must exist: its rules checked nothing", f.Name, f.Prefix)
			return
		}
	}
}
