package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/kelpie/kelpie/kv"
)

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
	// A commit of several keys conflicts when one of them, not the
	// first, is in the range, and not when they only surround it.
	sets := func(keys ...string) func(kv.Txn) {
		return func(tx kv.Txn) {
			for _, k := range keys {
				set(k, "x")(tx)
			}
		}
	}
	t.Run("ScannedRangeAmongKeys", func(t *testing.T) {
		conflictCase(t, s, scan(kv.PrefixRange([]byte("r/"))), sets("a", "r/c", "zz"), true)
	})
	t.Run("KeysAroundScannedRange", func(t *testing.T) {
		conflictCase(t, s, scan(kv.PrefixRange([]byte("r/"))), sets("a", "r0", "zz"), false)
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
