// Package kv is Kelpie's storage layer: an ordered, transactional key-value
// store.
//
// Guarantees:
//   - A Txn reads one consistent snapshot and sees its own writes.
//   - Commit is atomic: every Set and Delete of a transaction is applied, or
//     none is. When Commit returns nil the writes are durable (the engine has
//     synced them).
//   - Commit is optimistic and serializable: it fails with ErrConflict, and
//     applies nothing, if any key the transaction read (by Get, or inside a
//     range it scanned) was changed by a transaction that committed after it
//     began. A transaction that only reads always commits: its snapshot is
//     a prefix of the commit order, consistent by construction (see DB), so
//     reads never fail, or wait, because of concurrent writes.
//   - A commit guarded by Fence fails with ErrFenced, and applies nothing, if
//     the fence key no longer holds the expected epoch. This is how a stale
//     actor activation is kept from writing.
//   - Every value is stored with a CRC-32C checksum over key and value; a
//     value that fails its check is reported as ErrCorrupt, never returned.
//
// Any other commit error leaves the outcome unknown: the writes may or may not
// have been applied. Callers must treat such a result as "maybe".
//
// DB implements the transactions on top of an Engine, the minimal contract a
// storage engine provides (snapshots and atomic durable batches). MemEngine is
// the in-memory engine used by tests and by the simulation; kv/pebble is the
// embedded on-disk default; kv/postgres is a SharedEngine, a database
// several processes commit to, which validates each commit itself.
package kv
