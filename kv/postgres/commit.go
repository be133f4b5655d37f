package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kelpie/kelpie/kv"
)

// CommitSnapshot implements kv.SharedEngine: in one SERIALIZABLE
// transaction, on the snapshot's connection once its transaction is over,
// it reads again the versions of what snap served, locks the fence keys,
// and writes batch; it commits only if nothing read changed and every
// fence holds its epoch.
func (e *Engine) CommitSnapshot(ctx context.Context, snap kv.Snapshot, batch []kv.Mutation, fences map[string]uint64) error {
	s, ok := snap.(*snapshot)
	if !ok || s.e != e {
		return errors.New("postgres: commit of a snapshot this engine did not begin")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	keys, vers, scans := s.readSet()
	written := make(map[string]bool, len(batch))
	for _, m := range batch {
		written[string(m.Key)] = true
	}
	var fenceKeys, absent [][]byte // absent: those this commit does not write
	for k := range fences {
		fenceKeys = append(fenceKeys, []byte(k))
		if !written[k] {
			absent = append(absent, []byte(k))
		}
	}
	slices.SortFunc(fenceKeys, bytes.Compare)
	slices.SortFunc(absent, bytes.Compare)

	queue := func(b *pgx.Batch) {
		if len(keys) > 0 {
			b.Queue(sqlVers, keys)
		}
		for _, sc := range scans {
			b.Queue(scanSQL("k, ver", sc.covered.End != nil, false, false), scanArgs(sc.covered, 0)...)
		}
		if len(fenceKeys) > 0 {
			b.Queue(sqlLockFences, fenceKeys)
		}
		if len(absent) > 0 {
			b.Queue(sqlClaimAbsent, absent)
			b.Queue(sqlFreeAbsent, absent)
		}
		queueWrites(b, batch, newVersion())
	}
	validate := func(br pgx.BatchResults) error {
		var conflict error
		if len(keys) > 0 {
			now, err := collectVersions(br)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if now[string(k)] != vers[string(k)] {
					if _, fenced := fences[string(k)]; fenced {
						return fmt.Errorf("%w: fence key %q was rewritten", kv.ErrFenced, k)
					}
					conflict = cmp.Or(conflict, fmt.Errorf("%w: key %q changed", kv.ErrConflict, k))
				}
			}
		}
		for _, sc := range scans {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			same, err := sameScan(rows, sc)
			if err != nil {
				return err
			}
			if !same {
				conflict = cmp.Or(conflict, fmt.Errorf("%w: a key changed in scanned range %q-%q", kv.ErrConflict, sc.covered.Start, sc.covered.End))
			}
		}
		if len(fenceKeys) > 0 {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			held, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pair])
			if err != nil {
				return err
			}
			if err := checkFences(fences, held); err != nil {
				return err
			}
		}
		return conflict
	}
	err := e.writeTxn(ctx, "commit", s.conn.Conn(), queue, validate)
	if errors.Is(err, kv.ErrConflict) && len(fences) > 0 {
		// The conflict may be a fence rewritten after the commit began
		// (its lock failed): that is the answer to give.
		if moved := e.fencesMoved(ctx, fenceKeys, fences); moved != nil {
			return moved
		}
	}
	return err
}

// pair is a row of key and value.
type pair struct {
	K []byte
	V []byte
}

// collectVersions reads a result of (k, ver) rows into a map.
func collectVersions(br pgx.BatchResults) (map[string]int64, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	now := map[string]int64{}
	var k []byte
	var ver int64
	_, err = pgx.ForEachRow(rows, []any{&k, &ver}, func() error {
		now[string(k)] = ver
		return nil
	})
	return now, err
}

// sameScan reports whether rows, a (k, ver) scan of sc's range now, hold
// exactly what sc read.
func sameScan(rows pgx.Rows, sc scanned) (bool, error) {
	i := 0
	same := true
	var k []byte
	var ver int64
	_, err := pgx.ForEachRow(rows, []any{&k, &ver}, func() error {
		if i >= len(sc.keys) || !bytes.Equal(k, sc.keys[i]) || ver != sc.vers[i] {
			same = false
		}
		i++
		return nil
	})
	return same && i == len(sc.keys), err
}

// checkFences returns ErrFenced unless each fence key holds its epoch in
// held (a key missing from held holds epoch 0).
func checkFences(fences map[string]uint64, held []pair) error {
	stored := make(map[string][]byte, len(held))
	for _, p := range held {
		stored[string(p.K)] = p.V
	}
	for k, epoch := range fences {
		var have uint64
		if v, ok := stored[k]; ok {
			value, err := kv.Unseal([]byte(k), v)
			if err == nil {
				have, err = kv.ParseEpoch(value)
			}
			if err != nil {
				return fmt.Errorf("kv: fence %q: %w", k, err)
			}
		}
		if have != epoch {
			return fmt.Errorf("%w: key %q holds epoch %d, fenced on %d", kv.ErrFenced, k, have, epoch)
		}
	}
	return nil
}

// fencesMoved reads the fence keys as they are now: ErrFenced if one moved,
// nil if none did or they cannot be read.
func (e *Engine) fencesMoved(ctx context.Context, keys [][]byte, fences map[string]uint64) error {
	octx, cancel := e.op(ctx)
	defer cancel()
	rows, err := e.pool.Query(octx, sqlReadFences, keys)
	if err != nil {
		return nil
	}
	held, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pair])
	if err != nil {
		return nil
	}
	if err := checkFences(fences, held); errors.Is(err, kv.ErrFenced) {
		return err
	}
	return nil
}

// writeTxn runs a SERIALIZABLE transaction on conn (ending the transaction
// it is in, a snapshot's): it sends what queue queues in one round trip,
// lets check read the first results (its error, a verdict, rolls back),
// and commits. Any error but one from COMMIT means nothing was applied; a
// COMMIT that went unanswered leaves the outcome unknown. A connection
// left mid-transaction by a failure is discarded when released.
func (e *Engine) writeTxn(ctx context.Context, what string, conn *pgx.Conn, queue func(*pgx.Batch), check func(pgx.BatchResults) error) error {
	if e.isClosed() {
		return kv.ErrClosed
	}
	octx, cancel := e.op(ctx)
	defer cancel()
	b := &pgx.Batch{}
	inTxn := conn.PgConn().TxStatus() != 'I'
	if inTxn {
		b.Queue("ROLLBACK")
	}
	b.Queue("BEGIN ISOLATION LEVEL SERIALIZABLE")
	queue(b)
	br := conn.SendBatch(octx, b)
	_, err := br.Exec()
	if err == nil && inTxn {
		_, err = br.Exec()
	}
	var verdict error
	if err == nil && check != nil {
		verdict = check(br)
	}
	err = cmp.Or(err, br.Close())
	if verdict != nil && (errors.Is(verdict, kv.ErrConflict) || errors.Is(verdict, kv.ErrFenced) || errors.Is(verdict, kv.ErrCorrupt)) {
		conn.Exec(octx, "ROLLBACK")
		return verdict
	}
	if err = cmp.Or(verdict, err); err != nil {
		conn.Exec(octx, "ROLLBACK")
		return e.fail(ctx, what, err)
	}
	if _, err := conn.Exec(octx, "COMMIT"); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			// The server answered: the transaction was rolled back.
			return e.fail(ctx, what, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("postgres %s, outcome unknown: %w", what, ctx.Err())
		}
		return fmt.Errorf("%w: postgres %s, outcome unknown: %w", kv.ErrUnavailable, what, err)
	}
	return nil
}
