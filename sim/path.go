package sim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// An operation's path is everything that ran for it: its handler, the
// actor invocations and reads it made, and for a message the turn it
// started, which may outlive it. The request's context reaches all of
// them (a turn keeps its request's values), so the simulated disk and
// model record on the operation's trail the faults its own work met, and
// the service's log records the errors it logged for it. A failed
// operation is then judged by its own trail: only a fault on its path, or
// the crash of its process while it ran, excuses it (cause.go).

// opKey is the context key of the operation a request is for.
type opKey struct{}

// withOp returns ctx carrying op.
func withOp(ctx context.Context, op *opRecord) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

// opOf returns the operation ctx is for, or nil (the audit, the runtime's
// own work).
func opOf(ctx context.Context) *opRecord {
	op, _ := ctx.Value(opKey{}).(*opRecord)
	return op
}

// Classes of the faults a trail records.
const (
	pathStorage = "storage" // an injected storage error or a damaged value
	pathLLM     = "llm"     // a model request failed by an injected fault
	pathBadLLM  = "llm_bad" // a model answer a model should not give
)

// maxTrailErrors bounds the other errors a trail keeps the text of.
const maxTrailErrors = 3

// trail is what happened on an operation's path. Its work may go on after
// the operation returned (a turn whose client gave up), so it has a lock.
type trail struct {
	mu     sync.Mutex
	faults []pathFault
	errs   []string // other errors its transactions saw, the first few
	nerrs  int
	// turnErr is the error the service logged for a turn the operation
	// started; serverErr the error behind a 500 it answered.
	turnErr, serverErr string
}

// pathFault is one fault on an operation's path.
type pathFault struct {
	class string
	at    int64 // logical time
	text  string
}

func (t *trail) fault(class string, at int64, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.faults = append(t.faults, pathFault{class, at, text})
}

func (t *trail) sawError(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nerrs++
	if len(t.errs) < maxTrailErrors {
		t.errs = append(t.errs, clipString(err.Error(), 200))
	}
}

func (t *trail) setTurnErr(text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.turnErr = text
}

func (t *trail) setServerErr(text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.serverErr = text
}

// has returns the first fault of class on the trail, if any.
func (t *trail) has(class string) (pathFault, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.faults {
		if f.class == class {
			return f, true
		}
	}
	return pathFault{}, false
}

// logged returns the errors logged for the operation.
func (t *trail) logged() (turnErr, serverErr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.turnErr, t.serverErr
}

// String renders the trail for a history line: "" when nothing happened.
func (t *trail) String() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var parts []string
	if len(t.faults) > 0 {
		fs := make([]string, len(t.faults))
		for i, f := range t.faults {
			fs[i] = fmt.Sprintf("%s@%d %s", f.class, f.at, clipString(f.text, 100))
		}
		parts = append(parts, "faults: "+strings.Join(fs, "; "))
	}
	if t.nerrs > 0 {
		parts = append(parts, fmt.Sprintf("errors seen: %d (%s)", t.nerrs, strings.Join(t.errs, "; ")))
	}
	if len(parts) == 0 {
		return ""
	}
	return "{" + strings.Join(parts, " | ") + "}"
}

// notePath records a fault of class on the trail of the operation ctx is
// for.
func (s *system) notePath(ctx context.Context, class, format string, args ...any) {
	if op := opOf(ctx); op != nil {
		op.trail.fault(class, s.rec.seq.Load(), fmt.Sprintf(format, args...))
	}
}

// pathStore is one incarnation's store as the services see it: it records
// on each operation's trail the errors its transactions meet, telling
// injected faults from the rest.
type pathStore struct {
	inner kv.Store
	sys   *system
}

func (s *pathStore) Begin(ctx context.Context) (kv.Txn, error) {
	op := opOf(ctx)
	t, err := s.inner.Begin(ctx)
	if op == nil {
		return t, err
	}
	p := &pathTxn{Txn: t, op: op, sys: s.sys}
	if err != nil {
		p.saw(err, nil)
		return nil, err
	}
	return p, nil
}

func (s *pathStore) Close() error { return s.inner.Close() }

// pathTxn is a transaction of an operation's path.
type pathTxn struct {
	kv.Txn
	op  *opRecord
	sys *system
}

// SnapshotTime passes the store's clock through (see kv.SnapshotTime).
func (t *pathTxn) SnapshotTime() (time.Time, bool) { return kv.SnapshotTime(t.Txn) }

// saw records err, met reading or writing keys (nil: not known), on the
// operation's trail.
func (t *pathTxn) saw(err error, keys func(k []byte) bool) {
	switch {
	case err == nil, errors.Is(err, kv.ErrNotFound):
	case errors.Is(err, ErrIO), errors.Is(err, ErrDiskFull), errors.Is(err, ErrFsync), errors.Is(err, ErrCrashed):
		t.op.trail.fault(pathStorage, t.sys.rec.seq.Load(), err.Error())
	case errors.Is(err, kv.ErrFenced) && isCluster(t.sys.cfg.Faults):
		// Another node claimed the agent, or activated the (unplaced)
		// actor: the commit checks of the shared database judge that.
		t.op.trail.fault(pathCluster, t.sys.rec.seq.Load(), err.Error())
	case errors.Is(err, kv.ErrCorrupt) && keys != nil && t.sys.inj.damagedAny(keys):
		t.op.trail.fault(pathStorage, t.sys.rec.seq.Load(), err.Error())
	default:
		t.op.trail.sawError(err)
	}
}

func (t *pathTxn) Get(key []byte) ([]byte, error) {
	v, err := t.Txn.Get(key)
	t.saw(err, func(k []byte) bool { return string(k) == string(key) })
	return v, err
}

func (t *pathTxn) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	kvs, err := t.Txn.Scan(r, limit, reverse)
	t.saw(err, r.Contains)
	return kvs, err
}

func (t *pathTxn) Set(key, value []byte) error {
	err := t.Txn.Set(key, value)
	t.saw(err, nil)
	return err
}

func (t *pathTxn) Delete(key []byte) error {
	err := t.Txn.Delete(key)
	t.saw(err, nil)
	return err
}

func (t *pathTxn) Fence(key []byte, epoch uint64) error {
	err := t.Txn.Fence(key, epoch)
	t.saw(err, func(k []byte) bool { return string(k) == string(key) })
	return err
}

func (t *pathTxn) Commit(ctx context.Context) error {
	err := t.Txn.Commit(ctx)
	t.saw(err, nil)
	return err
}
