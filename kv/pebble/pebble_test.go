package pebble

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/kvtest"
)

func openEngine(t testing.TB, dir string, opts Options) *Engine {
	t.Helper()
	eng, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func TestStore(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) kv.Store {
		return kv.NewDB(openEngine(t, t.TempDir(), Options{}))
	})
}

func TestCorruption(t *testing.T) {
	kvtest.TestCorruption(t, openEngine(t, t.TempDir(), Options{}))
}

func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db") // Open creates it
	ctx := context.Background()
	db := kv.NewDB(openEngine(t, dir, Options{}))
	tx, _ := db.Begin(ctx)
	tx.Set([]byte("k"), []byte("v"))
	tx.Set([]byte("gone"), []byte("x"))
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tx, _ = db.Begin(ctx)
	tx.Delete([]byte("gone"))
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = kv.NewDB(openEngine(t, dir, Options{}))
	defer db.Close()
	tx, _ = db.Begin(ctx)
	defer tx.Discard()
	if v, err := tx.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get(k) after reopen = %q, %v", v, err)
	}
	if _, err := tx.Get([]byte("gone")); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get(gone) after reopen = %v; want ErrNotFound", err)
	}
}

func TestOpenError(t *testing.T) {
	fs := vfs.NewMem()
	f, err := fs.Create("file", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Open("file/db", Options{FS: fs})
	if err == nil || !strings.Contains(err.Error(), "file/db") {
		t.Fatalf("Open under a file = %v; want an error naming the dir", err)
	}
}

// TestEngine covers what kv.DB never sends: empty values and raw batches.
func TestEngine(t *testing.T) {
	eng := openEngine(t, "db", Options{FS: vfs.NewMem()})
	defer eng.Close()
	err := eng.Apply([]kv.Mutation{
		{Key: []byte("a"), Value: []byte{}},
		{Key: []byte("b"), Value: []byte("2")},
		{Key: []byte("c"), Value: []byte("3")},
		{Key: []byte("c")}, // a later mutation of the same key wins
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Apply(nil); err != nil {
		t.Fatalf("empty Apply: %v", err)
	}
	snap, err := eng.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if v, err := snap.Get([]byte("a")); err != nil || v == nil || len(v) != 0 {
		t.Errorf("Get(a) = %q (nil %v), %v; want a non-nil empty value", v, v == nil, err)
	}
	if _, err := snap.Get([]byte("c")); err != kv.ErrNotFound {
		t.Errorf("Get(c) = %v; want ErrNotFound", err)
	}
	kvs, err := snap.Scan(kv.Range{}, 0, true)
	if err != nil || len(kvs) != 2 || string(kvs[0].Key) != "b" || kvs[1].Value == nil {
		t.Errorf("reverse Scan = %q, %v", kvs, err)
	}
	if kvs, err := snap.Scan(kv.Range{Start: []byte("b"), End: []byte("a")}, 0, false); err != nil || len(kvs) != 0 {
		t.Errorf("inverted Scan = %q, %v", kvs, err)
	}
}

func TestClosed(t *testing.T) {
	eng := openEngine(t, "db", Options{FS: vfs.NewMem()})
	snap, err := eng.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Close releases the open snapshot instead of reporting it leaked.
	if err := eng.Close(); err != nil {
		t.Fatalf("Close with an open snapshot: %v", err)
	}
	if err := eng.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := snap.Get([]byte("k")); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("snapshot Get after Close = %v; want ErrClosed", err)
	}
	if _, err := snap.Scan(kv.Range{}, 0, false); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("snapshot Scan after Close = %v; want ErrClosed", err)
	}
	if err := snap.Close(); err != nil {
		t.Errorf("snapshot Close after Close = %v", err)
	}
	if err := eng.Apply([]kv.Mutation{{Key: []byte("k"), Value: []byte("v")}}); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Apply after Close = %v; want ErrClosed", err)
	}
	if _, err := eng.NewSnapshot(); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("NewSnapshot after Close = %v; want ErrClosed", err)
	}
}

// TestPowerLoss commits from many goroutines, cuts the power at a random
// moment (a crash image of the file system: unsynced writes lost, or some
// of them kept), and checks that the store opens (the durability marker
// sees no loss), that every acknowledged commit survived and that no
// transaction survived in part. Each run is powerLossRounds rounds; a
// longer hunt is `go test ./kv/pebble -run PowerLoss -count N`.
func TestPowerLoss(t *testing.T) {
	rounds := powerLossRounds
	if testing.Short() {
		rounds = 2
	}
	base := uint64(time.Now().UnixNano())
	checked := 0
	for i := range rounds {
		seed := base + uint64(i)
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { checked += crashRound(t, seed) })
	}
	t.Logf("%d power cuts, %d acknowledged commits checked", rounds, checked)
}

// powerLossRounds is how many power cuts one TestPowerLoss run makes.
const powerLossRounds = 12

// txnValue is what transaction id writes to each of its keys: derived from
// the id, so a value under the wrong id or a torn value is detected.
func txnValue(id string) string {
	return "value of " + id + strings.Repeat(".", 100+len(id)*3)
}

// fastClock is the real clock's time running a thousand times faster.
type fastClock struct {
	clock.Real
	start time.Time
}

func newFastClock() *fastClock { return &fastClock{start: time.Now()} }

func (c *fastClock) Now() time.Time { return c.start.Add(1000 * time.Since(c.start)) }

// crashRound runs one power cut and returns how many acknowledged commits
// it checked.
func crashRound(t *testing.T, seed uint64) int {
	rng := rand.New(rand.NewPCG(seed, 0))
	const writers = 8
	// A small memtable makes flushes (sstables, manifest) happen mid-run.
	fs := vfs.NewCrashableMem()
	// A fast clock makes checkpoints and marker writes happen mid-run too.
	opts := Options{FS: fs, MemTableSize: 64 << 10, Clock: newFastClock()}
	db := kv.NewDB(openEngine(t, "db", opts))
	ctx := context.Background()

	var (
		mu    sync.Mutex
		acked = map[string]bool{} // transaction ids whose Commit returned nil
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for g := range writers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("%02d-%06d", g, i)
				val := []byte(txnValue(id))
				tx, err := db.Begin(ctx)
				if err != nil {
					if !stop.Load() {
						t.Errorf("Begin: %v", err)
					}
					return
				}
				for _, k := range []string{"a", "b", "c"} {
					tx.Set([]byte("t/"+id+"/"+k), val)
				}
				// The writer's latest id: a key overwritten by every commit.
				tx.Set(fmt.Appendf(nil, "last/%02d", g), []byte(id))
				err = tx.Commit(ctx)
				switch {
				case err == nil:
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				case stop.Load():
					return // closed under us: outcome unknown, which is fine
				default:
					t.Errorf("Commit %s: %v", id, err)
					return
				}
			}
		})
	}

	// Crash after a random number of acknowledged commits.
	target := 1 + rng.IntN(5000)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= target || t.Failed() {
			break
		}
		time.Sleep(50 * time.Microsecond)
	}
	// Acks recorded before the clone began must survive it.
	mu.Lock()
	mustHave := maps.Clone(acked)
	mu.Unlock()
	unsynced := []int{0, 10, 50}[rng.IntN(3)]
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rng})
	stop.Store(true)
	wg.Wait()
	db.Close() // the original FS only; the clone is unaffected
	t.Logf("crashed after %d acknowledged commits (target %d, %d%% unsynced data kept)", len(mustHave), target, unsynced)

	db = kv.NewDB(openEngine(t, "db", Options{FS: crashed, MemTableSize: opts.MemTableSize}))
	defer db.Close()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Discard()
	kvs, err := tx.Scan(kv.Range{}, 0, false)
	if err != nil {
		t.Fatalf("scan after crash: %v", err)
	}
	present := map[string][]string{} // id -> suffixes found
	last := map[string]string{}      // writer -> latest id
	for _, p := range kvs {
		k := string(p.Key)
		switch {
		case strings.HasPrefix(k, "t/"):
			id, suffix, _ := strings.Cut(strings.TrimPrefix(k, "t/"), "/")
			if string(p.Value) != txnValue(id) {
				t.Errorf("%s = %.30q...; want the value of %s", k, p.Value, id)
			}
			present[id] = append(present[id], suffix)
		case strings.HasPrefix(k, "last/"):
			last[strings.TrimPrefix(k, "last/")] = string(p.Value)
		default:
			t.Errorf("unexpected key %q", k)
		}
	}
	for id, suffixes := range present {
		if !slices.Equal(suffixes, []string{"a", "b", "c"}) {
			t.Errorf("txn %s partially applied: has %v", id, suffixes)
		}
	}
	maxAcked := map[string]string{}
	for id := range mustHave {
		if present[id] == nil {
			t.Errorf("acknowledged txn %s lost", id)
		}
		w := id[:2]
		maxAcked[w] = max(maxAcked[w], id)
	}
	for w, id := range last {
		if present[id] == nil {
			t.Errorf("last/%s names txn %s, which is absent", w, id)
		}
	}
	for w, id := range maxAcked {
		if last[w] < id {
			t.Errorf("last/%s = %q, older than acknowledged %s", w, last[w], id)
		}
	}
	t.Logf("%d transactions recovered, %d of them acknowledged before the crash", len(present), len(mustHave))
	tx.Discard()

	// The recovered store accepts writes.
	tx, _ = db.Begin(ctx)
	tx.Set([]byte("after"), []byte("crash"))
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("commit after recovery: %v", err)
	}
	return len(mustHave)
}

// TestSharedSnapshots checks that sharing Pebble snapshots keeps the Engine
// contract: a snapshot includes every Apply that returned before it was
// taken, and none that came after.
func TestSharedSnapshots(t *testing.T) {
	eng := openEngine(t, "db", Options{FS: vfs.NewMem()})
	defer eng.Close()
	apply := func(k, v string) {
		t.Helper()
		if err := eng.Apply([]kv.Mutation{{Key: []byte(k), Value: []byte(v)}}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(s kv.Snapshot, k string) string {
		t.Helper()
		v, err := s.Get([]byte(k))
		if errors.Is(err, kv.ErrNotFound) {
			return "<none>"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}
	apply("k", "1")
	s1, _ := eng.NewSnapshot()
	s2, _ := eng.NewSnapshot() // shares s1's Pebble snapshot
	if s1.(*snapshot).sh != s2.(*snapshot).sh {
		t.Error("snapshots with no Apply between them were not shared")
	}
	s1.Close()
	apply("k", "2")
	s3, _ := eng.NewSnapshot()
	if got := get(s2, "k"); got != "1" {
		t.Errorf("old snapshot sees k=%s after closing its sharer; want 1", got)
	}
	if got := get(s3, "k"); got != "2" {
		t.Errorf("new snapshot sees k=%s; want 2", got)
	}
	s2.Close()
	s3.Close()
	s3.Close() // double Close must not drop another user's reference
	eng.snapMu.Lock()
	if n := len(eng.live); n != 1 || eng.cur == nil || eng.cur.refs != 1 {
		t.Errorf("after closing all snapshots: %d live, cur %+v; want only the cached one", n, eng.cur)
	}
	eng.snapMu.Unlock()

	// Concurrently: whatever a writer applied, a snapshot it takes next sees.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k, v := fmt.Sprintf("g%d", g), fmt.Sprint(i)
				if err := eng.Apply([]kv.Mutation{{Key: []byte(k), Value: []byte(v)}}); err != nil {
					t.Error(err)
					return
				}
				s, err := eng.NewSnapshot()
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Get([]byte(k))
				s.Close()
				if err != nil || string(got) != v {
					t.Errorf("after Apply %s=%s, snapshot has %q, %v", k, v, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Spec: a read waits for (and fails with) exactly the in-flight batches that
// wrote its key or a key in its range, and fails on exactly the keys whose
// write failed to sync.
func TestAwaitMatchesKeysRead(t *testing.T) {
	var e Engine
	e.syncs.init()
	failed := errors.New("sync failed")
	f := &flight{keys: []string{"b", "d/1", "d/3"}, done: make(chan struct{}), err: failed}
	close(f.done)
	e.syncs.inflight[f] = struct{}{}
	e.syncs.poisoned["p"] = failed
	for _, c := range []struct {
		r    kv.Range
		hits bool
	}{
		{kv.Range{Start: []byte("b"), End: []byte("b\x00")}, true},
		{kv.Range{Start: []byte("a"), End: []byte("a\x00")}, false},
		{kv.Range{Start: []byte("c"), End: []byte("c\x00")}, false},
		{kv.Range{Start: []byte("d/3"), End: []byte("d/3\x00")}, true},
		{kv.Range{Start: []byte("d/2"), End: []byte("d/2\x00")}, false},
		{kv.PrefixRange([]byte("d/")), true},
		{kv.Range{Start: []byte("d/1\x00"), End: []byte("d/3")}, false},
		{kv.Range{Start: []byte("d/4")}, true}, // unbounded: up to "p"
		{kv.Range{Start: []byte("p"), End: []byte("p\x00")}, true},
		{kv.Range{Start: []byte("q")}, false},
	} {
		if err := e.await(c.r); (err != nil) != c.hits || (err != nil && !errors.Is(err, failed)) {
			t.Errorf("await(%q-%q) = %v; want a failure: %v", c.r.Start, c.r.End, err, c.hits)
		}
	}
}
