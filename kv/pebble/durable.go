package pebble

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kelpie/kelpie/kv"
)

// Pebble replays a WAL up to its first damaged or missing record and takes
// the rest for a torn tail. After a crash that is right: the tail was never
// synced, so never acknowledged. But a WAL truncated or lost after its
// writes were acknowledged replays the same way, and acknowledged writes
// would vanish without a word. To tell the two apart, a batch at most every
// checkpointInterval, and a last one at Close, also writes a checkpoint (a
// number and a time) under checkpointKey; once it is durable, it is copied
// to a marker file beside the DB. A DB that recovers an older checkpoint
// than its marker holds has lost acknowledged writes: Open refuses it.
//
// The check covers every write acknowledged before the last marked
// checkpoint: all of them after a clean Close, all but about the last
// checkpointInterval's after a crash. Checkpoints are rare so that they
// cost nothing: one more key in every batch took 15% off commits/s at 64
// writers (BenchmarkDBCommit).

// checkpointKey holds the last checkpoint written. It begins with
// kv.EngineKeyPrefix, so no record can collide with it, and scans skip it.
var checkpointKey = []byte{kv.EngineKeyPrefix, 'c', 'h', 'e', 'c', 'k', 'p', 'o', 'i', 'n', 't'}

// markerName is the marker file, in the DB's directory.
const markerName = "KELPIE-DURABLE"

// checkpointInterval is the least time between two checkpoints while
// batches are written.
const checkpointInterval = time.Second

// checkpoint is a point in the sequence of batches: the number of
// checkpoints before it, and when it was written.
type checkpoint struct {
	n  uint64
	at time.Time
}

// encode is the checkpoint's stored form: 16 bytes, the number and the
// time in Unix nanoseconds, big-endian.
func (c checkpoint) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, c.n)
	return binary.BigEndian.AppendUint64(b, uint64(c.at.UnixNano()))
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	if len(b) != 16 {
		return checkpoint{}, fmt.Errorf("a checkpoint of %d bytes, not 16: %w", len(b), kv.ErrCorrupt)
	}
	return checkpoint{n: binary.BigEndian.Uint64(b), at: time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))).UTC()}, nil
}

// Loss describes acknowledged writes missing from a recovered DB: those
// acknowledged after Recovered, up to Durable.
type Loss struct {
	Dir                string
	Durable, Recovered uint64    // checkpoint numbers
	DurableAt          time.Time // when checkpoint Durable was written
	RecoveredAt        time.Time // when checkpoint Recovered was written; zero for none
}

func (l *Loss) Error() string {
	from := "its first write"
	if l.Recovered > 0 {
		from = l.RecoveredAt.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("kv/pebble: %s: acknowledged writes are missing: those acknowledged after %s, up to %s and maybe later, are gone (checkpoint #%d was durable, the DB recovered only #%d): a WAL file was truncated or lost after its writes were acknowledged",
		l.Dir, from, l.DurableAt.Format(time.RFC3339Nano), l.Durable, l.Recovered)
}

// Unwrap makes a Loss a kv.ErrCorrupt.
func (l *Loss) Unwrap() error { return kv.ErrCorrupt }

// durability writes checkpoints and keeps the marker.
type durability struct {
	pubMu sync.Mutex // held from choosing a batch's checkpoint until Pebble has taken it
	last  checkpoint // the last checkpoint written to a batch; pubMu
	dirty bool       // a batch was written since last; pubMu

	durable atomic.Pointer[checkpoint] // the newest checkpoint synced

	markMu  sync.Mutex // held by the one marker write at a time
	marked  checkpoint // the checkpoint in the marker file; markMu
	markErr error      // the last marker write's failure, logged once; markMu
}

// advance makes c the durable checkpoint if it is newer.
func (d *durability) advance(c checkpoint) {
	for {
		cur := d.durable.Load()
		if cur != nil && cur.n >= c.n || d.durable.CompareAndSwap(cur, &c) {
			return
		}
	}
}

// recovered reads the checkpoint db holds and compares it with the marker:
// a Loss if the DB holds an older one. Checkpoints go on from the one
// recovered.
func (e *Engine) recovered(db *pebble.DB) error {
	var last checkpoint
	v, closer, err := db.Get(checkpointKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound): // a new DB, or one written before checkpoints
	case err != nil:
		return fmt.Errorf("kv/pebble: %s: read the last checkpoint: %w", e.dir, classify(err))
	default:
		last, err = decodeCheckpoint(v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("kv/pebble: %s: %w", e.dir, err)
		}
	}
	marked, err := e.readMarker()
	if err != nil {
		return err
	}
	d := &e.durable
	d.pubMu.Lock()
	d.last, d.dirty = checkpoint{n: last.n}, false // zero time: the next batch writes one
	d.pubMu.Unlock()
	d.durable.Store(&last)
	d.markMu.Lock()
	d.marked = marked
	d.markMu.Unlock()
	if last.n < marked.n {
		return &Loss{Dir: e.dir, Durable: marked.n, DurableAt: marked.at, Recovered: last.n, RecoveredAt: last.at}
	}
	return nil
}

// Loss reports acknowledged writes missing from the DB when it was opened
// ReadOnly or with Options.AcceptLoss (otherwise Open refuses it); nil if
// none are.
func (e *Engine) Loss() *Loss { return e.loss }

// readMarker reads the marker's checkpoint; the zero checkpoint if there
// is no marker.
func (e *Engine) readMarker() (checkpoint, error) {
	f, err := e.opts.FS.Open(e.opts.FS.PathJoin(e.dir, markerName))
	if errors.Is(err, os.ErrNotExist) {
		return checkpoint{}, nil
	}
	if err != nil {
		return checkpoint{}, fmt.Errorf("kv/pebble: %s: open %s: %w", e.dir, markerName, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return checkpoint{}, fmt.Errorf("kv/pebble: %s: read %s: %w", e.dir, markerName, err)
	}
	c, err := decodeCheckpoint(b)
	if err != nil {
		return checkpoint{}, fmt.Errorf("kv/pebble: %s: %s: %w", e.dir, markerName, err)
	}
	return c, nil
}

// stamp adds a checkpoint to the batch if none was written within
// checkpointInterval, and returns it (n 0: none). Called with pubMu held.
func (e *Engine) stamp(b *pebble.Batch) (checkpoint, error) {
	d := &e.durable
	d.dirty = true
	now := e.opts.Clock.Now()
	if !d.last.at.IsZero() && now.Sub(d.last.at) < checkpointInterval {
		return checkpoint{}, nil
	}
	c := checkpoint{n: d.last.n + 1, at: now}
	if err := b.Set(checkpointKey, c.encode(), nil); err != nil {
		return checkpoint{}, err
	}
	d.last, d.dirty = c, false
	return c, nil
}

// synced records that checkpoint c is durable and copies it to the marker,
// in the background, unless a marker write is under way (the next
// checkpoint's will do).
func (e *Engine) synced(c checkpoint) {
	d := &e.durable
	if c.n == 0 {
		return
	}
	d.advance(c)
	if !d.markMu.TryLock() {
		return
	}
	go func() {
		defer d.markMu.Unlock()
		e.markLocked()
	}()
}

// markLocked writes the durable checkpoint to the marker, if it is newer.
// Called with markMu held.
func (e *Engine) markLocked() {
	d := &e.durable
	c := *d.durable.Load()
	if c.n <= d.marked.n {
		return
	}
	err := e.writeMarker(c)
	switch {
	case err == nil && d.markErr != nil:
		e.log.Info("durability marker written again", "checkpoint", c.n)
	case err != nil && d.markErr == nil:
		e.log.Warn("writing the durability marker failed; a lost WAL would go unnoticed for the writes since the last marker", "error", err)
	}
	d.markErr = err
	if err == nil {
		d.marked = c
	}
}

// closeCheckpoint writes a last checkpoint, if anything was written since
// the last one, and marks it: after a clean Close, every acknowledged write
// is covered. Called from Close, with e.mu held and every wait returned.
func (e *Engine) closeCheckpoint() {
	d := &e.durable
	d.markMu.Lock()
	defer d.markMu.Unlock()
	d.pubMu.Lock()
	dirty := d.dirty
	d.pubMu.Unlock()
	if dirty && e.db != nil && e.refusing() == nil {
		b := e.db.NewBatch()
		d.pubMu.Lock()
		d.last.at = time.Time{} // stamp now, whatever the interval
		c, err := e.stamp(b)
		d.pubMu.Unlock()
		if err == nil {
			err = e.db.Apply(b, pebble.Sync)
		}
		b.Close()
		if err != nil {
			e.log.Warn("writing the last checkpoint failed; the writes since the one before are not covered by the durability marker", "error", err)
		} else {
			d.advance(c)
		}
	}
	e.markLocked()
}

// writeMarker replaces the marker atomically: a crash leaves the old one or
// the new one.
func (e *Engine) writeMarker(c checkpoint) error {
	fs := e.opts.FS
	name := fs.PathJoin(e.dir, markerName)
	tmp := name + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, werr := f.Write(c.encode())
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := fs.Rename(tmp, name); err != nil {
		return err
	}
	dir, err := fs.OpenDir(e.dir)
	if err != nil {
		return err
	}
	return errors.Join(dir.Sync(), dir.Close())
}

// accept records a loss the operator accepted: the marker is set back to
// what the DB holds, so that the next Open does not report it again.
func (e *Engine) accept() error {
	d := &e.durable
	d.markMu.Lock()
	defer d.markMu.Unlock()
	c := *d.durable.Load()
	if err := e.writeMarker(c); err != nil {
		return fmt.Errorf("kv/pebble: %s: reset %s after an accepted loss: %w", e.dir, markerName, err)
	}
	d.marked = c
	return nil
}

// firstKey is the least key a caller may write: scans start at it or
// after, so that they skip the engine's own keys.
var firstKey = []byte{kv.EngineKeyPrefix + 1}

// noEngineKeys narrows a scan's lower bound so that it skips the engine's
// own keys.
func noEngineKeys(start []byte) []byte {
	if bytes.Compare(start, firstKey) < 0 {
		return firstKey
	}
	return start
}
