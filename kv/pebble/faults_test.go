package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

var testCtx = context.Background()

func put(db *kv.DB, key, value string) error {
	txn, err := db.Begin(testCtx)
	if err != nil {
		return err
	}
	txn.Set([]byte(key), []byte(value))
	return txn.Commit(testCtx)
}

func get(db *kv.DB, key string) (string, error) {
	txn, err := db.Begin(testCtx)
	if err != nil {
		return "", err
	}
	defer txn.Discard()
	v, err := txn.Get([]byte(key))
	return string(v), err
}

// Spec: below the free-space reserve writes are refused with ErrDiskFull,
// nothing applied; reads go on; writes resume by themselves once space is
// freed; opening below the reserve fails at once, saying why.
func TestDiskFullReserve(t *testing.T) {
	mem := vfs.NewMem()
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 2 << 30})
	clk := kelpietest.NewStepClock(time.Unix(0, 0))
	eng, err := Open("db", Options{FS: mem, Logger: quiet(), MinFreeBytes: 64 << 20, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	db := kv.NewDB(eng)
	defer db.Close()
	if err := put(db, "a", "1"); err != nil {
		t.Fatal(err)
	}
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 10 << 20, TotalBytes: 2 << 30})
	clk.Advance(spaceCheckInterval)
	if err := put(db, "b", "1"); !errors.Is(err, kv.ErrDiskFull) || !strings.Contains(err.Error(), "10 MiB free") {
		t.Fatalf("write below the reserve: %v; want ErrDiskFull with figures", err)
	}
	if v, err := get(db, "a"); v != "1" || err != nil {
		t.Fatalf("read on a full disk: %q %v", v, err)
	}
	if _, err := get(db, "b"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("the refused write was applied: %v", err)
	}
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 1 << 30, TotalBytes: 2 << 30})
	clk.Advance(spaceCheckInterval)
	if err := put(db, "b", "2"); err != nil {
		t.Fatalf("write after space was freed: %v", err)
	}
	db.Close()

	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 10 << 20, TotalBytes: 2 << 30})
	if _, err := Open("db", Options{FS: mem, Logger: quiet(), MinFreeBytes: 64 << 20}); !errors.Is(err, kv.ErrDiskFull) {
		t.Fatalf("open on a full disk: %v; want ErrDiskFull at once", err)
	}
}

// failingWAL injects err into every write and sync (the WAL's first) while
// on.
func failingWAL(err error) *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			return fmt.Errorf("%s: %w", op.Path, err)
		}
		return nil
	})}
}

// Spec: when the WAL fails (no space, or an fsync error), the failed write's
// outcome is unknown and its keys are never served; other reads go on;
// writes stop, and resume by themselves after a reopen once the fault is
// gone; no acknowledged write is lost and the process stays up.
func TestWALFailureRecovers(t *testing.T) {
	for _, fault := range []error{syscall.ENOSPC, syscall.EIO} {
		t.Run(fault.Error(), func(t *testing.T) {
			mem := vfs.NewMem()
			toggle := failingWAL(fault)
			clk := kelpietest.NewStepClock(time.Unix(0, 0))
			eng, err := Open("db", Options{FS: errorfs.Wrap(mem, toggle), Logger: quiet(), MinFreeBytes: -1, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			db := kv.NewDB(eng)
			defer db.Close()
			if err := put(db, "acked", "1"); err != nil {
				t.Fatal(err)
			}
			toggle.On()
			err = put(db, "lost", "1")
			if err == nil || errors.Is(fault, syscall.ENOSPC) != errors.Is(err, kv.ErrDiskFull) {
				t.Fatalf("write with a failing WAL: %v", err)
			}
			if _, err := get(db, "lost"); err == nil {
				t.Fatal("the key of a write that failed to sync was served")
			}
			if v, err := get(db, "acked"); v != "1" || err != nil {
				t.Fatalf("read of an acknowledged key with a failing WAL: %q %v", v, err)
			}
			clk.Advance(recoverInterval) // a reopen may be tried; the disk still fails
			if err := put(db, "other", "1"); err == nil {
				t.Fatal("a write succeeded while the WAL is failing")
			}
			if v, err := get(db, "acked"); v != "1" || err != nil {
				t.Fatalf("read after a reopen was tried on a failing disk: %q %v", v, err)
			}
			toggle.Off()
			clk.Advance(recoverInterval)
			if err := put(db, "after", "1"); err != nil {
				t.Fatalf("write once the fault is gone: %v", err)
			}
			for _, k := range []string{"acked", "after"} {
				if v, err := get(db, k); v != "1" || err != nil {
					t.Fatalf("after recovery, %s = %q %v", k, v, err)
				}
			}
		})
	}
}

// Spec: a damaged table fails the reads that touch it with ErrCorrupt (and
// a log line naming the file); the process stays up and serves the rest.
func TestCorruptTableFailsItsReadsOnly(t *testing.T) {
	dir := t.TempDir()
	eng, err := Open(dir, Options{Logger: quiet(), MemTableSize: 64 << 10, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	db := kv.NewDB(eng)
	value := strings.Repeat("x", 1000)
	for i := range 2000 {
		if err := put(db, fmt.Sprintf("k%05d", i), value); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	tables, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no tables written")
	}
	damage(t, tables[0])

	logs := &lockedBuffer{}
	eng, err = Open(dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	db = kv.NewDB(eng)
	defer db.Close()
	corrupt, fine := 0, 0
	for i := range 2000 {
		switch _, err := get(db, fmt.Sprintf("k%05d", i)); {
		case errors.Is(err, kv.ErrCorrupt):
			corrupt++
		case err == nil:
			fine++
		default:
			t.Fatalf("read: %v", err)
		}
	}
	if corrupt == 0 || fine == 0 {
		t.Fatalf("%d corrupt and %d fine reads; want some of each", corrupt, fine)
	}
	if !strings.Contains(logs.String(), "storage corruption detected") || !strings.Contains(logs.String(), filepath.Base(tables[0])) {
		t.Errorf("no log line naming the damaged file:\n%s", logs.String())
	}
	if err := put(db, "new", "1"); err != nil {
		t.Errorf("write after corruption elsewhere: %v", err)
	}
}

// lockedBuffer is a log destination that Pebble's background work and the
// test may use at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// damage flips bytes in the middle of a file.
func damage(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	buf := make([]byte, 64)
	off := fi.Size() / 3
	if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] ^= 0xff
	}
	if _, err := f.WriteAt(buf, off); err != nil {
		t.Fatal(err)
	}
}

// Spec: when flushes fail for lack of space (Pebble would stall every
// write), writes are refused promptly with ErrDiskFull, reads go on, and
// writes resume by themselves once a flush succeeds.
func TestFailingFlushRefusesWrites(t *testing.T) {
	mem := vfs.NewMem()
	toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".sst") && (op.Kind == errorfs.OpCreate || op.Kind == errorfs.OpFileWrite) {
			return fmt.Errorf("%s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})}
	eng, err := Open("db", Options{FS: errorfs.Wrap(mem, toggle), Logger: quiet(), MinFreeBytes: -1, MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	db := kv.NewDB(eng)
	defer db.Close()
	if err := put(db, "acked", "1"); err != nil {
		t.Fatal(err)
	}
	toggle.On()
	// Several writers: one may be caught inside Pebble waiting for room in
	// the memtable until a flush succeeds; the others must be refused.
	value := strings.Repeat("x", 1000)
	var mu sync.Mutex
	var stop atomic.Bool
	acked := map[string]bool{}
	refused := make(chan error, 4)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("w%d-%05d", w, i)
				err := put(db, key, value)
				if err != nil {
					refused <- err
					return
				}
				mu.Lock()
				acked[key] = true
				mu.Unlock()
			}
		})
	}
	if err := <-refused; !errors.Is(err, kv.ErrDiskFull) {
		t.Fatalf("a write while flushes fail: %v; want ErrDiskFull", err)
	}
	if v, err := get(db, "acked"); v != "1" || err != nil {
		t.Fatalf("read while flushes fail: %q %v", v, err)
	}
	toggle.Off()
	stop.Store(true)
	wg.Wait() // a writer caught inside Pebble gets out once a flush succeeds
	for i := 0; ; i++ {
		if err := put(db, "after", "1"); err == nil {
			break
		} else if !errors.Is(err, kv.ErrDiskFull) || i > 100_000 {
			t.Fatalf("writes did not resume after the fault: %v", err)
		}
	}
	for key := range acked {
		if v, err := get(db, key); v != value || err != nil {
			t.Fatalf("acknowledged write %s lost: %v", key, err)
		}
	}
}

// TestFlushOfNothingIsNoFailure: a flush with nothing to write (Pebble
// reports it with an error of its own) does not stop writes.
func TestFlushOfNothingIsNoFailure(t *testing.T) {
	eng, err := Open("db", Options{FS: vfs.NewMem(), Logger: quiet(), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	db := kv.NewDB(eng)
	defer db.Close()
	if err := eng.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := put(db, "after", "1"); err != nil {
		t.Fatalf("a write after an empty flush: %v", err)
	}
}
