// Package agent is Kelpie's agent service: the surfaces the API serves
// (Agents, Blocks, Conversations, Messages, Runs, Steps, Archival, Tools,
// Models, Identities, Tags, Groups, Archives, Folders, Batches),
// each over the actor runtime and the storage layout of package schema.
// The agent loop (package loop), tools (tool), memory (memory), message
// rendering (message) and prompts (prompt) are rooms of their own below it.
//
// Guarantees, on top of the runtime's:
//   - Every mutation is one actor invocation, so it is committed before it
//     returns, atomically with every index and attachment it touches.
//     Agents.Create returns the state that was committed: there is no
//     window in which a created agent cannot be read. Two requests span
//     several agents' actors, each step committed in its own: deleting a
//     main agent deletes its sleep-time agents first, then itself (a crash
//     between leaves it without its group; a retried delete finishes), and
//     a message batch starts each agent's run, then commits the batch with
//     each run, or why it did not start (a crash between leaves the runs
//     started untracked). A batch's callback is called by the process
//     that created it once its runs end: a crash before loses it.
//   - Reads go straight to storage in one snapshot, so they never wait
//     behind an agent's queue and always see every acknowledged write.
//   - The agent index and the block attachments change in the same
//     transactions as the records they describe: a listed agent exists, an
//     existing agent is listed, an attached block exists (schema.Check).
//   - Requests are validated before anything is written; a rejected request
//     changes nothing.
//   - A mutation carrying an idempotency key (WithIdempotencyKey) is applied
//     at most once per key; a retry gets the first answer.
//   - An agent file is imported in one transaction (Agents.Import): its
//     agents, blocks, tools, messages, groups, folders, files and MCP
//     servers all exist, or none does.
//   - Every error a client can act on is a *letta.Error; KindOf also
//     classifies the runtime's and storage's errors (busy, conflict,
//     shutting down, ...), so callers need not know those layers.
//
// Each context (an agent's default conversation, each conversation) is
// stored as Letta stores it: a system message, a summary, the messages in
// it; compaction and reset move messages out of a context, never out of
// storage. See package window, and loop for compaction.
//
// Turns run the agent loop; see package loop for their guarantees.
package agent
