// Package sim is Kelpie's deterministic simulation.
//
// A run starts the real system — the actor runtime, the agent service and
// the HTTP handlers, driven in-process through httptest — over a simulated
// disk (a kv.MemEngine behind a fault-injecting engine), a simulated clock,
// a seeded source of ids and a scripted model provider (see llm.go: replies
// drawn from the seed, shaped by the tools and memory blocks of each
// request: text, memory tool calls that apply or not, conversation search,
// send_message, multi-step tool chains, streamed as deltas to a streaming
// turn). Many simulated clients issue a random mix of API calls (agents:
// create, get, list, update, delete; blocks: create, get, list, edit,
// attach, detach, delete, directly and through agents; messages: send, some
// streamed and some token by token, each with an otid and sent again with
// it after an unknown outcome, and list; conversations: create, send to,
// list, fork; the context window: summarize, compact, reset, and the turns
// of agents with a small window, which compact as they go; passages:
// create (embedded), delete, list; runs: list; a custom tool: upsert it, give it to
// agents, whose model calls it, run in a simulated sandbox, tools.go;
// memory repositories: some agents keep their blocks in git, and clients
// fetch, edit a block's file and push over git's smart HTTP protocol,
// memfs.go),
// each kind of call a type (ops.go), while faults chosen from the seed
// hit storage (write and read failures, corruption, latency, disk full,
// fsync failure, crashes before, after and during a write), the tools
// (crashes, timeouts, floods of output), the process
// (crash and restart at any point, in the middle of turns too: every
// activation and all memory lost, the disk kept), the clock (skew and
// jumps) and the model (server errors, rate limits, timeouts, responses a
// model should not give). The actor runtime runs with a low idle timeout
// and activation cap, so actors deactivate and reactivate constantly.
//
// Every call and its outcome is recorded — acknowledged, failed (a definite
// 4xx: no effect), or unknown (a 5xx, a cancelled call: it may or may not
// have taken effect, at the latest when it answered, when its process
// crashed, or never bounded) — with how it failed, if it did (the kind of
// its error status, or the stop reason of its turn, and the fullest error
// text known, streamed or not) and its path (path.go): every request
// carries its call in its context, which reaches its actor invocations,
// reads and turn, so the simulated disk and model record on the call the
// faults its own work met, and the service's log the errors it logged for
// it. A failed call is excused only by a fault on its path or the crash of
// its process while it ran (cause.go), never by the profile as a whole.
// Everything is checked:
//
//   - create-get, delete-get: an acknowledged create is found by every later
//     call; an acknowledged delete by none;
//   - durability: no acknowledged write is overwritten by an older one;
//   - partial-effect: nothing a failed call wrote is ever seen;
//   - corruption: no damaged or never-written value reaches a client;
//   - single-activation: no two invocations of one actor run at once, and
//     epochs only rise;
//   - linearizability: each agent's and each block's history is
//     linearizable (porcupine), unknown calls allowed either way;
//   - invariants: at every crash and at the end, the stored records,
//     indexes and attachments agree, and every agent's messages are whole
//     (numbered without gaps, indexed, each tool call with its one result,
//     each in its run's range);
//   - unexpected-error: no panic, no server error without a fault on its
//     path or a crash while it ran, and no turn stopped by an error (a
//     model error, a cancellation) without one that can cause it; in the
//     audit, with every fault silenced, no read fails but on a value
//     damaged at rest;
//   - liveness: every call answers within its timeout (no fault takes that
//     long, and a crash ends a call at once), the clients finish within
//     the run timeout, and then every turn ends, every turn lock is let go
//     and no request waits for one within the settle timeout
//     (agent.Service.Stats); kelpie sim also bounds each seed's wall time;
//   - listing: every page a listing answers holds no item twice, no more
//     than its limit, in its order;
//   - tool-at-most-once, tool-result: no custom tool call runs twice, and
//     a successful result in a history is what the call's one run gave
//     (tools.go).
//
// After the run, a fresh process with the faults silenced reads every
// known agent's whole message history and every known block back, and
// every listing the API offers (the audit); the listing checker walks the
// listings page by page and compares (listing.go, walk.go,
// checklisting.go):
//
//   - listing: pages walked with after cursors in both orders, and back
//     with before cursors, give the whole listing exactly; the whole
//     listing holds no item twice, is in order, is the other order
//     reversed, holds what the model says exists and nothing it says is
//     gone, and agrees with the other listings (an agent's blocks, a
//     block's agents);
//   - archival-search: a search of an agent's passages for each one's own
//     text finds every passage whose create was acknowledged and that
//     nothing may have deleted, first by meaning (passages and queries are
//     embedded by a simulated provider that the model faults also fail,
//     archival.go);
//   - memfs: each agent's memory repository, fetched, holds its blocks
//     file for file, and the commit of every acknowledged push is in its
//     branch's history (memfs.go). A push is also a block write in the
//     linearizability model;
//   - compaction: each user message of an agent's default conversation is
//     either in its context or in the transcript the summariser was given
//     for a summary stored in it, not both and not neither (compaction.go).
//
// Findings of known defects of the system, bugs not fixed yet, are counted
// apart (known.go). The message checkers compare (checkmsg.go):
//
//   - message-lost: an acknowledged message and every message its answer
//     returned are in the history, as returned, and in every complete
//     listing made after the answer;
//   - duplicate-turn: an otid is the user message of one turn at most; a
//     message sent again is answered with the same run and messages;
//   - history: every tool call has exactly one result right after its
//     message, runs are contiguous and open with their user message, and
//     listings made during the run are pieces of the final history;
//   - memory: each block's results and final value follow from replaying
//     the memory tool calls of the history on its initial value (for
//     blocks that clients did not write); the linearizability model also
//     takes each memory tool call as an operation on its block.
//
// The profiles with cluster faults ("network", "cluster") run a cluster
// instead of one process (cluster.go, clusterdb.go, clusternet.go):
// ClusterNodes nodes, each with its own actor runtime, agent service,
// handler, clock (node_skew) and lease (package cluster), commit to one
// shared simulated database with the semantics of kv/postgres (serializable
// validation of each commit, fences checked in the commit); clients call
// a node at random (the next one up while it is down), and nodes forward
// to an agent's owner over a simulated network. Faults crash and restart a
// node, cut it off from the database or from its peers, stall its
// database calls (its lease renewals among them), and delay or drop
// forwards before or after they arrive. Besides every checker above:
//
//   - single-activation: every commit of an agent's activation is fenced on
//     the agent's claim and comes from the node incarnation holding that
//     claim; a claim that takes an agent from a live incarnation comes a
//     whole lease after that incarnation's last heartbeat landed, and once
//     it stopped serving (checked in the shared database, at the commit);
//   - forwarding: a call is delivered to an owner at most once.
//
// A turn of one agent runs only on the node holding its claim, so the
// history checker's contiguous runs show turns serialised cluster-wide.
//
// Everything random derives from Config.Seed, and time comes from the
// simulated clock. Compiled for GOOS=wasip1 and run under a host that
// simulates the clock and the random source of the Go runtime, a seed
// replays exactly (the same Result.Trace); natively, goroutine scheduling
// varies from run to run, but every run must pass the same checks.
package sim
