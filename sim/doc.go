// Package sim is Kelpie's deterministic simulation.
//
// A run starts the real system — the actor runtime, the agent service and
// the HTTP handlers, driven in-process through httptest — over a simulated
// disk (a kv.MemEngine behind a fault-injecting engine), a simulated clock
// and a seeded source of ids. Many simulated clients issue a random mix of
// API calls (agents: create, get, list, update, delete; blocks: create, get,
// list, edit, attach, detach, delete, directly and through agents) while
// faults chosen from the seed hit storage (write and read failures,
// corruption, latency, disk full, fsync failure, crashes before, after and
// during a write), the process (crash and restart at any point: every
// activation and all memory lost, the disk kept) and the clock (skew and
// jumps). The actor runtime runs with a low idle timeout and activation cap,
// so actors deactivate and reactivate constantly.
//
// Every call and its outcome is recorded — acknowledged, failed (a definite
// 4xx: no effect), or unknown (a 5xx, a cancelled call: it may or may not
// have taken effect, at the latest when it answered, when its process
// crashed, or never bounded) — and checked:
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
//     indexes and attachments agree;
//   - unexpected-error: no panic, and no server error without a fault.
//
// Everything random derives from Config.Seed, and time comes from the
// simulated clock. Compiled for GOOS=wasip1 and run under a host that
// simulates the clock and the random source of the Go runtime, a seed
// replays exactly (the same Result.Trace); natively, goroutine scheduling
// varies from run to run, but every run must pass the same checks.
package sim
