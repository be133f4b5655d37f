package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/kelpie/kelpie/kv"
)

// Errors of injected faults. None wraps a kv error: to the store they are
// what a failing disk returns.
var (
	ErrIO       = errors.New("sim: injected I/O error")
	ErrDiskFull = errors.New("sim: injected disk full")
	ErrFsync    = errors.New("sim: injected fsync failure")
	ErrCrashed  = errors.New("sim: process crashed")
)

// faultEngine is one incarnation's view of the simulated disk (a
// kv.MemEngine that outlives incarnations). It injects storage faults and,
// once its process has crashed, fails every call: nothing the dead process
// still had in flight reaches the disk after the crash.
//
// It also watches for two activations of one actor: every invocation's
// transaction reads the actor's epoch key (to load or fence), and the
// invocation ends with the snapshot's Close, so two snapshots that read one
// actor's epoch and are open at once belong to two invocations running at
// once, which one activation never does.
type faultEngine struct {
	disk    *kv.MemEngine
	inj     *injector
	onCrash func(reason string) // called, in a new goroutine, on an injected crash
	sys     *system
	inc     int

	mu      sync.Mutex // serialises batches and crashes
	crashed bool

	actMu  sync.Mutex
	active map[string]int // actor id -> open snapshots that read its epoch
}

func newFaultEngine(sys *system, inc int, onCrash func(string)) *faultEngine {
	return &faultEngine{disk: sys.disk, inj: sys.inj, sys: sys, inc: inc, onCrash: onCrash, active: map[string]int{}}
}

// crash kills the engine: from now on every call fails and no batch lands.
// It reports whether this call did it.
func (e *faultEngine) crash() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	was := e.crashed
	e.crashed = true
	return !was
}

func (e *faultEngine) isCrashed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.crashed
}

// crashLocked marks the engine crashed while e.mu is held and starts the
// restart of the process.
func (e *faultEngine) crashLocked(reason string) {
	if !e.crashed {
		e.crashed = true
		go e.onCrash(reason)
	}
}

func (e *faultEngine) NewSnapshot() (kv.Snapshot, error) {
	if e.inj.fire(Latency, "read") {
		time.Sleep(e.inj.latency())
	}
	if e.isCrashed() {
		return nil, ErrCrashed
	}
	if e.inj.fire(ReadFail, "read") {
		return nil, ErrIO
	}
	s, err := e.disk.NewSnapshot()
	if err != nil {
		return nil, err
	}
	return &faultSnapshot{eng: e, inner: s}, nil
}

func (e *faultEngine) Apply(batch []kv.Mutation) error {
	keys := make([][]byte, len(batch))
	for i, m := range batch {
		keys[i] = m.Key
	}
	if e.inj.fire(Latency, "write", keys...) {
		time.Sleep(e.inj.latency())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.crashed {
		return ErrCrashed
	}
	if e.inj.fire(CrashBeforeWrite, "write", keys...) {
		e.crashLocked("crash_before_write")
		return ErrCrashed
	}
	if e.inj.takeDiskFull(keys) {
		return ErrDiskFull
	}
	if e.inj.fire(WriteFail, "write", keys...) {
		return ErrIO
	}
	apply, result := true, error(nil)
	if e.inj.fire(FsyncFail, "write", keys...) {
		apply, result = e.inj.intn(2) == 0, ErrFsync
	}
	if e.inj.fire(CorruptWrite, "write", keys...) {
		batch = corruptBatch(batch, e.inj.intn(1<<30), e.inj.damage)
	}
	if apply {
		e.checkEpochs(batch)
		if err := e.disk.Apply(batch); err != nil {
			return err
		}
	}
	if e.inj.fire(CrashAfterWrite, "write", keys...) {
		e.crashLocked("crash_after_write")
		return ErrCrashed
	}
	return result
}

// corruptBatch returns batch with the value of one written key damaged,
// and tells damage which.
func corruptBatch(batch []kv.Mutation, pick int, damage func(key []byte)) []kv.Mutation {
	var writes []int
	for i, m := range batch {
		if m.Value != nil {
			writes = append(writes, i)
		}
	}
	if len(writes) == 0 {
		return batch
	}
	out := append([]kv.Mutation(nil), batch...)
	i := writes[pick%len(writes)]
	out[i].Value = corrupt(out[i].Value, pick)
	damage(out[i].Key)
	return out
}

// checkEpochs verifies that every epoch a batch writes is above the stored
// one: each activation takes a new epoch, so an epoch that does not rise
// means two activations took the same one. Called with e.mu held, so no
// other batch lands in between.
func (e *faultEngine) checkEpochs(batch []kv.Mutation) {
	var snap kv.Snapshot
	for _, m := range batch {
		if !bytes.HasPrefix(m.Key, []byte(epochPrefix)) {
			continue
		}
		if snap == nil {
			var err error
			if snap, err = e.disk.NewSnapshot(); err != nil {
				return
			}
			defer snap.Close()
		}
		actor := string(m.Key[len(epochPrefix):])
		if m.Value == nil {
			e.sys.violation("single-activation", objectOfActor(actor), "the epoch of actor %s was deleted", actor)
			continue
		}
		next, ok := sealedEpoch(m.Key, m.Value)
		if !ok {
			continue // damaged by an injected fault
		}
		old, err := snap.Get(m.Key)
		if err != nil {
			continue
		}
		if prev, ok := sealedEpoch(m.Key, old); ok && next <= prev {
			e.sys.violation("single-activation", objectOfActor(actor), "the epoch of actor %s went from %d to %d: two activations took the same epoch", actor, prev, next)
		}
	}
}

// sealedEpoch decodes an epoch as stored (checksum, then the epoch).
func sealedEpoch(key, stored []byte) (uint64, bool) {
	v, ok := unseal(key, stored)
	if !ok || len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

func (e *faultEngine) Close() error { return nil } // the disk outlives the process

// enter records that a snapshot read actor's epoch: an invocation of it is
// running.
func (e *faultEngine) enter(actor string) {
	e.actMu.Lock()
	n := e.active[actor]
	e.active[actor] = n + 1
	e.actMu.Unlock()
	if n > 0 && !e.isCrashed() {
		e.sys.violation("single-activation", objectOfActor(actor), "two invocations of actor %s ran at once in incarnation %d: two live activations", actor, e.inc)
	}
}

func (e *faultEngine) leave(actors []string) {
	e.actMu.Lock()
	defer e.actMu.Unlock()
	for _, a := range actors {
		if e.active[a]--; e.active[a] <= 0 {
			delete(e.active, a)
		}
	}
}

type faultSnapshot struct {
	eng    *faultEngine
	inner  kv.Snapshot
	mu     sync.Mutex
	actors []string // actors whose epoch this snapshot read
	closed bool
}

// read injects the faults of one read of key.
func (s *faultSnapshot) read(key []byte) error {
	e := s.eng
	if e.inj.fire(Latency, "read", key) {
		time.Sleep(e.inj.latency())
	}
	if e.isCrashed() {
		return ErrCrashed
	}
	if e.inj.fire(CrashDuringTxn, "read", key) {
		e.mu.Lock()
		e.crashLocked("crash_during_txn")
		e.mu.Unlock()
		return ErrCrashed
	}
	if e.inj.fire(ReadFail, "read", key) {
		return ErrIO
	}
	return nil
}

func (s *faultSnapshot) Get(key []byte) ([]byte, error) {
	if err := s.read(key); err != nil {
		return nil, err
	}
	if bytes.HasPrefix(key, []byte(epochPrefix)) {
		s.noteActor(string(key[len(epochPrefix):]))
	}
	v, err := s.inner.Get(key)
	if err == nil && s.eng.inj.fire(CorruptRead, "read", key) {
		v = corrupt(v, s.eng.inj.intn(1<<30))
		s.eng.inj.damage(key)
	}
	return v, err
}

func (s *faultSnapshot) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	if err := s.read(r.Start); err != nil {
		return nil, err
	}
	kvs, err := s.inner.Scan(r, limit, reverse)
	if err == nil && len(kvs) > 0 && s.eng.inj.fire(CorruptRead, "read", r.Start) {
		i := s.eng.inj.intn(len(kvs))
		kvs[i].Value = corrupt(kvs[i].Value, s.eng.inj.intn(1<<30))
		s.eng.inj.damage(kvs[i].Key)
	}
	return kvs, err
}

func (s *faultSnapshot) noteActor(actor string) {
	s.mu.Lock()
	if s.closed || containsStr(s.actors, actor) {
		s.mu.Unlock()
		return
	}
	s.actors = append(s.actors, actor)
	s.mu.Unlock()
	s.eng.enter(actor)
}

func (s *faultSnapshot) Close() error {
	s.mu.Lock()
	actors := s.actors
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		s.eng.leave(actors)
	}
	return s.inner.Close()
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// objectOfActor returns the agent or block id of an actor id
// ("agents/agent-...").
func objectOfActor(actor string) string {
	_, id, ok := strings.Cut(actor, "/")
	if !ok {
		return ""
	}
	return id
}
