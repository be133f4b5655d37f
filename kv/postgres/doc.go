// Package postgres is a kv engine on a Postgres database that several
// Kelpie processes (nodes) share: the kv guarantees hold across all of them,
// as they hold within one process on kv/pebble. It uses only SQL that
// CockroachDB and YugabyteDB accept as well.
//
// Guarantees, for kv.DB over an Engine (see kv.SharedEngine):
//   - A transaction reads one snapshot of the database, taken at Begin: a
//     Postgres REPEATABLE READ READ ONLY transaction, which holds whole
//     commits only and never fails or waits because of writers.
//   - Commit validates and writes in one SERIALIZABLE database
//     transaction: it reads again, by version, every key the transaction
//     read and every range it scanned, and applies nothing (ErrConflict)
//     if any changed since the snapshot; it locks the fence keys and
//     applies nothing (ErrFenced) if one no longer holds its epoch; then it
//     writes. Every row records a random 64-bit version of the commit that
//     wrote it, so a rewrite with the same value still counts as a change.
//     Because the commit transaction re-reads what the kv transaction read
//     and Postgres runs it serializably, commits from any number of nodes
//     are serializable, and each is validated against every commit that
//     finished before it began.
//   - Commit returns once Postgres has committed (durable as the server is
//     configured: synchronous_commit). A commit whose answer was lost
//     (the connection broke after COMMIT was sent) has an unknown outcome.
//   - Values carry kv's checksum; kv.DB verifies it on every read.
//   - Errors: serialization failures and deadlocks are kv.ErrConflict; a
//     server that cannot be reached, is shutting down, refuses connections
//     or does not answer within StatementTimeout is kv.ErrUnavailable
//     (retry: the pool reconnects by itself once the server is back); a
//     full disk is kv.ErrDiskFull; data Postgres finds damaged is
//     kv.ErrCorrupt.
//   - The schema is Kelpie's, created and migrated by Open in a versioned
//     table (kelpie_schema); a database whose schema is newer than this
//     binary's is refused with both versions named.
//
// Limits: each open transaction holds a pooled connection until it ends,
// and a commit holds a second one briefly (after the first is released):
// the pool (DefaultMaxConns, or pool_max_conns in the URL) bounds how many
// transactions are open at once, and the server's max_connections bounds
// the pools of all nodes together. A read-only transaction sees a snapshot
// of whole commits, but, as under any Postgres snapshot, in rare patterns
// of three or more concurrent transactions it may see a state that no
// serial order of the writers passes through (the read-only anomaly of
// snapshot isolation); writers are always serializable.
package postgres
