package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kelpie/kelpie/kv"
)

// snapshot is a kv.Snapshot: a REPEATABLE READ READ ONLY transaction on a
// connection of its own, which records what it served (the read set that
// CommitSnapshot validates).
type snapshot struct {
	e   *Engine
	ctx context.Context // the kv transaction's: it bounds the reads

	mu    sync.Mutex       // Engine.Close may end the snapshot from another goroutine
	conn  *pgxpool.Conn    // nil once closed
	err   error            // the first failed read: the transaction is aborted
	reads map[string]int64 // the version of each key read; 0: absent
	scans []scanned
	at    time.Time // when it was taken, by the server's clock
}

var _ kv.TimedSnapshot = (*snapshot)(nil)

// Time implements kv.TimedSnapshot.
func (s *snapshot) Time() time.Time { return s.at }

// scanned is one scan's read set: the part of the range it covered, and
// the keys there with their versions, in key order.
type scanned struct {
	covered kv.Range
	keys    [][]byte
	vers    []int64
}

// beginSQL starts the snapshot. Postgres takes a transaction's snapshot at
// its first statement, not at BEGIN: the SELECT fixes it at Begin, as kv
// requires, and reads the server's clock then (microseconds since the
// Unix epoch; now() is the transaction's start, as in CockroachDB), the
// snapshot's Time: the one clock every node sharing the database reads.
const beginSQL = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT (extract(epoch FROM now()) * 1000000)::BIGINT"

// BeginSnapshot implements kv.SharedEngine.
func (e *Engine) BeginSnapshot(ctx context.Context) (kv.Snapshot, error) {
	if e.isClosed() {
		return nil, kv.ErrClosed
	}
	octx, cancel := e.op(ctx)
	defer cancel()
	conn, err := e.pool.Acquire(octx)
	if err != nil {
		return nil, e.fail(ctx, "begin", err)
	}
	at, err := begin(octx, conn)
	if err != nil {
		conn.Release()
		return nil, e.fail(ctx, "begin", err)
	}
	s := &snapshot{e: e, ctx: ctx, conn: conn, reads: map[string]int64{}, at: at}
	e.mu.Lock()
	closed := e.closed
	if !closed {
		e.snaps[s] = struct{}{}
	}
	e.mu.Unlock()
	if closed {
		s.abandon()
		return nil, kv.ErrClosed
	}
	return s, nil
}

// begin runs beginSQL on conn and returns the server's time it read.
func begin(ctx context.Context, conn *pgxpool.Conn) (time.Time, error) {
	res, err := conn.Conn().PgConn().Exec(ctx, beginSQL).ReadAll()
	if err != nil {
		return time.Time{}, err
	}
	if len(res) != 2 || len(res[1].Rows) != 1 || len(res[1].Rows[0]) != 1 {
		return time.Time{}, fmt.Errorf("the server's time: %d results to %q", len(res), beginSQL)
	}
	us, err := strconv.ParseInt(string(res[1].Rows[0][0]), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("the server's time: %w", err)
	}
	return time.UnixMicro(us).UTC(), nil
}

// usable says why the snapshot can serve nothing more, if it cannot: it
// was released, or a failure aborted its transaction. Call it under s.mu.
func (s *snapshot) usable() error {
	switch {
	case s.conn == nil:
		return kv.ErrClosed
	case s.err != nil:
		return s.err
	}
	return nil
}

// read runs one read on the snapshot's connection, under its lock; a
// failure ends the snapshot's usefulness, as it aborts the transaction.
func (s *snapshot) read(what string, f func(ctx context.Context) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	ctx, cancel := s.e.op(s.ctx)
	defer cancel()
	if err := f(ctx); err != nil {
		s.err = s.e.fail(s.ctx, what, err)
		return s.err
	}
	return nil
}

func (s *snapshot) Get(key []byte) ([]byte, error) {
	var v []byte
	var ver int64
	found := true
	err := s.read("get", func(ctx context.Context) error {
		err := s.conn.QueryRow(ctx, sqlGet, key).Scan(&v, &ver)
		if errors.Is(err, pgx.ErrNoRows) {
			found, ver, err = false, 0, nil
		}
		if err == nil {
			s.reads[string(key)] = ver
		}
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !found:
		return nil, kv.ErrNotFound
	}
	return v, nil
}

func (s *snapshot) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	if r.End != nil && bytes.Compare(r.Start, r.End) >= 0 {
		return nil, nil
	}
	var out []kv.KeyValue
	err := s.read("scan", func(ctx context.Context) error {
		out = nil
		rows, err := s.conn.Query(ctx, scanSQL("k, v, ver", r.End != nil, limit > 0, reverse), scanArgs(r, limit)...)
		if err != nil {
			return err
		}
		rec := scanned{covered: kv.Range{Start: bytes.Clone(r.Start), End: bytes.Clone(r.End)}}
		for rows.Next() {
			var p kv.KeyValue
			var ver int64
			if err := rows.Scan(&p.Key, &p.Value, &ver); err != nil {
				rows.Close()
				return err
			}
			out = append(out, p)
			rec.keys, rec.vers = append(rec.keys, p.Key), append(rec.vers, ver)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if limit > 0 && len(out) == limit {
			// The scan stopped at its limit: it read only up to its last key.
			last := out[len(out)-1].Key
			if reverse {
				rec.covered.Start = bytes.Clone(last)
			} else {
				rec.covered.End = append(bytes.Clone(last), 0)
			}
		}
		if reverse {
			slices.Reverse(rec.keys)
			slices.Reverse(rec.vers)
		}
		s.scans = append(s.scans, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Close ends the database transaction, unless a commit did, and returns
// its connection.
func (s *snapshot) Close() error {
	s.e.mu.Lock()
	delete(s.e.snaps, s)
	s.e.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	if s.conn.Conn().PgConn().TxStatus() != 'I' { // no commit ended it
		// Not the transaction's context, which may be over: the
		// connection must be left idle. If the rollback fails, Release
		// discards it.
		ctx, cancel := s.e.op(context.Background())
		defer cancel()
		s.conn.Exec(ctx, "ROLLBACK")
	}
	s.conn.Release()
	s.conn = nil
	return nil
}

// abandon drops the connection without a word to the server (the engine is
// closing): the server rolls the transaction back when it sees the
// connection close.
func (s *snapshot) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return
	}
	s.conn.Hijack().PgConn().Conn().Close()
	s.conn = nil
}

// readSet returns the keys read, sorted, with their versions, and the
// scans. Called holding s.mu.
func (s *snapshot) readSet() (keys [][]byte, vers map[string]int64, scans []scanned) {
	for k := range s.reads {
		keys = append(keys, []byte(k))
	}
	slices.SortFunc(keys, bytes.Compare)
	return keys, s.reads, s.scans
}
