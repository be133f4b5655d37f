// Package memory is what an agent remembers: its memory blocks (labelled
// text, always in its context, shared between agents), its archival
// passages (stored apart, searched on demand) and the search of its recall
// memory (past messages).
//
// Every function here runs inside the caller's transaction, so an edit
// commits with whatever else the caller writes (a turn step commits a
// memory tool's edit with the tool call that made it), or not at all.
//
// Guarantees, whatever path writes (the API, a memory tool):
//   - A block never holds more characters than its limit, and an edit that
//     would break the limit is refused with a clear error, changing nothing.
//   - No agent has two attached blocks with one label: an attach, or a
//     relabel of a block attached to several agents, that would make two is
//     refused.
//   - Attachments are written on both sides at once (schema.Attach).
//   - Passages are numbered in insertion order per agent and located by id.
//   - A passage's vector is indexed (agent/vecindex) in the transaction
//     that stores it, and unindexed in the one that deletes it: an
//     acknowledged passage is searchable at once (the simulator's
//     archival-search checker).
package memory
