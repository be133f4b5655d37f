package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/postgres/pgtest"
)

// schemaVersions returns the versions kelpie_schema records, in order.
func schemaVersions(t *testing.T, url string) []int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, _ := conn.Query(t.Context(), `SELECT version FROM kelpie_schema ORDER BY version`)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	return versions
}

// openAll opens n engines on url at once and fails t unless all open.
func openAll(t *testing.T, url string, n int, ms []migration) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			e, err := open(context.Background(), url, ms)
			if err == nil {
				e.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("opening %d nodes at once: %v", n, err)
	}
}

// Spec: Open creates the schema in an empty database and records its
// version, even when several nodes start at once; opening again changes
// nothing and keeps the data.
func TestSchemaCreated(t *testing.T) {
	url := pgtest.NewDatabase(t)
	openAll(t, url, 4, migrations)
	if got := schemaVersions(t, url); !slices.Equal(got, []int{SchemaVersion}) {
		t.Fatalf("schema versions %v; want [%d]", got, SchemaVersion)
	}
	db := kv.NewDB(openURL(t, url))
	put(t, db, "k", []byte("v"))
	db.Close()
	db = kv.NewDB(openURL(t, url))
	if v, err := get(t, db, "k"); err != nil || string(v) != "v" {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	if got := schemaVersions(t, url); !slices.Equal(got, []int{SchemaVersion}) {
		t.Fatalf("schema versions after reopening %v", got)
	}
}

// Spec: a schema older than the binary's is migrated at open, each
// migration once (nodes starting at once race safely), keeping the data;
// a binary older than the schema then refuses the database, naming both
// versions.
func TestSchemaMigratedAndNewerRefused(t *testing.T) {
	url := pgtest.NewDatabase(t)
	db := kv.NewDB(openURL(t, url))
	put(t, db, "k", []byte("v"))
	db.Close()

	next := SchemaVersion + 1
	newer := append(slices.Clip(migrations), migration{next, "test: a table the next version adds", []string{
		`CREATE TABLE kelpie_test_next (x INT PRIMARY KEY)`,
		`INSERT INTO kelpie_test_next VALUES (1)`,
	}})
	openAll(t, url, 4, newer)
	if got, want := schemaVersions(t, url), []int{SchemaVersion, next}; !slices.Equal(got, want) {
		t.Fatalf("schema versions %v; want %v", got, want)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var rows int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM kelpie_test_next`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("the migration ran %d times, %v; want once", rows, err)
	}

	_, err = Open(context.Background(), url)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Database != next || ve.Binary != SchemaVersion {
		t.Fatalf("Open of a newer schema: %v; want a VersionError", err)
	}
	for _, want := range []string{"version 2", "kelpie's 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal %q does not say %q", err, want)
		}
	}
}
