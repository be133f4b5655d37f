// Package schema is Kelpie's storage layout, declared once: every key
// family (its prefix, key layout and value encoding), the records stored
// under them, what indexes what, and the rules that hold between them. The
// agent service writes through it, and the simulator's storage checker and
// any offline audit check a store against it (Check), so a renamed prefix
// or a new family changes writer and checker together.
//
// Every family is in Families. Prefixes are disjoint: no prefix begins
// another, so every key belongs to exactly one family (FamilyOf).
//
// The rules Check enforces, at rest (between transactions):
//   - Each agent and block record has exactly one index entry, at the key
//     its creation time and id give, and each index entry names a record.
//   - Each listed (not hidden) agent has one term-index entry per term (each
//     tag, its name, its project) and one tag-name entry per tag, and every
//     entry is a term of its agent. The counts of listed agents and of
//     blocks (a base and a delta per object changed since the last fold)
//     add up to how many there are; so does the count of each tag, name,
//     project and identity (TermCounts) to how many listed agents have it
//     (belong to it), each delta being 1 for an agent that has the term
//     and -1 for one that has not, and a stored base is never 0. The layout
//     version, when recorded, is Version (Upgrade brings older stores to it).
//   - Attachments are symmetric (agent-block and block-agent) and join an
//     existing agent to an existing block.
//   - Each stored block holds no more characters than its limit, whatever
//     path wrote it.
//   - An agent's messages are numbered 1, 2, ... without a gap; each says
//     its own agent and number; the message-id index and the messages agree
//     one to one; a conversation's message index names messages of that
//     conversation.
//   - Every tool call the server runs has exactly one result among the tool
//     messages right after its assistant message, and every such result
//     answers a call of it: a step commits its calls and their results
//     together.
//   - Every message of a run lies within the run's recorded range; each run
//     is indexed (by creation time and by agent) and each index entry names
//     a run of that agent.
//   - At most one run of an agent is unfinished, and it is the agent's turn
//     in progress (active-run): a run cut short by a crash is closed by the
//     agent's next turn.
//   - Every answered otid or idempotency key names a run of its agent.
//   - Each idempotency record written with a time has exactly one expiry
//     entry, at that time, and each expiry entry names such a record
//     (actor.IdemExpiryKey): a record and its entry are written and deleted
//     together.
//   - Conversations and passages belong to existing agents and are indexed
//     exactly once.
//   - Each custom tool record has exactly one index entry (by creation
//     time) and one name entry, and each name and index entry names a tool
//     record (with that name); tool attachments are symmetric and join an
//     existing agent to an existing tool.
//   - A deferred tool call (a custom tool, run after its step commits) has
//     at most one result, and none only while it is its agent's latest
//     message: the agent's next turn answers it first.
//   - Each context (an agent's default conversation, each conversation)
//     names as its system message and its summary stored messages of its
//     own with those roles, and starts within the agent's messages; its
//     index entries name its own messages from its start on (not its
//     system message or summaries), one each if it is indexed.
//   - Each ref of an agent's memory repository names an object stored in
//     that repository (GitObjects, GitRefs).
//   - Nothing of a deleted agent remains: no messages, runs, conversations,
//     passages, answered keys, memory repository or turn in progress.
//     passages, answered keys or turn in progress.
//   - Each claimed actor's claim epoch (its fence) is recorded in its claim
//     log, and no claim log entry is newer than the claim.
package schema
