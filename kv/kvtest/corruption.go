package kvtest

import (
	"errors"
	"testing"

	"github.com/kelpie/kelpie/kv"
)

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
