// Package pebble implements kv.Engine on Pebble, Kelpie's embedded on-disk
// storage engine.
//
// Guarantees:
//   - A batch is published (visible) in the order Publish is called and
//     durable (the WAL fsynced) when its wait returns nil; batches waiting
//     at once share fsyncs. Apply is Publish then wait.
//   - A read never returns data that is not durable: Pebble shows a batch
//     before its sync completes, so a read of a key in a batch still
//     syncing waits for that sync, and a key whose write failed to sync is
//     an error until storage recovers, never the lost value.
//   - A failing disk fails the calls it touches, with kv.ErrDiskFull (no
//     space) or kv.ErrCorrupt (damaged data, and a log line naming the
//     file), and the process stays up. Writes are refused before the disk is
//     full (Options.MinFreeBytes), so Pebble keeps room to flush and
//     compact. After a failed sync, writes stop until a reopen (tried when
//     space allows, at most every recoverInterval) replays what is durable;
//     reads of everything else go on.
//   - Open fails fast, with one clear error, on a disk below the reserve.
//   - Every byte slice returned is a copy owned by the caller.
//   - After Close, every operation (including on snapshots taken before it)
//     returns kv.ErrClosed instead of touching the closed Pebble DB, which
//     would panic. Close releases snapshots that are still open.
//
// Values are opaque here: kv.DB seals and checks them.
package pebble

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
)

// Options configures Open. The zero value is a sensible default.
type Options struct {
	// FS is the file system; nil means the OS disk. Tests pass
	// vfs.NewCrashableMem() to simulate losing unsynced data.
	FS vfs.FS
	// Logger receives Pebble's messages: informational ones at Debug,
	// errors at Error. nil means slog.Default().
	Logger *slog.Logger
	// MemTableSize overrides Pebble's memtable size (0: Pebble's default).
	// Tests make it small to force flushes.
	MemTableSize uint64
	// CacheBytes is the block cache's size; 0 means DefaultCacheBytes.
	CacheBytes int64
	// MaxOpenFiles bounds the files Pebble keeps open (0: Pebble's default,
	// 1000), so that it leaves file descriptors for connections.
	MaxOpenFiles int
	// MinFreeBytes is the free disk space below which writes are refused
	// with kv.ErrDiskFull; 0 means DefaultMinFreeBytes, negative no reserve.
	MinFreeBytes int64
	// Clock times the free-space checks and reopens; nil means the system
	// clock.
	Clock clock.Clock
	// ReadOnly opens the database for reading only (an offline check):
	// every write fails, and acknowledged writes found missing are
	// reported by Engine.Loss instead of failing Open.
	ReadOnly bool
	// AcceptLoss opens a DB that has lost acknowledged writes (see Loss),
	// logging what is missing, instead of refusing it.
	AcceptLoss bool
	// OnSyncWait, if set, is told how long each batch waited for its WAL
	// sync (a group fsync it may share with others), for metrics.
	OnSyncWait func(time.Duration)
}

// DefaultCacheBytes sizes the block cache so that the working set of a
// busy single node (agent records, recent messages, indexes) stays in memory:
// Pebble's own default (8 MiB) sent history reads to disk.
const DefaultCacheBytes = 128 << 20

// DefaultMinFreeBytes is the free space kept for Pebble's flushes and
// compactions when Options.MinFreeBytes is 0.
const DefaultMinFreeBytes = 256 << 20

// Engine is a kv.Engine backed by a Pebble DB.
type Engine struct {
	dir   string
	opts  Options
	log   *slog.Logger
	space *spaceCheck

	// mu is held shared by every use of db and exclusively by Close and
	// by a reopen: Pebble panics on use after Close, and Close must not
	// race in-flight calls.
	mu     sync.RWMutex
	closed bool
	db     *pebble.DB // nil while a reopen after a failure has not succeeded
	gen    uint64     // reopens so far: snapshots of an earlier DB are dead

	// applied counts Publishes that have returned from Pebble. A Pebble
	// snapshot taken after reading n includes all n, so NewSnapshot calls
	// that still read n share it instead of each taking Pebble's DB mutex
	// (for a snapshot, and again to close it): under many concurrent
	// transactions that mutex was the DB path's bottleneck. The cached
	// snapshot stays open until a newer one replaces it (at the next
	// NewSnapshot after a Publish), a reopen, or Close.
	applied atomic.Uint64
	snapMu  sync.Mutex
	cur     *shared              // newest shared snapshot; holds a ref of its own
	live    map[*shared]struct{} // unreleased, closed by Close
	// anchor is a Pebble snapshot older than the shared ones, renewed
	// after anchorEvery of them (guarded by snapMu). Closing the oldest
	// snapshot makes Pebble look for a compaction to run, about 15µs,
	// and shared snapshots close about as often as commits happen: with
	// the anchor, only its renewal does. It keeps Pebble's compactions
	// from dropping at most the versions those snapshots' writes replaced.
	anchor      *pebble.Snapshot
	sinceAnchor int

	syncs   syncState
	durable durability
	rot     rotation
	loss    *Loss // found at Open; see Engine.Loss
}

// shared is a Pebble snapshot with reference-counted users.
type shared struct {
	snap *pebble.Snapshot
	gen  uint64 // applied, read before snap was taken
	db   uint64 // Engine.gen of the DB it belongs to
	refs int    // guarded by Engine.snapMu
	// idle are iterators over snap that no read is using, guarded by
	// Engine.snapMu: a read takes one and moves its bounds rather than
	// building a new one (most of what a point read cost).
	idle []*pebble.Iterator
}

// close closes sh's idle iterators, then sh. Called with Engine.snapMu
// held, or when sh is no longer shared.
func (sh *shared) close() {
	for _, it := range sh.idle {
		_ = it.Close() // an idle iterator's error was seen by the read that used it
	}
	sh.idle = nil
	sh.snap.Close() // never fails: it only unlinks the snapshot
}

var _ kv.Engine = (*Engine)(nil)

// Open opens (creating if needed) the Pebble database in dir.
func Open(dir string, opts Options) (*Engine, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = DefaultCacheBytes
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	e := &Engine{dir: dir, opts: opts, log: opts.Logger.With("component", "pebble", "dir", dir), live: map[*shared]struct{}{}}
	e.space = &spaceCheck{fs: opts.FS, dir: dir, reserve: opts.MinFreeBytes, clock: opts.Clock}
	e.syncs.init()
	// On a full disk, opening would hang or fail halfway: say so now.
	if err := e.space.check(); err != nil && !opts.ReadOnly {
		return nil, fmt.Errorf("kv/pebble: open %s: %w", dir, err)
	}
	db, err := e.open()
	if err != nil {
		return nil, err
	}
	var loss *Loss
	if err = e.recovered(db); errors.As(err, &loss) && (opts.ReadOnly || opts.AcceptLoss) {
		e.loss = loss
		if !opts.ReadOnly {
			e.log.Error("storage lost acknowledged writes; opening anyway, as asked", "error", loss)
			err = e.accept()
		} else {
			err = nil
		}
	}
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	e.db = db
	if !opts.ReadOnly {
		e.startRotation(db)
	}
	return e, nil
}

// open opens the Pebble DB with the engine's options.
func (e *Engine) open() (*pebble.DB, error) {
	po := &pebble.Options{
		FS:           e.opts.FS,
		Logger:       slogLogger{e.log},
		MemTableSize: e.opts.MemTableSize,
		MaxOpenFiles: e.opts.MaxOpenFiles,
		ReadOnly:     e.opts.ReadOnly,
		// Pin the on-disk format rather than inherit a default that changes
		// between Pebble releases.
		FormatMajorVersion: pebble.FormatNewest,
		EventListener: &pebble.EventListener{
			// Corruption found while reading fails that read; it must not
			// stop the process (Pebble's default is its Fatalf).
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				e.log.Error("storage corruption detected", "file", info.Path, "details", info.Details)
			},
			BackgroundError: func(err error) { e.log.Error("storage background error", "error", err) },
			WALCreated:      func(pebble.WALCreateInfo) { e.walCreated() },
			FlushEnd: func(info pebble.FlushInfo) {
				err := info.Err
				if err != nil && len(info.Output) == 0 && err.Error() == emptyFlush {
					err = nil // nothing to flush is a flush that worked
				}
				if err != nil || info.Done {
					e.flushEnded(err)
				}
			},
		},
	}
	// Bloom filters let a point read of a key a table lacks skip the
	// table's blocks: most reads of a create (the new agent's actor state,
	// its counts) are of keys that do not exist yet. Deeper levels inherit
	// L0's policy.
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	po.Cache = pebble.NewCache(e.opts.CacheBytes)
	defer po.Cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(e.dir, po)
	if err != nil {
		return nil, fmt.Errorf("kv/pebble: open %s: %w", e.dir, classify(err))
	}
	return db, nil
}

// bloomBitsPerKey sizes the tables' bloom filters: 10 bits per key gives
// about 1% false positives.
const bloomBitsPerKey = 10

// emptyFlush is the error Pebble reports, with no output, for a flush of an
// empty memtable (its own Flush returns nil then); Pebble does not export it.
const emptyFlush = "pebble: empty table"

// CheckLevels reads every key of every level of the LSM, verifying the
// checksum of each block it reads and Pebble's ordering invariants, and
// returns how many point keys it read.
func (e *Engine) CheckLevels() (int64, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if err := e.usable(); err != nil {
		return 0, err
	}
	var stats pebble.CheckLevelsStats
	err := e.db.CheckLevels(&stats)
	return stats.NumPoints, classify(err)
}

// DiskUsage is the space the DB's files take on disk, in bytes (0 while
// the DB is closed or reopening).
func (e *Engine) DiskUsage() uint64 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.usable() != nil {
		return 0
	}
	return e.db.Metrics().DiskSpaceUsage()
}

// Checkpoint writes a consistent copy of the DB, openable by Open, to
// dir, which must not exist: every batch durable before the call is in
// it. It hard-links the immutable table files where it can, so it is
// quick and takes little space on the same file system, and the DB serves
// reads and writes meanwhile.
func (e *Engine) Checkpoint(dir string) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if err := e.usable(); err != nil {
		return err
	}
	if err := e.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("kv/pebble: checkpoint of %s to %s: %w", e.dir, dir, classify(err))
	}
	return nil
}

// classify marks errors a client can be told about: no space, corruption.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("%w: %w", kv.ErrDiskFull, err)
	case pebble.IsCorruptionError(err):
		return fmt.Errorf("%w: %w", kv.ErrCorrupt, err)
	}
	return err
}

// Close implements kv.Engine. It waits for in-flight calls, releases open
// snapshots and closes the Pebble DB. Closing twice is a no-op.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.stopRotation()
	e.dropSnapshots()
	if !e.opts.ReadOnly {
		e.closeCheckpoint() // every wait has returned
	}
	if e.db == nil {
		return nil
	}
	if err := e.db.Close(); err != nil {
		return fmt.Errorf("kv/pebble: close %s: %w", e.dir, err)
	}
	return nil
}

// dropSnapshots closes every open snapshot. Called with e.mu held
// exclusively.
func (e *Engine) dropSnapshots() {
	e.snapMu.Lock()
	defer e.snapMu.Unlock()
	for sh := range e.live {
		sh.close()
	}
	clear(e.live)
	e.cur = nil
	if e.anchor != nil {
		e.anchor.Close()
		e.anchor, e.sinceAnchor = nil, 0
	}
}

// spaceCheck refuses writes below a reserve of free space, reading the
// disk's usage at most every spaceCheckInterval.
type spaceCheck struct {
	fs      vfs.FS
	dir     string
	reserve int64
	clock   clock.Clock

	mu    sync.Mutex
	at    time.Time
	avail int64
	known bool
}

const spaceCheckInterval = 100 * time.Millisecond

// check returns kv.ErrDiskFull (wrapped, with figures) when the free space
// is below the reserve. A file system that cannot tell passes.
func (s *spaceCheck) check() error {
	if s.reserve <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now := s.clock.Now(); s.at.IsZero() || now.Sub(s.at) >= spaceCheckInterval {
		s.at = now
		u, err := s.fs.GetDiskUsage(s.dir)
		s.known = err == nil
		s.avail = int64(min(u.AvailBytes, 1<<62))
	}
	if s.known && s.avail < s.reserve {
		return fmt.Errorf("%w: %s has %d MiB free, below the reserve of %d MiB (--min-free-space): free some space, or lower the reserve",
			kv.ErrDiskFull, s.dir, s.avail>>20, s.reserve>>20)
	}
	return nil
}

// slogLogger is Pebble's logger on slog. Fatalf exits the process, as
// Pebble requires of it: it calls Fatalf only when it cannot go on.
type slogLogger struct{ l *slog.Logger }

func (g slogLogger) Infof(format string, args ...any) { g.l.Debug(fmt.Sprintf(format, args...)) }

func (g slogLogger) Errorf(format string, args ...any) { g.l.Error(fmt.Sprintf(format, args...)) }

func (g slogLogger) Fatalf(format string, args ...any) {
	g.l.Error("fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
