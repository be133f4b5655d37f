package agent_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/kvtest"
	"github.com/kelpie/kelpie/kv/pebble"
	"github.com/kelpie/kelpie/letta"
)

// churn is a runtime configuration that deactivates actors constantly: the
// seed bug lived exactly in the window between an invocation and a
// deactivation.
var churn = actor.Config{MaxActivations: 2, IdleTimeout: time.Millisecond}

func newService(t testing.TB, store kv.Store, rc actor.Config) *agent.Service {
	t.Helper()
	svc, err := agent.New(agent.Config{Store: store, Runtime: rc, DefaultModel: "openai/gpt-4o-mini"})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func createReq(name, human string) letta.CreateAgentRequest {
	label1, label2, persona := "human", "persona", "I am "+name
	return letta.CreateAgentRequest{
		Name: &name,
		MemoryBlocks: []letta.CreateBlock{
			{Label: &label1, Value: &human},
			{Label: &label2, Value: &persona},
		},
		Tags: []string{"crash-test"},
	}
}

// TestSeedCreateThenGet is the scenario of the bug report Kelpie was born
// from: commits fail half the time (crash during transaction, or crash after
// write with the acknowledgement lost) while actors are evicted between the
// create and the read. A create that returned success must be readable, with
// exactly the state it returned.
func TestSeedCreateThenGet(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		eng := kvtest.NewFaultyEngine(kv.NewMemEngine(), seed, 0.25, 0.25)
		svc := newService(t, kv.NewDB(eng), churn)
		ctx := context.Background()
		created, failed := 0, 0
		for i := range 40 {
			st, err := svc.Agents.Create(ctx, createReq(fmt.Sprintf("seed%d-%d", seed, i), "v0"))
			if err != nil {
				if !errors.Is(err, kvtest.ErrInjected) {
					t.Fatalf("seed %d: create: unexpected error %v", seed, err)
				}
				failed++
				continue
			}
			created++
			got, err := svc.Agents.Get(ctx, st.ID, true)
			if err != nil {
				t.Fatalf("seed %d: create of %s returned success, then get failed: %v", seed, st.ID, err)
			}
			if !sameAgent(got, st) {
				t.Fatalf("seed %d: get differs from the state create returned:\ncreate %+v\nget    %+v", seed, st, got)
			}
		}
		dropped, lost := eng.Counts()
		if dropped == 0 || lost == 0 || created == 0 {
			t.Fatalf("seed %d: the test exercised too little: %d created, %d failed, %d dropped commits, %d lost acks",
				seed, created, failed, dropped, lost)
		}
		svc.Close(ctx)
	}
}

func sameAgent(a, b *letta.AgentState) bool {
	if a.ID != b.ID || a.Name != b.Name || !a.CreatedAt.Equal(b.CreatedAt.Time) || len(a.Blocks) != len(b.Blocks) {
		return false
	}
	for i := range a.Blocks {
		if a.Blocks[i].ID != b.Blocks[i].ID || a.Blocks[i].Value != b.Blocks[i].Value || a.Blocks[i].Label != b.Blocks[i].Label {
			return false
		}
	}
	return true
}

// ---- crash and recovery on the real engine ---------------------------------

// outcome of an operation relative to the crash point.
type outcome int

const (
	mustApply    outcome = iota // acknowledged before the crash image was taken
	mustNotApply                // failed definitely, or started after the image
	mayApply                    // in flight when the image was taken, or outcome unknown
)

// agentOp is one operation on an agent, in the order its client issued it.
type agentOp struct {
	kind         string // create, edit, delete
	value        string // the human block's value after an edit
	start, end   int64  // ticks of the global clock around the call
	err          error
	definiteFail bool
}

// agentHistory is what one client did to one of its agents.
type agentHistory struct {
	id, name string
	blockIDs []string
	ops      []agentOp
}

// modelState is what the checker can observe of an agent.
type modelState struct {
	exists bool
	human  string
}

func (op agentOp) apply(s modelState) modelState {
	switch op.kind {
	case "create":
		return modelState{exists: true, human: op.value}
	case "edit":
		if s.exists {
			s.human = op.value
		}
		return s
	case "delete":
		return modelState{}
	}
	panic("unknown op " + op.kind)
}

// possibleStates returns every state the agent may be in after the crash:
// operations that must have applied did, those that must not did not, and
// each one that may have applied is tried both ways.
func (h *agentHistory) possibleStates(imageStart, imageEnd int64) []modelState {
	states := []modelState{{}}
	for _, op := range h.ops {
		o := mayApply
		switch {
		case op.err == nil && op.end < imageStart:
			o = mustApply
		case op.definiteFail || op.start > imageEnd:
			o = mustNotApply
		}
		var next []modelState
		for _, s := range states {
			switch o {
			case mustApply:
				next = append(next, op.apply(s))
			case mustNotApply:
				next = append(next, s)
			case mayApply:
				next = append(next, s, op.apply(s))
			}
		}
		states = slices.Compact(next)
	}
	return states
}

// TestCrashRecoveryPebble runs concurrent clients against the service on
// Pebble, takes a crash image of the file system at an arbitrary moment
// (unsynced data is lost), throws every activation away, reopens the image
// and checks that nothing acknowledged was lost, nothing failed left a
// trace, and the indexes agree with the records.
func TestCrashRecoveryPebble(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 4
	}
	base := uint64(time.Now().UnixNano())
	for i := range rounds {
		seed := base + uint64(i)
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { crashRecoveryRound(t, seed) })
	}
}

func crashRecoveryRound(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewCrashableMem()
	open := func(fs vfs.FS) *kv.DB {
		eng, err := pebble.Open("data", pebble.Options{FS: fs, MemTableSize: 256 << 10})
		if err != nil {
			t.Fatal(err)
		}
		return kv.NewDB(eng)
	}
	store := open(fs)
	svc := newService(t, store, churn)
	ctx := context.Background()

	const clients = 8
	var (
		clock    atomic.Int64 // orders calls against the crash image
		acked    atomic.Int64
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []*agentHistory
		unknownC = map[string]*agentHistory{} // creates whose id is unknown, by name
	)
	for c := range clients {
		crng := rand.New(rand.NewPCG(seed, uint64(c)+100))
		wg.Go(func() {
			var mine []*agentHistory
			for n := 0; !stop.Load(); n++ {
				live := mine[:0:0]
				for _, h := range mine {
					if h.ops[len(h.ops)-1].kind != "delete" {
						live = append(live, h)
					}
				}
				var h *agentHistory
				op := agentOp{start: clock.Add(1)}
				switch r := crng.IntN(10); {
				case r < 4 || len(live) == 0:
					h = &agentHistory{name: fmt.Sprintf("c%d-%d", c, n)}
					op.kind, op.value = "create", "v0"
					st, err := svc.Agents.Create(ctx, createReq(h.name, op.value))
					op.err = err
					if err == nil {
						h.id = st.ID
						for _, b := range st.Blocks {
							h.blockIDs = append(h.blockIDs, b.ID)
						}
					}
				case r < 8:
					h = live[crng.IntN(len(live))]
					op.kind, op.value = "edit", fmt.Sprintf("c%d-edit-%d", c, n)
					_, op.err = svc.Agents.UpdateBlock(ctx, h.id, "human", letta.BlockUpdate{Value: &op.value})
				default:
					h = live[crng.IntN(len(live))]
					op.kind = "delete"
					op.err = svc.Agents.Delete(ctx, h.id)
				}
				op.end = clock.Add(1)
				// Busy and overloaded are refusals before anything ran.
				op.definiteFail = errors.Is(op.err, actor.ErrBusy) || errors.Is(op.err, actor.ErrOverloaded)
				if op.err != nil && !op.definiteFail && !stop.Load() {
					t.Errorf("%s on %q before the crash: %v", op.kind, h.name, op.err)
				}
				h.ops = append(h.ops, op)
				if op.kind == "create" {
					mu.Lock()
					if h.id != "" {
						mine = append(mine, h)
						all = append(all, h)
					} else {
						unknownC[h.name] = h
					}
					mu.Unlock()
				}
				if op.err == nil {
					acked.Add(1)
				}
			}
		})
	}

	target := int64(1 + rng.IntN(400))
	for acked.Load() < target && !t.Failed() {
		time.Sleep(100 * time.Microsecond)
	}
	imageStart := clock.Add(1)
	image := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(60), RNG: rng})
	imageEnd := clock.Add(1)
	// The process "dies": nothing is shut down cleanly. The clients are
	// stopped and the old store closed only so the test leaks nothing; the
	// image is already taken and cannot see any of it.
	stop.Store(true)
	store.Close()
	wg.Wait()
	svc.Close(ctx)

	recovered := open(image)
	defer recovered.Close()
	svc = newService(t, recovered, churn)
	defer svc.Close(ctx)
	t.Logf("crash image after %d acknowledged operations; %d agents known", acked.Load(), len(all))

	listed := map[string]*letta.AgentState{}
	for after := ""; ; {
		page, err := svc.Agents.List(ctx, agent.AgentFilter{WithBlocks: true}, letta.Page{After: after, Limit: 100, Order: letta.Asc})
		if err != nil {
			t.Fatalf("list after recovery: %v", err)
		}
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			if listed[a.ID] != nil {
				t.Fatalf("agent %s listed twice", a.ID)
			}
			listed[a.ID] = a
		}
		after = page[len(page)-1].ID
	}

	known := map[string]bool{}
	for _, h := range all {
		known[h.id] = true
		got, err := svc.Agents.Get(ctx, h.id, true)
		var s modelState
		switch {
		case err == nil:
			s.exists = true
			for _, b := range got.Blocks {
				if b.Label == "human" {
					s.human = b.Value
				}
			}
			if listed[h.id] == nil {
				t.Errorf("agent %s exists but is not listed", h.id)
			}
		case agent.KindOf(err) == letta.KindNotFound:
			if listed[h.id] != nil {
				t.Errorf("agent %s is listed but does not exist", h.id)
			}
		default:
			t.Fatalf("get %s after recovery: %v", h.id, err)
		}
		if want := h.possibleStates(imageStart, imageEnd); !slices.Contains(want, s) {
			t.Errorf("agent %s (%s) after recovery is %+v; possible states %+v; history %+v", h.id, h.name, s, want, h.ops)
		}
		// Attachments agree in both directions.
		for _, bid := range h.blockIDs {
			holders, err := svc.Blocks.Agents(ctx, bid, letta.Page{Limit: 100, Order: letta.Desc}, false)
			if err != nil {
				t.Fatalf("block %s agents: %v", bid, err)
			}
			has := slices.ContainsFunc(holders, func(a *letta.AgentState) bool { return a.ID == h.id })
			if has != s.exists {
				t.Errorf("block %s lists agent %s: %v; agent exists: %v", bid, h.id, has, s.exists)
			}
		}
	}
	for id, a := range listed {
		if known[id] {
			continue
		}
		// Only a create whose answer never came back may have left an agent
		// nobody was told about.
		h := unknownC[a.Name]
		if h == nil || h.ops[0].definiteFail || h.ops[0].start > imageEnd {
			t.Errorf("agent %s (%q) exists but no create of it could have applied", id, a.Name)
		}
	}

	// The recovered server works.
	st, err := svc.Agents.Create(ctx, createReq("after-crash", "fresh"))
	if err != nil {
		t.Fatalf("create after recovery: %v", err)
	}
	if _, err := svc.Agents.Get(ctx, st.ID, true); err != nil {
		t.Fatalf("get after recovery: %v", err)
	}
}
