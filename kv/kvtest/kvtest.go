// Package kvtest is a conformance suite for kv.Store implementations and the
// engines under kv.DB. Every implementation runs the same tests, so they
// cannot drift apart in behaviour.
package kvtest

import (
	"context"
	"errors"
	"slices"
	"sort"
	"testing"

	"github.com/kelpie/kelpie/kv"
)

// TestStore runs the conformance suite. open must return a new, empty store
// for each call; TestStore closes it when the subtest ends.
func TestStore(t *testing.T, open func(t *testing.T) kv.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s kv.Store)
	}{
		{"GetSetDelete", testGetSetDelete},
		{"NotFound", testNotFound},
		{"Ownership", testOwnership},
		{"Scan", testScan},
		{"ReadYourWrites", testReadYourWrites},
		{"ReadYourWritesModel", testReadYourWritesModel},
		{"SnapshotIsolation", testSnapshotIsolation},
		{"Conflict", testConflict},
		{"Fence", testFence},
		{"TxnDone", testTxnDone},
		{"Limits", testLimits},
		{"ConcurrentCounters", testConcurrentCounters},
		{"ConcurrentTransfers", testConcurrentTransfers},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.f(t, s)
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func begin(t testing.TB, s kv.Store) kv.Txn {
	t.Helper()
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	return tx
}

// update runs f in a transaction and commits it.
func update(t testing.TB, s kv.Store, f func(tx kv.Txn)) {
	t.Helper()
	tx := begin(t, s)
	defer tx.Discard()
	f(tx)
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func put(t testing.TB, s kv.Store, kvs ...string) {
	t.Helper()
	update(t, s, func(tx kv.Txn) {
		for i := 0; i < len(kvs); i += 2 {
			must(t, tx.Set([]byte(kvs[i]), []byte(kvs[i+1])))
		}
	})
}

// read returns key's value in a fresh transaction.
func read(t testing.TB, s kv.Store, key string) ([]byte, error) {
	t.Helper()
	tx := begin(t, s)
	defer tx.Discard()
	return tx.Get([]byte(key))
}

func wantValue(t testing.TB, s kv.Store, key, want string) {
	t.Helper()
	v, err := read(t, s, key)
	if err != nil || string(v) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, v, err, want)
	}
}

func wantMissing(t testing.TB, s kv.Store, key string) {
	t.Helper()
	if v, err := read(t, s, key); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

// pairs flattens a scan result for comparison and printing.
func pairs(kvs []kv.KeyValue) []string {
	out := make([]string, 0, 2*len(kvs))
	for _, p := range kvs {
		out = append(out, string(p.Key), string(p.Value))
	}
	return out
}

// model is the expected contents of a store: a sorted map.
type model map[string]string

// scan returns what Scan(r, limit, reverse) should return, flattened.
func (m model) scan(r kv.Range, limit int, reverse bool) []string {
	var keys []string
	for k := range m {
		if r.Contains([]byte(k)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if reverse {
		slices.Reverse(keys)
	}
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	out := []string{}
	for _, k := range keys {
		out = append(out, k, m[k])
	}
	return out
}

func checkScan(t testing.TB, tx kv.Txn, m model, r kv.Range, limit int, reverse bool) {
	t.Helper()
	got, err := tx.Scan(r, limit, reverse)
	if err != nil {
		t.Fatalf("Scan(%q-%q, %d, reverse=%v): %v", r.Start, r.End, limit, reverse, err)
	}
	if want := m.scan(r, limit, reverse); !slices.Equal(pairs(got), want) {
		t.Fatalf("Scan(%q-%q, %d, reverse=%v)\n got %q\nwant %q", r.Start, r.End, limit, reverse, pairs(got), want)
	}
}

// --- tests ---

func testGetSetDelete(t *testing.T, s kv.Store) {
	put(t, s, "k", "v1", "other", "o")
	wantValue(t, s, "k", "v1")
	put(t, s, "k", "v2")
	wantValue(t, s, "k", "v2")
	update(t, s, func(tx kv.Txn) { must(t, tx.Delete([]byte("k"))) })
	wantMissing(t, s, "k")
	wantValue(t, s, "other", "o")

	// Deleting a missing key is fine; an empty or nil value is a value.
	update(t, s, func(tx kv.Txn) {
		must(t, tx.Delete([]byte("never")))
		must(t, tx.Set([]byte("empty"), []byte{}))
		must(t, tx.Set([]byte("nil"), nil))
	})
	wantMissing(t, s, "never")
	for _, k := range []string{"empty", "nil"} {
		if v, err := read(t, s, k); err != nil || len(v) != 0 {
			t.Fatalf("Get(%q) = %q, %v; want empty value", k, v, err)
		}
	}
	tx := begin(t, s)
	defer tx.Discard()
	checkScan(t, tx, model{"empty": "", "nil": "", "other": "o"}, kv.Range{}, 0, false)

	// The empty key is not a key.
	if err := tx.Set(nil, []byte("x")); err == nil {
		t.Error("Set of empty key succeeded")
	}
	if _, err := tx.Get([]byte{}); err == nil {
		t.Error("Get of empty key succeeded")
	}
	// Nor is a key of the engine's own.
	if err := tx.Set([]byte{kv.EngineKeyPrefix, 'k'}, []byte("x")); err == nil {
		t.Error("Set of a key reserved for the engine succeeded")
	}
}

func testNotFound(t *testing.T, s kv.Store) {
	wantMissing(t, s, "nope")
	put(t, s, "a", "1", "c", "3")
	tx := begin(t, s)
	defer tx.Discard()
	for _, k := range []string{"b", "a\x00", "0", "d", "\xff"} {
		if v, err := tx.Get([]byte(k)); !errors.Is(err, kv.ErrNotFound) || v != nil {
			t.Errorf("Get(%q) = %q, %v; want ErrNotFound", k, v, err)
		}
	}
}

func testOwnership(t *testing.T, s kv.Store) {
	val := []byte("value")
	update(t, s, func(tx kv.Txn) {
		must(t, tx.Set([]byte("k"), val))
		val[0] = 'X' // the store must have copied it
	})
	wantValue(t, s, "k", "value")

	tx := begin(t, s)
	defer tx.Discard()
	v, err := tx.Get([]byte("k"))
	must(t, err)
	v[0] = 'X'
	kvs, err := tx.Scan(kv.Range{}, 0, false)
	must(t, err)
	if len(kvs) != 1 || string(kvs[0].Value) != "value" {
		t.Fatalf("Scan after mutating Get result: %q", pairs(kvs))
	}
	kvs[0].Key[0], kvs[0].Value[0] = 'X', 'X'
	checkScan(t, tx, model{"k": "value"}, kv.Range{}, 0, false)

	// Also for buffered writes.
	must(t, tx.Set([]byte("b"), []byte("buf")))
	v, err = tx.Get([]byte("b"))
	must(t, err)
	v[0] = 'X'
	kvs, err = tx.Scan(kv.Range{}, 0, false)
	must(t, err)
	kvs[0].Key[0], kvs[0].Value[0] = 'X', 'X'
	checkScan(t, tx, model{"b": "buf", "k": "value"}, kv.Range{}, 0, false)
}

var scanKeys = []string{
	"a", "b", "b\x00", "b\xff", "ba", "bb", "c", "p/1", "p/2", "p/3", "q",
	"\xff", "\xff\x00", "\xff\xff", "\xff\xff\xff",
}

func scanRanges() []kv.Range {
	b := func(s string) []byte { return []byte(s) }
	return []kv.Range{
		{},
		{Start: b("b")},
		{End: b("b")},
		{Start: b("b"), End: b("c")},
		{Start: b("a\x00"), End: b("bb")},
		{Start: b("b"), End: b("b")}, // empty
		{Start: b("c"), End: b("b")}, // inverted: empty
		{Start: b("zz"), End: b("zz\x00")},
		{Start: b("\xff\xff")},
		kv.PrefixRange(nil),
		kv.PrefixRange(b("b")),
		kv.PrefixRange(b("p/")),
		kv.PrefixRange(b("b\xff")),
		kv.PrefixRange(b("\xff")),
		kv.PrefixRange(b("\xff\xff")),
		kv.PrefixRange(b("zz")),
	}
}

func testScan(t *testing.T, s kv.Store) {
	if r := kv.PrefixRange([]byte("\xff\xff")); r.End != nil {
		t.Errorf("PrefixRange(ff ff).End = %q, want nil", r.End)
	}
	if r := kv.PrefixRange([]byte("b\xff")); string(r.End) != "c" {
		t.Errorf("PrefixRange(b ff).End = %q, want c", r.End)
	}
	m := model{}
	update(t, s, func(tx kv.Txn) {
		for _, k := range scanKeys {
			m[k] = "v:" + k
			must(t, tx.Set([]byte(k), []byte(m[k])))
		}
	})
	tx := begin(t, s)
	defer tx.Discard()
	for _, r := range scanRanges() {
		for _, limit := range []int{0, -1, 1, 2, 3, 5, len(scanKeys), len(scanKeys) + 5} {
			for _, reverse := range []bool{false, true} {
				checkScan(t, tx, m, r, limit, reverse)
			}
		}
	}
}

func testClosed(t *testing.T, s kv.Store) {
	tx := begin(t, s)
	defer tx.Discard()
	must(t, tx.Set([]byte("k"), []byte("v")))
	must(t, s.Close())
	must(t, s.Close()) // idempotent
	if _, err := s.Begin(context.Background()); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Begin after Close = %v; want ErrClosed", err)
	}
	if err := tx.Commit(context.Background()); err == nil {
		t.Errorf("Commit after Close succeeded")
	}
}
