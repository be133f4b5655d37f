// Package kvtest is a conformance suite for kv.Store implementations and the
// engines under kv.DB. Every implementation runs the same tests, so they
// cannot drift apart in behaviour.
package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

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

// TestCorruption checks that values tampered with inside eng are reported as
// kv.ErrCorrupt by a kv.DB over eng, and never returned. eng must be empty;
// TestCorruption closes it.
func TestCorruption(t *testing.T, eng kv.Engine) {
	s := kv.NewDB(eng)
	defer s.Close()
	update(t, s, func(tx kv.Txn) {
		for _, k := range []string{"a", "b", "c", "d", "e", "z"} {
			must(t, tx.Set([]byte(k), []byte("value of "+k)))
		}
	})
	raw := func(key string) []byte {
		t.Helper()
		snap, err := eng.NewSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		defer snap.Close()
		v, err := snap.Get([]byte(key))
		if err != nil {
			t.Fatalf("raw get %q: %v", key, err)
		}
		return v
	}
	tamper := map[string][]byte{}
	v := raw("a")
	v[len(v)-1] ^= 0x01 // a value bit
	tamper["a"] = v
	v = raw("b")
	v[0] ^= 0x80 // a checksum bit
	tamper["b"] = v
	tamper["c"] = raw("c")[:2] // shorter than any checksum
	tamper["d"] = []byte{}     // empty
	tamper["e"] = raw("z")     // intact, but sealed for another key
	var batch []kv.Mutation
	for k, v := range tamper {
		batch = append(batch, kv.Mutation{Key: []byte(k), Value: v})
	}
	if err := eng.Apply(batch); err != nil {
		t.Fatal(err)
	}

	tx := begin(t, s)
	defer tx.Discard()
	for k := range tamper {
		if v, err := tx.Get([]byte(k)); !errors.Is(err, kv.ErrCorrupt) || v != nil {
			t.Errorf("Get(%q) = %q, %v; want nil, ErrCorrupt", k, v, err)
		}
		for _, reverse := range []bool{false, true} {
			if kvs, err := tx.Scan(kv.PrefixRange([]byte(k)), 0, reverse); !errors.Is(err, kv.ErrCorrupt) || kvs != nil {
				t.Errorf("Scan(%q, reverse=%v) = %q, %v; want nil, ErrCorrupt", k, reverse, kvs, err)
			}
		}
	}
	for _, reverse := range []bool{false, true} {
		if kvs, err := tx.Scan(kv.Range{}, 0, reverse); !errors.Is(err, kv.ErrCorrupt) || kvs != nil {
			t.Errorf("full Scan(reverse=%v) = %q, %v; want nil, ErrCorrupt", reverse, kvs, err)
		}
	}
	// An intact neighbour still reads.
	if v, err := tx.Get([]byte("z")); err != nil || string(v) != "value of z" {
		t.Errorf("Get(z) = %q, %v", v, err)
	}
	tx.Discard()

	// A blind overwrite repairs a corrupt key.
	update(t, s, func(tx kv.Txn) { must(t, tx.Set([]byte("a"), []byte("fixed"))) })
	wantValue(t, s, "a", "fixed")
}

// --- helpers ---

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

func testReadYourWrites(t *testing.T, s kv.Store) {
	put(t, s, "a", "1", "b", "2", "c", "3", "d", "4", "e", "5")
	tx := begin(t, s)
	defer tx.Discard()
	must(t, tx.Set([]byte("b"), []byte("22")))
	must(t, tx.Delete([]byte("c")))
	must(t, tx.Set([]byte("bb"), []byte("new")))
	must(t, tx.Set([]byte("f"), []byte("6")))
	must(t, tx.Delete([]byte("zz")))
	must(t, tx.Set([]byte("g"), []byte("gone")))
	must(t, tx.Delete([]byte("g")))
	must(t, tx.Delete([]byte("h")))
	must(t, tx.Set([]byte("h"), []byte("back")))

	m := model{"a": "1", "b": "22", "bb": "new", "d": "4", "e": "5", "f": "6", "h": "back"}
	for _, k := range []string{"a", "b", "c", "bb", "f", "g", "h", "zz"} {
		v, err := tx.Get([]byte(k))
		want, ok := m[k]
		switch {
		case !ok && !errors.Is(err, kv.ErrNotFound):
			t.Errorf("Get(%q) = %q, %v; want ErrNotFound", k, v, err)
		case ok && (err != nil || string(v) != want):
			t.Errorf("Get(%q) = %q, %v; want %q", k, v, err, want)
		}
	}
	for _, r := range []kv.Range{{}, kv.PrefixRange([]byte("b")), {Start: []byte("b"), End: []byte("e")}} {
		for limit := range 9 {
			for _, reverse := range []bool{false, true} {
				checkScan(t, tx, m, r, limit, reverse)
			}
		}
	}

	// Buffered deletes at the start of a limited scan must not shorten it.
	must(t, tx.Delete([]byte("a")))
	must(t, tx.Delete([]byte("b")))
	must(t, tx.Delete([]byte("bb")))
	delete(m, "a")
	delete(m, "b")
	delete(m, "bb")
	checkScan(t, tx, m, kv.Range{}, 1, false)
	checkScan(t, tx, m, kv.Range{}, 2, false)
	must(t, tx.Delete([]byte("h")))
	must(t, tx.Delete([]byte("f")))
	delete(m, "h")
	delete(m, "f")
	checkScan(t, tx, m, kv.Range{}, 1, true)
	must(t, tx.Commit(context.Background()))

	tx = begin(t, s)
	defer tx.Discard()
	checkScan(t, tx, m, kv.Range{}, 0, false)
}

// testReadYourWritesModel compares Get and Scan against a model over random
// committed data and random buffered writes.
func testReadYourWritesModel(t *testing.T, s kv.Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		prefix := fmt.Sprintf("r%02d/", round)
		var universe []string
		for i := range 24 {
			universe = append(universe, fmt.Sprintf("%s%02d", prefix, i))
		}
		universe = append(universe, prefix+"\xff", prefix+"\xff\xff")
		m := model{}
		update(t, s, func(tx kv.Txn) {
			for _, k := range universe {
				if rng.IntN(2) == 0 {
					m[k] = "c" + k
					must(t, tx.Set([]byte(k), []byte(m[k])))
				}
			}
		})
		tx := begin(t, s)
		for i := range rng.IntN(30) {
			k := universe[rng.IntN(len(universe))]
			if rng.IntN(2) == 0 {
				must(t, tx.Delete([]byte(k)))
				delete(m, k)
			} else {
				m[k] = fmt.Sprintf("w%d", i)
				must(t, tx.Set([]byte(k), []byte(m[k])))
			}
		}
		for _, k := range universe {
			v, err := tx.Get([]byte(k))
			want, ok := m[k]
			if ok != (err == nil) || (ok && string(v) != want) || (!ok && !errors.Is(err, kv.ErrNotFound)) {
				t.Fatalf("round %d: Get(%q) = %q, %v; want %q (present %v)", round, k, v, err, want, ok)
			}
		}
		ranges := []kv.Range{kv.PrefixRange([]byte(prefix)), kv.PrefixRange([]byte(prefix + "\xff"))}
		for range 10 {
			a, b := universe[rng.IntN(len(universe))], universe[rng.IntN(len(universe))]
			ranges = append(ranges, kv.Range{Start: []byte(min(a, b)), End: []byte(max(a, b))})
		}
		for _, r := range ranges {
			for _, limit := range []int{0, 1, 2, 3, 7} {
				for _, reverse := range []bool{false, true} {
					checkScan(t, tx, m, r, limit, reverse)
				}
			}
		}
		tx.Discard()
	}
}

func testSnapshotIsolation(t *testing.T, s kv.Store) {
	put(t, s, "k", "old", "s/1", "one")
	t0 := begin(t, s) // reads nothing before the commit below
	defer t0.Discard()
	t1 := begin(t, s)
	defer t1.Discard()
	v, err := t1.Get([]byte("k"))
	if err != nil || string(v) != "old" {
		t.Fatalf("Get(k) = %q, %v", v, err)
	}
	update(t, s, func(tx kv.Txn) {
		must(t, tx.Set([]byte("k"), []byte("new")))
		must(t, tx.Set([]byte("s/2"), []byte("two")))
		must(t, tx.Delete([]byte("s/1")))
		must(t, tx.Set([]byte("later"), []byte("x")))
	})
	// The snapshot is fixed at Begin, not at the first read.
	if v, err := t0.Get([]byte("k")); err != nil || string(v) != "old" {
		t.Errorf("t0 Get(k) after commit = %q, %v; want old", v, err)
	}
	checkScan(t, t0, model{"k": "old", "s/1": "one"}, kv.Range{}, 0, false)
	// t1 still reads its snapshot, including keys it had not read yet.
	if v, err := t1.Get([]byte("k")); err != nil || string(v) != "old" {
		t.Errorf("t1 Get(k) after commit = %q, %v; want old", v, err)
	}
	if v, err := t1.Get([]byte("later")); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("t1 Get(later) = %q, %v; want ErrNotFound", v, err)
	}
	checkScan(t, t1, model{"s/1": "one"}, kv.PrefixRange([]byte("s/")), 0, false)
	checkScan(t, t1, model{"s/1": "one"}, kv.PrefixRange([]byte("s/")), 0, true)

	// A transaction begun afterwards sees the commit.
	t2 := begin(t, s)
	defer t2.Discard()
	checkScan(t, t2, model{"s/2": "two"}, kv.PrefixRange([]byte("s/")), 0, false)
	if v, err := t2.Get([]byte("k")); err != nil || string(v) != "new" {
		t.Errorf("t2 Get(k) = %q, %v; want new", v, err)
	}
}

// conflictCase prepares t1 by reading, lets another transaction commit
// other, and then expects t1's commit of "out" to fail or succeed.
func conflictCase(t *testing.T, s kv.Store, read func(tx kv.Txn), other func(tx kv.Txn), wantConflict bool) {
	t.Helper()
	t1 := begin(t, s)
	defer t1.Discard()
	read(t1)
	must(t, t1.Set([]byte("out"), []byte("t1")))
	update(t, s, other)
	err := t1.Commit(context.Background())
	if !wantConflict {
		if err != nil {
			t.Fatalf("Commit = %v; want success", err)
		}
		wantValue(t, s, "out", "t1")
		update(t, s, func(tx kv.Txn) { must(t, tx.Delete([]byte("out"))) })
		return
	}
	if !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("Commit = %v; want ErrConflict", err)
	}
	wantMissing(t, s, "out")
}

func testConflict(t *testing.T, s kv.Store) {
	put(t, s, "k", "1", "r/a", "a", "r/b", "b")
	get := func(key string) func(kv.Txn) {
		return func(tx kv.Txn) { tx.Get([]byte(key)) }
	}
	scan := func(r kv.Range) func(kv.Txn) {
		return func(tx kv.Txn) {
			if _, err := tx.Scan(r, 0, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	set := func(key, value string) func(kv.Txn) {
		return func(tx kv.Txn) { must(t, tx.Set([]byte(key), []byte(value))) }
	}
	del := func(key string) func(kv.Txn) {
		return func(tx kv.Txn) { must(t, tx.Delete([]byte(key))) }
	}
	t.Run("ReadKeyChanged", func(t *testing.T) { conflictCase(t, s, get("k"), set("k", "2"), true) })
	wantValue(t, s, "k", "2")
	t.Run("ReadKeyDeleted", func(t *testing.T) { conflictCase(t, s, get("k"), del("k"), true) })
	t.Run("ReadMissingKeyCreated", func(t *testing.T) { conflictCase(t, s, get("k"), set("k", "3"), true) })
	t.Run("ScannedRangeNewKey", func(t *testing.T) { conflictCase(t, s, scan(kv.PrefixRange([]byte("r/"))), set("r/ab", "x"), true) })
	t.Run("ScannedRangeKeyDeleted", func(t *testing.T) { conflictCase(t, s, scan(kv.PrefixRange([]byte("r/"))), del("r/a"), true) })
	t.Run("ReverseScanOpenEnd", func(t *testing.T) {
		conflictCase(t, s, func(tx kv.Txn) { tx.Scan(kv.Range{Start: []byte("r/")}, 0, true) }, set("zzz", "x"), true)
	})
	t.Run("DisjointWrite", func(t *testing.T) {
		conflictCase(t, s, func(tx kv.Txn) { get("k")(tx); scan(kv.PrefixRange([]byte("r/")))(tx) }, set("s/x", "x"), false)
	})

	t.Run("BlindWrites", func(t *testing.T) {
		t1 := begin(t, s)
		defer t1.Discard()
		must(t, t1.Set([]byte("blind"), []byte("t1")))
		must(t, t1.Delete([]byte("k")))
		update(t, s, func(tx kv.Txn) {
			must(t, tx.Set([]byte("blind"), []byte("t2")))
			must(t, tx.Set([]byte("k"), []byte("t2")))
		})
		if err := t1.Commit(context.Background()); err != nil {
			t.Fatalf("blind Commit = %v", err)
		}
		wantValue(t, s, "blind", "t1")
		wantMissing(t, s, "k")
	})

	// Write skew: each reads what the other writes; only one may commit.
	t.Run("WriteSkew", func(t *testing.T) {
		put(t, s, "x", "0", "y", "0")
		t1, t2 := begin(t, s), begin(t, s)
		defer t1.Discard()
		defer t2.Discard()
		get("x")(t1)
		set("y", "1")(t1)
		get("y")(t2)
		set("x", "1")(t2)
		must(t, t1.Commit(context.Background()))
		if err := t2.Commit(context.Background()); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("second Commit = %v; want ErrConflict", err)
		}
		wantValue(t, s, "x", "0")
	})
}

func testFence(t *testing.T, s kv.Store) {
	const fence = "fence"
	epoch := func(e uint64) string { return string(kv.PutEpoch(e)) }
	put(t, s, fence, epoch(3))

	t.Run("Match", func(t *testing.T) {
		update(t, s, func(tx kv.Txn) {
			must(t, tx.Fence([]byte(fence), 3))
			must(t, tx.Set([]byte("x"), []byte("1")))
		})
		wantValue(t, s, "x", "1")
	})
	t.Run("Mismatch", func(t *testing.T) {
		tx := begin(t, s)
		defer tx.Discard()
		for _, e := range []uint64{0, 2, 4} {
			if err := tx.Fence([]byte(fence), e); !errors.Is(err, kv.ErrFenced) {
				t.Errorf("Fence(%d) = %v; want ErrFenced", e, err)
			}
		}
		if err := tx.Fence([]byte("nofence"), 1); !errors.Is(err, kv.ErrFenced) {
			t.Errorf("Fence on missing key = %v; want ErrFenced", err)
		}
	})
	t.Run("RewrittenAfterFence", func(t *testing.T) {
		t1 := begin(t, s)
		defer t1.Discard()
		must(t, t1.Fence([]byte(fence), 3))
		must(t, t1.Set([]byte("y"), []byte("stale")))
		put(t, s, fence, epoch(4))
		if err := t1.Commit(context.Background()); !errors.Is(err, kv.ErrFenced) {
			t.Fatalf("Commit = %v; want ErrFenced", err)
		}
		wantMissing(t, s, "y")
		wantValue(t, s, fence, epoch(4))
	})
	t.Run("RewrittenBeforeFence", func(t *testing.T) {
		t1 := begin(t, s)
		defer t1.Discard()
		put(t, s, fence, epoch(5))
		// The snapshot may still say 4; then the commit must catch it.
		err := t1.Fence([]byte(fence), 4)
		if err == nil {
			must(t, t1.Set([]byte("y"), []byte("stale")))
			err = t1.Commit(context.Background())
		}
		if !errors.Is(err, kv.ErrFenced) {
			t.Fatalf("Fence or Commit = %v; want ErrFenced", err)
		}
		wantMissing(t, s, "y")
	})
}

func testTxnDone(t *testing.T, s kv.Store) {
	ctx := context.Background()
	checkDone := func(t *testing.T, tx kv.Txn) {
		t.Helper()
		_, err := tx.Get([]byte("k"))
		errs := map[string]error{"Get": err}
		_, errs["Scan"] = tx.Scan(kv.Range{}, 0, false)
		errs["Set"] = tx.Set([]byte("k"), []byte("v"))
		errs["Delete"] = tx.Delete([]byte("k"))
		errs["Fence"] = tx.Fence([]byte("f"), 0)
		errs["Commit"] = tx.Commit(ctx)
		for op, err := range errs {
			if !errors.Is(err, kv.ErrTxnDone) {
				t.Errorf("%s after end = %v; want ErrTxnDone", op, err)
			}
		}
	}
	t.Run("AfterCommit", func(t *testing.T) {
		tx := begin(t, s)
		must(t, tx.Set([]byte("committed"), []byte("1")))
		must(t, tx.Commit(ctx))
		tx.Discard() // no-op
		tx.Discard()
		checkDone(t, tx)
		wantValue(t, s, "committed", "1")
	})
	t.Run("AfterReadOnlyCommit", func(t *testing.T) {
		tx := begin(t, s)
		tx.Get([]byte("committed"))
		must(t, tx.Commit(ctx))
		checkDone(t, tx)
	})
	t.Run("AfterDiscard", func(t *testing.T) {
		tx := begin(t, s)
		must(t, tx.Set([]byte("discarded"), []byte("1")))
		tx.Discard()
		checkDone(t, tx)
		wantMissing(t, s, "discarded")
	})
	t.Run("AfterConflict", func(t *testing.T) {
		tx := begin(t, s)
		tx.Get([]byte("committed"))
		must(t, tx.Set([]byte("committed"), []byte("mine")))
		put(t, s, "committed", "theirs")
		if err := tx.Commit(ctx); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("Commit = %v; want ErrConflict", err)
		}
		checkDone(t, tx)
		wantValue(t, s, "committed", "theirs")
	})
}

func testLimits(t *testing.T, s kv.Store) {
	maxKey := bytes.Repeat([]byte("k"), kv.MaxKeyBytes)
	bigKey := bytes.Repeat([]byte("k"), kv.MaxKeyBytes+1)
	maxValue := make([]byte, kv.MaxValueBytes)
	for i := range maxValue {
		maxValue[i] = byte(i * 7)
	}

	tx := begin(t, s)
	defer tx.Discard()
	if err := tx.Set(bigKey, []byte("v")); !errors.Is(err, kv.ErrTooLarge) {
		t.Errorf("Set(big key) = %v; want ErrTooLarge", err)
	}
	if _, err := tx.Get(bigKey); !errors.Is(err, kv.ErrTooLarge) {
		t.Errorf("Get(big key) = %v; want ErrTooLarge", err)
	}
	if err := tx.Delete(bigKey); !errors.Is(err, kv.ErrTooLarge) {
		t.Errorf("Delete(big key) = %v; want ErrTooLarge", err)
	}
	if err := tx.Set([]byte("big"), make([]byte, kv.MaxValueBytes+1)); !errors.Is(err, kv.ErrTooLarge) {
		t.Errorf("Set(big value) = %v; want ErrTooLarge", err)
	}
	// Exactly at the limits is fine.
	must(t, tx.Set(maxKey, []byte("v")))
	must(t, tx.Set([]byte("max"), maxValue))
	must(t, tx.Commit(context.Background()))
	wantValue(t, s, string(maxKey), "v")
	if v, err := read(t, s, "max"); err != nil || !bytes.Equal(v, maxValue) {
		t.Errorf("Get(max) = %d bytes, %v; want the %d-byte value", len(v), err, len(maxValue))
	}

	// A transaction may not buffer more than MaxTxnBytes.
	tx = begin(t, s)
	defer tx.Discard()
	var err error
	for i := 0; err == nil && i <= kv.MaxTxnBytes/kv.MaxValueBytes; i++ {
		err = tx.Set([]byte{'t', byte(i)}, maxValue)
	}
	if !errors.Is(err, kv.ErrTooLarge) {
		t.Errorf("Set beyond MaxTxnBytes = %v; want ErrTooLarge", err)
	}
}

// commitWithRetry runs f in transactions until one commits without
// conflict. It backs off: a key being committed conflicts until the commit's
// sync finishes, so retrying at once would only spin.
func commitWithRetry(s kv.Store, f func(tx kv.Txn) error) error {
	for attempt := range 1000 {
		tx, err := s.Begin(context.Background())
		if err != nil {
			return err
		}
		if err = f(tx); err == nil {
			err = tx.Commit(context.Background())
		}
		tx.Discard()
		if !errors.Is(err, kv.ErrConflict) {
			return err
		}
		time.Sleep(time.Duration(rand.IntN(1<<min(attempt, 10))) * time.Microsecond)
	}
	return errors.New("too many conflicts")
}

func testConcurrentCounters(t *testing.T, s kv.Store) {
	const goroutines, increments, counters = 16, 25, 4
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range increments {
				key := []byte(fmt.Sprintf("ctr/%d", (g+i)%counters))
				err := commitWithRetry(s, func(tx kv.Txn) error {
					n := 0
					v, err := tx.Get(key)
					switch {
					case err == nil:
						if n, err = strconv.Atoi(string(v)); err != nil {
							return err
						}
					case !errors.Is(err, kv.ErrNotFound):
						return err
					}
					return tx.Set(key, []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Errorf("goroutine %d increment %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := model{}
	for g := range goroutines {
		for i := range increments {
			k := fmt.Sprintf("ctr/%d", (g+i)%counters)
			n, _ := strconv.Atoi(want[k])
			want[k] = strconv.Itoa(n + 1)
		}
	}
	tx := begin(t, s)
	defer tx.Discard()
	checkScan(t, tx, want, kv.PrefixRange([]byte("ctr/")), 0, false)
}

// testConcurrentTransfers moves units between accounts while readers check
// that every snapshot sees the same total: no reader sees half a commit.
func testConcurrentTransfers(t *testing.T, s kv.Store) {
	const accounts, initial, movers, transfers, readers = 5, 100, 6, 20, 2
	update(t, s, func(tx kv.Txn) {
		for a := range accounts {
			must(t, tx.Set(accountKey(a), []byte(strconv.Itoa(initial))))
		}
	})
	var wg, moversWG sync.WaitGroup
	done := make(chan struct{})
	for m := range movers {
		moversWG.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(m), 7))
			for range transfers {
				from, to := rng.IntN(accounts), rng.IntN(accounts)
				if err := commitWithRetry(s, func(tx kv.Txn) error { return transfer(tx, from, to) }); err != nil {
					t.Errorf("transfer: %v", err)
					return
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				tx, err := s.Begin(context.Background())
				if err != nil {
					t.Errorf("Begin: %v", err)
					return
				}
				sum, err := totalBalance(tx)
				tx.Discard()
				if err != nil || sum != accounts*initial {
					t.Errorf("reader saw total %d, %v; want %d", sum, err, accounts*initial)
					return
				}
			}
		})
	}
	moversWG.Wait()
	close(done)
	wg.Wait()
	tx := begin(t, s)
	defer tx.Discard()
	if sum, err := totalBalance(tx); err != nil || sum != accounts*initial {
		t.Fatalf("final total %d, %v; want %d", sum, err, accounts*initial)
	}
}

func accountKey(a int) []byte { return []byte(fmt.Sprintf("acct/%d", a)) }

// transfer moves one unit from one account to another.
func transfer(tx kv.Txn, from, to int) error {
	for _, d := range []struct{ acct, delta int }{{from, -1}, {to, +1}} {
		key := accountKey(d.acct)
		v, err := tx.Get(key)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return err
		}
		if err := tx.Set(key, []byte(strconv.Itoa(n+d.delta))); err != nil {
			return err
		}
	}
	return nil
}

// totalBalance sums every account's balance.
func totalBalance(tx kv.Txn) (int, error) {
	kvs, err := tx.Scan(kv.PrefixRange([]byte("acct/")), 0, false)
	if err != nil {
		return 0, err
	}
	sum := 0
	for _, p := range kvs {
		n, err := strconv.Atoi(string(p.Value))
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
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
