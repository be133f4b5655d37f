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
package agent
