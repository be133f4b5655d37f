// Package metrics exposes Kelpie's figures to Prometheus: requests by route
// and status, the actor runtime, commits, storage, turns, model calls and
// errors by kind.
//
// The layers below know nothing of Prometheus. Counters they keep (the
// service's Counts, with its runtime's Stats) are read at scrape time;
// events that need timing (requests, commits, syncs, model calls) reach
// this package through small hooks (api.Options.Observe,
// kv.DB.ObserveCommits, a sync-wait function, a wrapped llm.Provider), and
// cmd/kelpie wires them. Series are labelled only by bounded values: route
// patterns (never raw paths, which hold ids), status codes, error kinds,
// and at most MaxModelLabels provider/model pairs.
package metrics
