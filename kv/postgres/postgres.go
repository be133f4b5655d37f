package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kelpie/kelpie/kv"
)

const (
	// DefaultMaxConns is the pool size when the URL sets no pool_max_conns:
	// how many transactions may be open at once (see the package doc).
	DefaultMaxConns = 32
	// ConnectTimeout bounds connecting when the URL sets no connect_timeout.
	ConnectTimeout = 5 * time.Second
	// StatementTimeout bounds each round trip to the database, so that a
	// server that stops answering fails requests instead of holding them.
	StatementTimeout = 30 * time.Second
)

// Engine is a kv.SharedEngine on a Postgres database. Use it through
// kv.NewDB.
type Engine struct {
	pool    *pgxpool.Pool
	closing context.Context // done once Close begins: interrupts every round trip
	stop    context.CancelFunc

	mu     sync.Mutex
	closed bool
	snaps  map[*snapshot]struct{} // open snapshots, each holding a connection
}

var _ kv.SharedEngine = (*Engine)(nil)

// Open connects to the database at url (a postgres:// URL or key=value
// string, as libpq and pgx take them) and creates or migrates Kelpie's
// schema there. It fails if the database cannot be reached or its schema is
// newer than this binary's (a *VersionError).
func Open(ctx context.Context, url string) (*Engine, error) {
	return open(ctx, url, migrations)
}

// open is Open with the schema's migrations ms.
func open(ctx context.Context, url string, ms []migration) (*Engine, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	cfg.AfterConnect = indexScansOnly
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	closing, stop := context.WithCancel(context.Background())
	e := &Engine{pool: pool, closing: closing, stop: stop, snaps: map[*snapshot]struct{}{}}
	if err := e.migrate(ctx, ms); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// indexScansOnly keeps Postgres's planner from reading the kv table by a
// sequential scan, which it prefers while the table is small: in a
// serializable transaction a sequential scan locks the whole table for
// conflict detection, so that every concurrent commit conflicts with it.
// Every query here looks up keys or key ranges, for which the primary
// key's index is right. (CockroachDB, which has no such setting and
// tracks reads by key span anyway, is left alone.)
func indexScansOnly(ctx context.Context, conn *pgx.Conn) error {
	if conn.PgConn().ParameterStatus("crdb_version") != "" {
		return nil
	}
	_, err := conn.Exec(ctx, "SET enable_seqscan = off")
	return err
}

// Close implements kv.Engine: it interrupts what is in flight, ends the
// open snapshots (their transactions fail afterwards) and closes the pool.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	snaps := e.snaps
	e.snaps = nil
	e.mu.Unlock()
	e.stop()
	for s := range snaps {
		s.abandon()
	}
	e.pool.Close()
	return nil
}

func (e *Engine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// op returns the context of one round trip for a caller's ctx: bounded by
// StatementTimeout, and cancelled when the engine closes.
func (e *Engine) op(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, StatementTimeout)
	unhook := context.AfterFunc(e.closing, cancel)
	return ctx, func() { unhook(); cancel() }
}

// fail classifies err from a round trip made for the caller's ctx (see the
// package doc); what says what was being done.
func (e *Engine) fail(ctx context.Context, what string, err error) error {
	switch {
	case err == nil:
		return nil
	case e.isClosed():
		return fmt.Errorf("%w: postgres %s: %v", kv.ErrClosed, what, err)
	case ctx.Err() != nil:
		return fmt.Errorf("postgres %s: %w", what, ctx.Err())
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// No answer from the server: it could not be reached, the
		// connection broke, or it did not answer in time. The pooled
		// connections are likely as dead (a server restarted): drop them,
		// so that the first requests after it is back do not fail too.
		e.pool.Reset()
		return fmt.Errorf("%w: postgres %s: %w", kv.ErrUnavailable, what, err)
	}
	var kind error
	switch code := pe.Code; {
	case code == "40001", code == "40P01": // serialization failure, deadlock
		kind = kv.ErrConflict
	case code == "53100": // disk full
		kind = kv.ErrDiskFull
	case code == "XX001", code == "XX002": // data or index corrupted
		kind = kv.ErrCorrupt
	case strings.HasPrefix(code, "08"), // connection exception
		code == "57P01", code == "57P02", code == "57P03", // shutting down, crashed, starting up
		code == "57P05", code == "25P03", // idle session or idle-in-transaction timeout
		code == "57014", // a statement cancelled (by its timeout, or an operator)
		code == "53300", // too many connections
		code == "25006": // read-only transaction: a standby
		e.pool.Reset()
		kind = kv.ErrUnavailable
	default:
		return fmt.Errorf("postgres %s: %w", what, err)
	}
	return fmt.Errorf("%w: postgres %s: %w", kind, what, err)
}

// The kv table: each key's sealed value and the version of the commit that
// wrote it.
const (
	sqlGet    = `SELECT v, ver FROM kelpie_kv WHERE k = $1`
	sqlVers   = `SELECT k, ver FROM kelpie_kv WHERE k = ANY($1)`
	sqlUpsert = `INSERT INTO kelpie_kv (k, v, ver) SELECT k, v, $3 FROM unnest($1::BYTEA[], $2::BYTEA[]) AS w (k, v)
		ON CONFLICT (k) DO UPDATE SET v = excluded.v, ver = excluded.ver`
	sqlDelete = `DELETE FROM kelpie_kv WHERE k = ANY($1)`
	// Fences: lock those present (a commit after this transaction's
	// snapshot that changed one fails the lock); claim and release the
	// absent ones, which conflicts with any transaction creating them.
	sqlLockFences  = `SELECT k, v FROM kelpie_kv WHERE k = ANY($1) FOR UPDATE`
	sqlClaimAbsent = `INSERT INTO kelpie_kv (k, v, ver) SELECT k, '', 0 FROM unnest($1::BYTEA[]) AS f (k) ON CONFLICT (k) DO NOTHING`
	sqlFreeAbsent  = `DELETE FROM kelpie_kv WHERE k = ANY($1) AND ver = 0`
	sqlReadFences  = `SELECT k, v FROM kelpie_kv WHERE k = ANY($1)`
)

// scanSQL is the query of a range scan: $1 the start, then the end if
// bounded, then the limit if any.
func scanSQL(columns string, bounded, limited, reverse bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s FROM kelpie_kv WHERE k >= $1", columns)
	n := 1
	if bounded {
		n++
		fmt.Fprintf(&b, " AND k < $%d", n)
	}
	b.WriteString(" ORDER BY k")
	if reverse {
		b.WriteString(" DESC")
	}
	if limited {
		n++
		fmt.Fprintf(&b, " LIMIT $%d", n)
	}
	return b.String()
}

// scanArgs are the arguments of scanSQL for r (and limit, if > 0).
func scanArgs(r kv.Range, limit int) []any {
	args := []any{nonNil(r.Start)}
	if r.End != nil {
		args = append(args, r.End)
	}
	if limit > 0 {
		args = append(args, limit)
	}
	return args
}

// nonNil makes a nil key the empty key, which Postgres compares as the
// smallest (a nil would be NULL, which compares as nothing).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// newVersion returns the version of one commit: random, so that no two
// commits from any nodes share one, and never 0 (which marks an absent key
// in a read set, and a fence claim in the table).
func newVersion() int64 {
	for {
		if v := rand.Int64(); v != 0 {
			return v
		}
	}
}

// queueWrites queues the batch's writes, each row stamped with ver.
func queueWrites(b *pgx.Batch, batch []kv.Mutation, ver int64) {
	var setKeys, setValues, delKeys [][]byte
	for _, m := range batch {
		if m.Value == nil {
			delKeys = append(delKeys, m.Key)
		} else {
			setKeys, setValues = append(setKeys, m.Key), append(setValues, m.Value)
		}
	}
	if len(setKeys) > 0 {
		b.Queue(sqlUpsert, setKeys, setValues, ver)
	}
	if len(delKeys) > 0 {
		b.Queue(sqlDelete, delKeys)
	}
}

// Apply implements kv.Engine: it writes batch as it is, validating
// nothing (kv.DB commits through CommitSnapshot; Apply is for tools and
// tests that write an engine directly).
func (e *Engine) Apply(batch []kv.Mutation) error {
	ctx := context.Background()
	octx, cancel := e.op(ctx)
	defer cancel()
	conn, err := e.pool.Acquire(octx)
	if err != nil {
		return e.fail(ctx, "apply", err)
	}
	defer conn.Release()
	queue := func(b *pgx.Batch) { queueWrites(b, batch, newVersion()) }
	return e.writeTxn(ctx, "apply", conn.Conn(), queue, nil)
}

// NewSnapshot implements kv.Engine.
func (e *Engine) NewSnapshot() (kv.Snapshot, error) {
	return e.BeginSnapshot(context.Background())
}
