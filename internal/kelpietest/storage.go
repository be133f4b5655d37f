package kelpietest

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/clock"
)

// StepClock is the real clock whose Now moves only when the test calls
// Advance (timers and tickers stay real): it times the storage engine's
// free-space checks and reopens without waiting for them.
type StepClock struct {
	clock.Real
	mu  sync.Mutex
	now time.Time
}

// NewStepClock returns a StepClock reading now.
func NewStepClock(now time.Time) *StepClock { return &StepClock{now: now} }

// Now returns the time the test set.
func (c *StepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves Now by d.
func (c *StepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TruncateWALs cuts the newest Pebble WAL file (*.log) in dir to half its
// size, as a lost tail of the live WAL leaves it: only that file has writes
// a power loss may take (an older WAL still in dir was complete when the
// next one began).
func TruncateWALs(t testing.TB, dir string) {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no WAL files in %s (%v)", dir, err)
	}
	newest := slices.Max(logs) // WAL names are zero-padded file numbers
	st, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(newest, st.Size()/2); err != nil {
		t.Fatal(err)
	}
}
