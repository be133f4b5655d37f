// Package actor is Kelpie's virtual-actor runtime.
//
// An actor is addressed by an ID and activated on demand: the first Invoke
// loads its state from storage. Guarantees:
//
//   - One activation per ID in a runtime, and invocations of one actor run
//     one at a time, in arrival order. Different actors run in parallel.
//   - Every invocation runs in one kv transaction that holds the actor's
//     state and every other write the invocation made. Invoke returns success
//     only after that transaction has committed, so an acknowledged
//     invocation is durable.
//   - If an invocation fails, panics, times out, or its commit fails or has
//     an unknown outcome, the caller gets an error and the activation's
//     in-memory state is discarded: the next invocation reloads it from
//     storage. Memory never runs ahead of storage.
//   - Each activation bumps the actor's epoch in storage with its first
//     commit and fences every later commit on it, so a stale activation
//     (which a correct single runtime never has) cannot overwrite newer state.
//   - With a Placement (runtimes of a cluster on one store), a placed actor
//     is activated only after its claim has committed, and every commit of
//     the activation is also fenced on the claim: once another runtime has
//     claimed the actor, this one commits nothing more for it.
//   - Deactivation (idle timeout, activation cap, shutdown) has nothing to
//     save, because nothing is ever left unsaved.
//   - An idempotency record answers retries of its key for at least
//     Config.IdempotencyHorizon; about a minute after that it is deleted,
//     with its expiry entry, in one transaction (see IdemExpiryPrefix).
package actor
