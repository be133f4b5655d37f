// Package cluster lets several Kelpie nodes share one store (a Postgres
// database): membership by leases, and placement of agents, each owned by
// at most one node at a time.
//
// Guarantees:
//   - A node registers a membership record (schema.ClusterNode) and renews
//     it every LeaseTTL/HeartbeatsPerTTL, each renewal with a new heartbeat.
//     Peers judge its lease by the database's clock (kv.SnapshotTime: the
//     time of the snapshot that read the record): it has lapsed once its
//     heartbeat has not changed for LeaseTTL of that clock, so no node's
//     clock, skewed or stepped by any amount, decides a peer's lease. (A
//     store without a clock of its own, one process on a local engine,
//     leaves the node's.)
//   - An agent is activated only after its node claimed it in the store
//     (actor.Placement): the claim's epoch is bumped in a committed
//     transaction, recorded in the claim log (which node, from whom), and
//     every commit of the activation is fenced on it. A node claims an agent
//     only if nobody holds it, the holder is this node, the holder's
//     incarnation is dead (it restarted or left), or the holder's lease has
//     lapsed as this node observed it. The store rejects a commit of any
//     older claim, so two nodes never both commit for one agent, whatever
//     the leases and clocks do: leases give liveness, fences give safety.
//   - A node stops serving its agents (kv.ErrUnavailable, a retryable 503)
//     once it has not renewed its lease for SelfFenceFraction of LeaseTTL,
//     before any peer can see that lease lapse: a node cut off from the
//     database stops before another takes its agents. It measures that by
//     a timer started as each renewal begins (elapsed time, which a step of
//     its wall clock does not move) and by its clock (a step forwards stops
//     it early, which is safe).
//   - Requests for an agent owned by a live peer are forwarded to it (see
//     Route), signed with the cluster secret (Sign, Forwarded); a forwarded
//     request is served where it lands, never forwarded again. A mark is
//     accepted once, from a current member, by the incarnation it was
//     addressed to: a duplicated or replayed forward is refused, and no
//     wall clock enters, so skewed nodes forward to each other.
package cluster
