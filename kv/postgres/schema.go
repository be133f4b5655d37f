package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A migration takes the schema from the version before it to its own.
type migration struct {
	version     int
	description string
	statements  []string
}

// migrations are Kelpie's schema, in order; never edit one that shipped,
// append a new one.
var migrations = []migration{
	{1, "the key-value table: each key's sealed value and the version of the commit that wrote it", []string{
		`CREATE TABLE kelpie_kv (k BYTEA PRIMARY KEY, v BYTEA NOT NULL, ver BIGINT NOT NULL)`,
	}},
}

// SchemaVersion is the schema version this binary creates and knows.
var SchemaVersion = migrations[len(migrations)-1].version

// sqlSchemaTable records every migration applied, one row each.
const sqlSchemaTable = `CREATE TABLE IF NOT EXISTS kelpie_schema (
	version INT PRIMARY KEY,
	description TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`

// Migrating nodes that start together race; the losers retry at once (the
// winner has committed by the time they fail) and find the work done.
const migrateAttempts = 10

// VersionError is the refusal to open a database whose schema is newer than
// this binary's.
type VersionError struct {
	Database, Binary int
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("postgres: the database's Kelpie schema is version %d, newer than this kelpie's %d: run a kelpie that knows version %d (an older one cannot tell what the newer schema means)", e.Database, e.Binary, e.Database)
}

// migrate brings the schema to the newest of ms, in one transaction per
// attempt; several nodes may migrate at once, and exactly one applies each
// migration.
func (e *Engine) migrate(ctx context.Context, ms []migration) error {
	for attempt := 1; ; attempt++ {
		err := e.migrateOnce(ctx, ms)
		var pe *pgconn.PgError
		// Concurrent schema changes fail with a serialization failure,
		// a duplicate table or type, or a unique violation on the catalogs.
		raced := errors.As(err, &pe) && slices.Contains([]string{"40001", "42P07", "42710", "23505"}, pe.Code)
		if !raced || attempt == migrateAttempts {
			if err != nil && !errors.As(err, new(*VersionError)) {
				return e.fail(ctx, "schema migration", err)
			}
			return err
		}
	}
}

func (e *Engine) migrateOnce(ctx context.Context, ms []migration) error {
	octx, cancel := e.op(ctx)
	defer cancel()
	if _, err := e.pool.Exec(octx, sqlSchemaTable); err != nil {
		return err
	}
	return pgx.BeginTxFunc(octx, e.pool, pgx.TxOptions{IsoLevel: pgx.Serializable}, func(tx pgx.Tx) error {
		var current int
		if err := tx.QueryRow(octx, `SELECT coalesce(max(version), 0) FROM kelpie_schema`).Scan(&current); err != nil {
			return err
		}
		if newest := ms[len(ms)-1].version; current > newest {
			return &VersionError{Database: current, Binary: newest}
		}
		for _, m := range ms {
			if m.version <= current {
				continue
			}
			for _, stmt := range m.statements {
				if _, err := tx.Exec(octx, stmt); err != nil {
					return fmt.Errorf("schema version %d: %w", m.version, err)
				}
			}
			if _, err := tx.Exec(octx, `INSERT INTO kelpie_schema (version, description) VALUES ($1, $2)`, m.version, m.description); err != nil {
				return err
			}
		}
		return nil
	})
}
