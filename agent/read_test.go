package agent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// instantPauses is the real clock with pauses that end at once: a test that
// counts retries need not wait for them.
type instantPauses struct{ clock.Real }

func (instantPauses) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- time.Now().Add(d)
	return ch
}

// holdingEngine holds the next batch that writes a key with a prefix in
// flight (validated and sequenced by kv.DB, not yet applied, as a commit
// waiting for its sync is) until readers have taken enough snapshots.
type holdingEngine struct {
	*kv.MemEngine
	prefix   string
	release  int           // snapshots to let pass before the batch lands
	held     chan struct{} // closed once the batch is held
	released chan struct{}
	once     sync.Once

	mu    sync.Mutex
	armed bool
	seen  int // snapshots taken while held
}

func newHoldingEngine(release int) *holdingEngine {
	return &holdingEngine{MemEngine: kv.NewMemEngine(), release: release, held: make(chan struct{}), released: make(chan struct{})}
}

func (e *holdingEngine) arm(prefix string) {
	e.mu.Lock()
	e.prefix, e.armed = prefix, true
	e.mu.Unlock()
}

func (e *holdingEngine) let() { e.once.Do(func() { close(e.released) }) }

func (e *holdingEngine) Apply(batch []kv.Mutation) error {
	e.mu.Lock()
	hold := false
	for _, m := range batch {
		hold = hold || e.armed && len(m.Key) >= len(e.prefix) && string(m.Key[:len(e.prefix)]) == e.prefix
	}
	if hold {
		e.armed = false
	}
	e.mu.Unlock()
	if hold {
		close(e.held)
		<-e.released
	}
	return e.MemEngine.Apply(batch)
}

func (e *holdingEngine) NewSnapshot() (kv.Snapshot, error) {
	select {
	case <-e.held:
		e.mu.Lock()
		if e.seen++; e.seen == e.release {
			e.let()
		}
		e.mu.Unlock()
	default:
	}
	return e.MemEngine.NewSnapshot()
}

// Spec: a read that overlaps a commit still being applied (with Pebble, one
// waiting for its sync; natively, one whose goroutine the scheduler has not
// run yet) waits for it to land, however many times it must look: how long
// a commit stays in flight depends on the disk and the CPU, not on the
// read. The simulator found reads that gave up after ten tries, 4.5ms of
// pauses in all, under CPU load: the turn that made them stopped with an
// error ("kv: transaction conflict").
func TestReadWaitsForACommitInFlight(t *testing.T) {
	eng := newHoldingEngine(25) // more tries than reads once made
	t.Cleanup(eng.let)
	svc, err := agent.New(agent.Config{Store: kv.NewDB(eng), Clock: instantPauses{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	label, value, edited := "notes", "v0", "v1"
	b, err := svc.Blocks.Create(ctx, letta.CreateBlock{Label: &label, Value: &value})
	if err != nil {
		t.Fatal(err)
	}
	eng.arm(schema.Blocks.Prefix + b.ID)
	updated := make(chan error, 1)
	go func() {
		_, err := svc.Blocks.Update(ctx, b.ID, letta.BlockUpdate{Value: &edited})
		updated <- err
	}()
	<-eng.held
	got, err := svc.Blocks.Get(ctx, b.ID)
	if err != nil {
		t.Fatalf("a read that overlapped a commit in flight failed: %v", err)
	}
	if err := <-updated; err != nil {
		t.Fatalf("update: %v", err)
	}
	if got.Value != value && got.Value != edited {
		t.Errorf("read %q, want %q or %q", got.Value, value, edited)
	}
}
