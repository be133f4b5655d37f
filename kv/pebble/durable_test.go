package pebble

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
)

// Spec: a WAL truncated after its writes were acknowledged is not taken
// for a torn tail. Open refuses the DB, saying since when acknowledged
// writes are missing; a read-only open reports the loss; AcceptLoss opens
// it, and the loss it accepted is not reported again.
func TestTruncatedWALIsRefused(t *testing.T) {
	const writes = 200
	// A clock that stands still: each session checkpoints at its first
	// write and at Close, however long its writes take.
	clk := kelpietest.NewStepClock(time.Unix(0, 0))
	dir := filepath.Join(t.TempDir(), "db")
	db := kv.NewDB(openEngine(t, dir, Options{Logger: quiet(), Clock: clk}))
	for i := range writes {
		if err := put(db, fmt.Sprintf("k%04d", i), "value"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// A clean reopen loses nothing and reports nothing. (It flushes the
	// WAL it replayed to a table: the batches below stay in the new WAL.)
	eng := openEngine(t, dir, Options{Logger: quiet(), Clock: clk})
	if l := eng.Loss(); l != nil {
		t.Fatalf("clean reopen reports a loss: %v", l)
	}
	db = kv.NewDB(eng)
	for i := range writes {
		if err := put(db, fmt.Sprintf("k%04d", i), "value again"); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	kelpietest.TruncateWALs(t, dir)
	_, err := Open(dir, Options{Logger: quiet(), Clock: clk})
	var loss *Loss
	if !errors.As(err, &loss) || !errors.Is(err, kv.ErrCorrupt) {
		t.Fatalf("open after a truncated WAL: %v, want a Loss that is kv.ErrCorrupt", err)
	}
	// Two checkpoints per session: at its first write, and at Close.
	if loss.Durable != 4 || loss.Recovered != 3 {
		t.Fatalf("loss %+v: want checkpoint 4 durable, 3 recovered", loss)
	}
	t.Logf("%v", err)

	ro := openEngine(t, dir, Options{Logger: quiet(), Clock: clk, ReadOnly: true})
	if l := ro.Loss(); l == nil || *l != *loss {
		t.Fatalf("read-only open reports %v, want %v", l, loss)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Logger: quiet(), Clock: clk}); !errors.As(err, &loss) {
		t.Fatalf("a read-only open accepted the loss: %v", err)
	}

	accepted := openEngine(t, dir, Options{Logger: quiet(), Clock: clk, AcceptLoss: true})
	if l := accepted.Loss(); l == nil || *l != *loss {
		t.Fatalf("AcceptLoss open reports %v, want %v", l, loss)
	}
	db = kv.NewDB(accepted)
	if err := put(db, "after", "loss"); err != nil {
		t.Fatalf("write after an accepted loss: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	eng = openEngine(t, dir, Options{Logger: quiet(), Clock: clk})
	defer eng.Close()
	if l := eng.Loss(); l != nil {
		t.Fatalf("an accepted loss is reported again: %v", l)
	}
	if v, err := get(kv.NewDB(eng), "after"); err != nil || v != "loss" {
		t.Fatalf("write after the accepted loss: %q, %v", v, err)
	}
}
