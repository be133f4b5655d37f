package pebble

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// TestCheckpointWhileWriting: a checkpoint taken while writers commit holds
// every commit acknowledged before it began, opens as a DB of its own, and
// passes CheckLevels; the engine reports its size and each sync wait.
func TestCheckpointWhileWriting(t *testing.T) {
	ctx := context.Background()
	var syncs atomic.Int64
	eng := openEngine(t, filepath.Join(t.TempDir(), "db"), Options{OnSyncWait: func(time.Duration) { syncs.Add(1) }})
	db := kv.NewDB(eng)
	defer db.Close()
	put := func(key string) error {
		tx, err := db.Begin(ctx)
		if err != nil {
			return err
		}
		tx.Set([]byte(key), []byte("v"))
		return tx.Commit(ctx)
	}
	for i := range 100 {
		if err := put(fmt.Sprintf("before/%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := put(fmt.Sprintf("during/%d/%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond) // let the writers get going
	to := filepath.Join(t.TempDir(), "copy")
	err := eng.Checkpoint(to)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if syncs.Load() < 100 {
		t.Errorf("OnSyncWait called %d times for at least 100 commits", syncs.Load())
	}
	if eng.DiskUsage() == 0 {
		t.Error("DiskUsage = 0 for a DB with data")
	}

	copyEng := openEngine(t, to, Options{})
	copyDB := kv.NewDB(copyEng)
	defer copyDB.Close()
	if _, err := copyEng.CheckLevels(); err != nil {
		t.Fatalf("CheckLevels on the checkpoint: %v", err)
	}
	tx, _ := copyDB.Begin(ctx)
	defer tx.Discard()
	for i := range 100 {
		if _, err := tx.Get(fmt.Appendf(nil, "before/%03d", i)); err != nil {
			t.Fatalf("checkpoint lacks a commit acknowledged before it: %v", err)
		}
	}
	if err := eng.Checkpoint(to); err == nil {
		t.Error("a checkpoint into an existing directory succeeded")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := eng.Checkpoint(filepath.Join(t.TempDir(), "after-close")); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Checkpoint after Close = %v, want ErrClosed", err)
	}
}
