package sim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Deliberately broken variants of the system. Each is a bug the simulator
// exists to catch; the tests below show that a short sweep does.

// ---- a step committed in pieces ------------------------------------------

// splitStepStore commits the tool results a transaction writes (with their
// id index entries) in a second transaction after the first: a turn step's
// calls land without their results, which follow a moment later. A crash
// or a failed write in between leaves calls without results.
type splitStepStore struct{ inner kv.Store }

func newSplitStepStore(inner kv.Store, _ VariantEnv) kv.Store { return &splitStepStore{inner} }

func (s *splitStepStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &splitStepTxn{Txn: t, s: s, where: map[string]bool{}}, nil
}

func (s *splitStepStore) Close() error { return s.inner.Close() }

type splitStepTxn struct {
	kv.Txn
	s        *splitStepStore
	deferred []kv.KeyValue
	where    map[string]bool // "<agent>/<seq hex>" of the deferred results
}

func (t *splitStepTxn) Set(key, value []byte) error {
	if !toolResultWrite(t.where, key, value, nil) {
		return t.Txn.Set(key, value)
	}
	t.deferred = append(t.deferred, kv.KeyValue{Key: bytes.Clone(key), Value: bytes.Clone(value)})
	return nil
}

// toolResultWrite tells the writes of a transaction that store a tool
// result message (one whose value also holds mark, if given) and its id
// index entry; where collects the results' places.
func toolResultWrite(where map[string]bool, key, value, mark []byte) bool {
	k := string(key)
	switch {
	case strings.HasPrefix(k, msgKeyPrefix) && bytes.Contains(value, []byte(`"role":"tool"`)) && bytes.Contains(value, mark):
		where[k[len(msgKeyPrefix):]] = true
		return true
	case strings.HasPrefix(k, msgIDPrefix) && where[string(value)]:
		return true
	}
	return false
}

// ---- a custom tool's result lost ---------------------------------------------

// lostToolResultStore never writes the results of the custom tool (with
// their id index entries), though the turn that ran it answers them: the
// next turn then finds the calls without results and answers them as
// interrupted.
type lostToolResultStore struct{ inner kv.Store }

func newLostToolResultStore(inner kv.Store, _ VariantEnv) kv.Store {
	return &lostToolResultStore{inner}
}

func (s *lostToolResultStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &lostToolResultTxn{Txn: t, where: map[string]bool{}}, nil
}

func (s *lostToolResultStore) Close() error { return s.inner.Close() }

type lostToolResultTxn struct {
	kv.Txn
	where map[string]bool
}

func (t *lostToolResultTxn) Set(key, value []byte) error {
	if toolResultWrite(t.where, key, value, []byte("noted "+toolMarker)) {
		return nil
	}
	return t.Txn.Set(key, value)
}

func (t *splitStepTxn) Commit(ctx context.Context) error {
	if err := t.Txn.Commit(ctx); err != nil || len(t.deferred) == 0 {
		return err
	}
	rest, err := t.s.inner.Begin(ctx)
	if err != nil {
		return err
	}
	defer rest.Discard()
	for _, p := range t.deferred {
		if err := rest.Set(p.Key, p.Value); err != nil {
			return err
		}
	}
	return rest.Commit(ctx)
}

// ---- a message sent again runs again ----------------------------------------

// forgetfulTurnStore never finds the otids and idempotency keys a turn
// has answered: a message sent again runs a second turn.
type forgetfulTurnStore struct{ inner kv.Store }

func newForgetfulTurnStore(inner kv.Store, _ VariantEnv) kv.Store { return &forgetfulTurnStore{inner} }

func (s *forgetfulTurnStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &forgetfulTurnTxn{t}, nil
}

func (s *forgetfulTurnStore) Close() error { return s.inner.Close() }

type forgetfulTurnTxn struct{ kv.Txn }

func (t *forgetfulTurnTxn) Get(key []byte) ([]byte, error) {
	if bytes.HasPrefix(key, []byte(turnKeyPrefix)) {
		return nil, kv.ErrNotFound
	}
	return t.Txn.Get(key)
}

// ---- memory edits that do not stick -------------------------------------

// lostEditStore drops the block writes of turn steps (transactions that
// also write a message): memory tools report success, the block keeps its
// value.
type lostEditStore struct{ inner kv.Store }

func newLostEditStore(inner kv.Store, _ VariantEnv) kv.Store { return &lostEditStore{inner} }

func (s *lostEditStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &lostEditTxn{Txn: t}, nil
}

func (s *lostEditStore) Close() error { return s.inner.Close() }

type lostEditTxn struct {
	kv.Txn
	wroteMessage bool
}

func (t *lostEditTxn) Set(key, value []byte) error {
	k := string(key)
	if strings.HasPrefix(k, msgKeyPrefix) {
		t.wroteMessage = true
	}
	if strings.HasPrefix(k, blockPrefix) && t.wroteMessage {
		return nil
	}
	return t.Txn.Set(key, value)
}

// ---- a turn that never ends -------------------------------------------------

// stuckTurnStore never returns from the commit that ends a turn (the one
// that completes its run and clears the agent's active run) until the
// process ends: the turn stays running, holding its agent's turn lock.
type stuckTurnStore struct {
	inner kv.Store
	env   VariantEnv
}

func newStuckTurnStore(inner kv.Store, env VariantEnv) kv.Store { return &stuckTurnStore{inner, env} }

func (s *stuckTurnStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &stuckTurnTxn{Txn: t, done: s.env.Done}, nil
}

func (s *stuckTurnStore) Close() error { return s.inner.Close() }

type stuckTurnTxn struct {
	kv.Txn
	done                 <-chan struct{}
	clearsRun, writesRun bool
}

func (t *stuckTurnTxn) Set(key, value []byte) error {
	t.writesRun = t.writesRun || bytes.HasPrefix(key, []byte(schema.Runs.Prefix))
	return t.Txn.Set(key, value)
}

func (t *stuckTurnTxn) Delete(key []byte) error {
	t.clearsRun = t.clearsRun || bytes.HasPrefix(key, []byte(schema.ActiveRuns.Prefix))
	return t.Txn.Delete(key)
}

func (t *stuckTurnTxn) Commit(ctx context.Context) error {
	if t.clearsRun && t.writesRun {
		<-t.done
	}
	return t.Txn.Commit(ctx)
}

// ---- a message sent again that never gets its answer -------------------------

// resendHangStore never commits the start of a turn that finds its message
// already answered (it read the message's turn key) until the process
// ends: the agent's turn slot is held by the resend, then its actor by the
// invocation, and every later call on the agent waits. A crash ends the
// hang, so under a profile with crashes only a judgement of each failed
// call by what happened to it catches it.
type resendHangStore struct {
	inner kv.Store
	env   VariantEnv
}

func newResendHangStore(inner kv.Store, env VariantEnv) kv.Store {
	return &resendHangStore{inner, env}
}

func (s *resendHangStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &resendHangTxn{Txn: t, done: s.env.Done}, nil
}

func (s *resendHangStore) Close() error { return s.inner.Close() }

type resendHangTxn struct {
	kv.Txn
	done     <-chan struct{}
	answered bool
}

func (t *resendHangTxn) Get(key []byte) ([]byte, error) {
	v, err := t.Txn.Get(key)
	t.answered = t.answered || err == nil && bytes.HasPrefix(key, []byte(schema.TurnKeys.Prefix))
	return v, err
}

func (t *resendHangTxn) Commit(ctx context.Context) error {
	if t.answered {
		<-t.done
	}
	return t.Txn.Commit(ctx)
}

// ---- a memory edit past the block's limit -----------------------------------

// overLimitStore stores the blocks that turn steps edit (transactions that
// also write a message) with a limit below their new value, as a memory
// tool that skipped the limit check would leave them.
type overLimitStore struct{ inner kv.Store }

func newOverLimitStore(inner kv.Store, _ VariantEnv) kv.Store { return &overLimitStore{inner} }

func (s *overLimitStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &overLimitTxn{Txn: t}, nil
}

func (s *overLimitStore) Close() error { return s.inner.Close() }

type overLimitTxn struct {
	kv.Txn
	wroteMessage bool
}

func (t *overLimitTxn) Set(key, value []byte) error {
	t.wroteMessage = t.wroteMessage || bytes.HasPrefix(key, []byte(schema.Messages.Prefix))
	if !t.wroteMessage || !bytes.HasPrefix(key, []byte(schema.Blocks.Prefix)) {
		return t.Txn.Set(key, value)
	}
	var b map[string]any
	if err := json.Unmarshal(value, &b); err != nil {
		return err
	}
	if v, _ := b["value"].(string); utf8.RuneCountInString(v) > 0 {
		b["limit"] = utf8.RuneCountInString(v) - 1
	}
	over, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return t.Txn.Set(key, over)
}

// ---- an interrupted run left open ---------------------------------------------

// openRunStore never writes the record that closes a run cut off by a
// crash (at the agent's next turn): the run stays running though the agent
// has moved on to a new turn.
type openRunStore struct{ inner kv.Store }

func newOpenRunStore(inner kv.Store, _ VariantEnv) kv.Store { return &openRunStore{inner} }

func (s *openRunStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &openRunTxn{t}, nil
}

func (s *openRunStore) Close() error { return s.inner.Close() }

type openRunTxn struct{ kv.Txn }

func (t *openRunTxn) Set(key, value []byte) error {
	if bytes.HasPrefix(key, []byte(schema.Runs.Prefix)) && bytes.Contains(value, []byte(`"error":"the turn was interrupted`)) {
		return nil
	}
	return t.Txn.Set(key, value)
}

// ---- a cursor that skips an item --------------------------------------------

// cursorSkipStore drops the first key of a forward scan of an index that
// starts at a cursor rather than at the start of the index: the page of a
// listing after a cursor misses its first item.
type cursorSkipStore struct{ inner kv.Store }

func newCursorSkipStore(inner kv.Store, _ VariantEnv) kv.Store { return &cursorSkipStore{inner} }

func (s *cursorSkipStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &cursorSkipTxn{t}, nil
}

func (s *cursorSkipStore) Close() error { return s.inner.Close() }

type cursorSkipTxn struct{ kv.Txn }

func (t *cursorSkipTxn) Scan(r kv.Range, limit int, reverse bool) ([]kv.KeyValue, error) {
	kvs, err := t.Txn.Scan(r, limit, reverse)
	// "index/<family>/" starts an index; a key in it has more slashes.
	atCursor := bytes.HasPrefix(r.Start, []byte("index/")) && bytes.Count(r.Start, []byte("/")) > 2
	if err == nil && !reverse && atCursor && len(kvs) > 0 {
		kvs = kvs[1:]
	}
	return kvs, err
}

// ---- an index entry never written ----------------------------------------------

// termLossStore never writes the keys under lost: with the prefix of the
// tag index entries of tag "blue", agents created with it are missing from
// the listing filtered by it; with the prefix of the deltas of its count
// (and lostCount, the count's line in a create's count key, which a create
// counts it with), the count by it is short.
type termLossStore struct {
	inner     kv.Store
	lost      []byte
	lostCount string
}

var blue = schema.Term{Kind: schema.TermTag, Value: "blue"}

func newTermLossStore(inner kv.Store, _ VariantEnv) kv.Store {
	return &termLossStore{inner: inner, lost: schema.TermPrefix(blue)}
}

func newTermCountLossStore(inner kv.Store, _ VariantEnv) kv.Store {
	count := strings.TrimPrefix(string(schema.TermCountBaseKey(blue)), schema.TermCounts.Prefix+"base/")
	return &termLossStore{inner, schema.TermCountDeltaKey(blue, ""), count}
}

func (s *termLossStore) Begin(ctx context.Context) (kv.Txn, error) {
	t, err := s.inner.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &termLossTxn{t, s}, nil
}

func (s *termLossStore) Close() error { return s.inner.Close() }

type termLossTxn struct {
	kv.Txn
	s *termLossStore
}

func (t *termLossTxn) Set(key, value []byte) error {
	if bytes.HasPrefix(key, t.s.lost) {
		return nil
	}
	if t.s.lostCount != "" && bytes.HasPrefix(key, []byte(schema.CreateCounts.Prefix)) {
		lines := slices.DeleteFunc(strings.Split(string(value), "\n"), func(l string) bool { return l == t.s.lostCount })
		value = []byte(strings.Join(lines, "\n"))
	}
	return t.Txn.Set(key, value)
}

// ---- the tests ------------------------------------------------------------

// plantedBug is a broken variant and what must catch it.
type plantedBug struct {
	name    string
	variant Variant
	profile string
	// catchers are the checkers whose violations count as catching it.
	catchers []string
	// message, when set, must appear in the catching violation.
	message string
	// tune, when set, adjusts the run's configuration.
	tune func(*Config)
	// seeds is how many seeds it may take to be caught (0:
	// maxSeedsToCatch).
	seeds int
	// parallel is how many of its seeds run at once (0: one). A cluster
	// run mostly waits for leases to lapse in real time, so several fit
	// on a core.
	parallel int
}

var plantedBugs = []plantedBug{
	{
		name:     "ack-before-commit",
		variant:  Variant{Name: "ack before commit, save on deactivation", WrapStore: newWriteBackStore},
		profile:  "crash",
		catchers: []string{"create-get", "durability"},
		message:  "acknowledged write lost",
	},
	{
		name:     "partial-delete",
		variant:  Variant{Name: "agent delete in two transactions", WrapStore: newSplitDeleteStore},
		profile:  "all",
		catchers: []string{"invariants", "partial-effect"},
	},
	{
		name:     "lost-block-edit",
		variant:  Variant{Name: "agents cache their blocks and write them all back", WrapStore: newBlockCacheStore},
		profile:  "none",
		catchers: []string{"durability", "delete-get", "linearizability"},
	},
	{
		name:     "double-activation",
		variant:  Variant{Name: "two runtimes serve every agent", Replicas: 2},
		profile:  "none",
		catchers: []string{"single-activation"},
	},
	{
		name:     "split-step",
		variant:  Variant{Name: "tool results committed after their calls, in a second transaction", WrapStore: newSplitStepStore},
		profile:  "crash",
		catchers: []string{"invariants", "history"},
		message:  "result",
	},
	{
		name:     "ack-before-commit-messages",
		variant:  Variant{Name: "ack before commit, save on deactivation", WrapStore: newWriteBackStore},
		profile:  "crash",
		catchers: []string{"message-lost"},
	},
	{
		name:     "split-step-history",
		variant:  Variant{Name: "tool results committed after their calls, in a second transaction", WrapStore: newSplitStepStore},
		profile:  "crash",
		catchers: []string{"history"},
	},
	{
		name:     "lost-tool-result",
		variant:  Variant{Name: "a custom tool's results are not written", WrapStore: newLostToolResultStore},
		profile:  "none",
		catchers: []string{"message-lost"},
	},
	{
		name:     "lost-memory-edit",
		variant:  Variant{Name: "memory tool edits not written", WrapStore: newLostEditStore},
		profile:  "none",
		catchers: []string{"memory"},
	},
	{
		name:     "lost-memory-edit-linearizability",
		variant:  Variant{Name: "memory tool edits not written", WrapStore: newLostEditStore},
		profile:  "none",
		catchers: []string{"linearizability"},
	},
	{
		name:     "resend-runs-twice",
		variant:  Variant{Name: "answered otids are never found: a message sent again runs again", WrapStore: newForgetfulTurnStore},
		profile:  "none",
		catchers: []string{"duplicate-turn"},
	},
	{
		name:     "tool-edit-past-limit",
		variant:  Variant{Name: "memory tool edits store blocks over their limit", WrapStore: newOverLimitStore},
		profile:  "none",
		catchers: []string{"invariants"},
		message:  "over its limit",
	},
	{
		name:     "interrupted-run-left-open",
		variant:  Variant{Name: "the next turn does not close a run a crash cut off", WrapStore: newOpenRunStore},
		profile:  "crash",
		catchers: []string{"invariants"},
		message:  "never closed",
	},
	{
		name:     "cursor-skips-one",
		variant:  Variant{Name: "a listing's page after a cursor misses its first item", WrapStore: newCursorSkipStore},
		profile:  "none",
		catchers: []string{"listing"},
		message:  "cursors",
	},
	{
		name:     "tag-index-entry-lost",
		variant:  Variant{Name: "the entries of one tag are never written to its index", WrapStore: newTermLossStore},
		profile:  "none",
		catchers: []string{"listing"},
		message:  `shows with tag "blue"`,
	},
	{
		name:     "tag-count-delta-lost",
		variant:  Variant{Name: "the count of one tag is never raised or lowered", WrapStore: newTermCountLossStore},
		profile:  "none",
		catchers: []string{"listing"},
		message:  "count?tags=blue answered",
	},
	{
		name:     "stuck-turn",
		variant:  Variant{Name: "the commit that ends a turn never returns", WrapStore: newStuckTurnStore},
		profile:  "none",
		catchers: []string{"liveness"},
		message:  "turn(s) running",
		// Short bounds: natively the simulated clock is the real one.
		tune: func(c *Config) { c.OpTimeout, c.SettleTimeout = 100*time.Millisecond, 100*time.Millisecond },
	},
}

// The planted hang is caught under every profile, within a few seeds: a
// profile's faults excuse only the calls they hit.
func init() {
	for _, profile := range ProfileNames {
		if isCluster(MustProfile(profile)) {
			continue // a cluster run does not wrap its nodes' stores (Variant.WrapStore)
		}
		plantedBugs = append(plantedBugs, plantedBug{
			name:     "resend-hangs-" + profile,
			variant:  Variant{Name: "a message sent again never gets its answer", WrapStore: newResendHangStore},
			profile:  profile,
			catchers: []string{"liveness"},
			message:  "a resend of",
			// A seed takes about a second; the run's bound only cuts short
			// the rare seed whose hung commit holds up the clients' finish
			// (natively RunTimeout is real time, 2 minutes by default).
			tune: func(c *Config) {
				c.OpTimeout, c.SettleTimeout, c.RunTimeout = 300*time.Millisecond, 300*time.Millisecond, resendHangRunTimeout
			},
			seeds: 5,
		})
	}
}

// resendHangRunTimeout bounds a resend-hangs run.
const resendHangRunTimeout = 30 * time.Second

// maxSeedsToCatch is how many seeds a planted bug may take to be caught.
const maxSeedsToCatch = 300

// TestPlantedBugs runs each broken variant over consecutive seeds until a
// run reports the violation that names the bug.
func TestPlantedBugs(t *testing.T) {
	for _, bug := range plantedBugs {
		t.Run(bug.name, func(t *testing.T) {
			v := bug.variant
			budget := cmp.Or(bug.seeds, maxSeedsToCatch)
			// A run keeps only the violations that catch the bug, so that
			// the hunt ends at the first of those; the rest are logged.
			run := func(_ context.Context, seed uint64) Result {
				cfg := Config{Seed: seed, Faults: MustProfile(bug.profile), Variant: &v}
				if bug.tune != nil {
					bug.tune(&cfg)
				}
				r := Run(cfg)
				if r.Failed() {
					t.Logf("seed %d: %s", seed, clipString(r.Report(), 2000))
				}
				r.Error = ""
				r.Violations = slices.DeleteFunc(r.Violations, func(viol Violation) bool {
					return !slices.Contains(bug.catchers, viol.Checker) || !strings.Contains(viol.Message, bug.message)
				})
				return r
			}
			hunt := Hunt{First: 1, Count: budget, UntilFailure: true, Parallel: cmp.Or(bug.parallel, 1)}
			if sum := hunt.Run(context.Background(), run, nil); len(sum.Failed) > 0 {
				r := sum.Failed[0]
				viol := r.Violations[0]
				t.Logf("%s caught at seed %d (%d seeds run), by %s: %s\n%s", bug.name, r.Seed, sum.Seeds, viol.Checker, viol.Message, clipString(viol.History, 3000))
				return
			}
			t.Errorf("%s was not caught in %d seeds", bug.name, budget)
		})
	}
}
