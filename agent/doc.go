// Package agent is Kelpie's agent service: agents and their memory blocks,
// stored through the actor runtime.
//
// Guarantees, on top of the runtime's:
//   - Every mutation is one actor invocation, so it is committed before it
//     returns, atomically with every index and attachment it touches.
//     CreateAgent returns the state that was committed: there is no window
//     in which a created agent cannot be read.
//   - Reads go straight to storage in one snapshot, so they never wait
//     behind an agent's queue and always see every acknowledged write.
//   - The agent index and the block attachments change in the same
//     transactions as the records they describe: a listed agent exists, an
//     existing agent is listed, an attached block exists.
//   - Requests are validated before anything is written; a rejected request
//     changes nothing.
//
// Turns (messages to an agent) run the agent loop: the model is called
// outside the actor, between invocations, and each step of the turn (the
// inputs; then each model response with its tool calls, their results and
// their memory edits; then how the turn ended) commits in one invocation
// before it is streamed or returned. So:
//   - A crash or failed commit mid-turn leaves a history in which every
//     tool call has its result, and a memory that matches it; the next turn
//     closes a run left open and answers any call left without a result.
//   - Turns of one agent run one at a time (a per-agent turn lock); reads,
//     and other mutations of the agent, never wait for the model.
//   - A message repeated with the same otid or Idempotency-Key gets the
//     first turn's answer; the turn does not run twice.
package agent
