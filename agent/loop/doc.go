// Package loop is the agent loop: a turn (a message to an agent) calls the
// model, runs the tools it asks for and calls it again, until the model
// answers without a tool, the turn runs out of steps, or something stops it.
//
// The model is called outside the agent's actor, between invocations, and
// each step of a turn commits in one invocation of the actor (Begin: the
// inputs; Step: one model response with its tool calls, their results and
// their memory edits; End: how a turn ended that stopped without a final
// step) before it is streamed or returned. The first model call does not
// wait for Begin's commit to sync: Begin hands the turn the context it
// read and answers once its writes are ordered, and the turn asks the
// model meanwhile; nothing of the turn is emitted, committed or returned
// until that commit is durable, and if it fails the model's answer is
// thrown away. So:
//   - A crash or a failed commit mid-turn leaves a history in which every
//     tool call has its result and a memory that matches it; the agent's
//     next turn closes a run left open and answers any call left without a
//     result.
//   - A custom tool (and a built-in one that runs code, fetches a page or
//     messages another agent) runs outside the actor, after the step that
//     calls it has committed (the call is Deferred), and its result commits
//     in one more invocation (OpResults): at most once. If the server stops while
//     it runs, the call stays without a result and the agent's next turn
//     answers it with an error saying its outcome is unknown; it is never
//     run again. Other writes to the agent do not wait for the tool.
//   - Turns of one agent run one at a time (a per-agent turn lock); reads,
//     and other mutations of the agent, never wait for the model.
//   - A message repeated with the same otid or Idempotency-Key gets the
//     first turn's answer; the turn does not run twice.
//   - A turn outlives its request: a client that goes away does not stop
//     it, and every turn records how it ended, even when cancelled.
//   - What a step sends the model fits its context window (see the rule in
//     context.go): history that no longer fits is first summarised by the
//     model (compact.go), in one commit that a failure or a crash leaves
//     undone; history out of the context stays stored and searchable.
package loop
