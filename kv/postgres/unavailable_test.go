package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
)

// Spec: while the database server is down, reads and commits fail with
// kv.ErrUnavailable, and nothing is applied; when it is back the same
// engine serves again at once (its pool reconnects), with every
// acknowledged write there.
func TestServerDownAndBack(t *testing.T) {
	srv := pgtest.NewServer(t)
	url, err := srv.CreateDatabase("kelpie")
	if err != nil {
		t.Fatal(err)
	}
	db := kv.NewDB(openURL(t, url))
	put(t, db, "k", []byte("before"))
	open, err := db.Begin(context.Background()) // open across the outage
	if err != nil {
		t.Fatal(err)
	}
	defer open.Discard()
	if _, err := open.Get([]byte("k")); err != nil {
		t.Fatal(err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Begin(context.Background()); !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("Begin with the server down: %v; want ErrUnavailable", err)
	}
	if _, err := open.Get([]byte("other")); !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("a read with the server down: %v; want ErrUnavailable", err)
	}
	if err := open.Set([]byte("k"), []byte("during")); err != nil {
		t.Fatal(err)
	}
	if err := open.Commit(context.Background()); !errors.Is(err, kv.ErrUnavailable) {
		t.Errorf("a commit with the server down: %v; want ErrUnavailable", err)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, db, "k"); err != nil || string(v) != "before" {
		t.Fatalf("after the server is back: %q, %v; want the write acknowledged before", v, err)
	}
	put(t, db, "k", []byte("after"))
	if v, err := get(t, db, "k"); err != nil || string(v) != "after" {
		t.Fatalf("a write after the server is back: %q, %v", v, err)
	}
}
