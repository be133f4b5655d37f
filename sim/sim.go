package sim

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
)

// Defaults for Config fields left zero.
const (
	DefaultClients        = 8
	DefaultOps            = 300
	DefaultMaxActivations = 3
	DefaultIdleTimeout    = 2 * time.Millisecond
	DefaultThinkTime      = time.Millisecond
	DefaultOpTimeout      = 10 * time.Second
	DefaultRunTimeout     = 2 * time.Minute
	DefaultSettleTimeout  = 30 * time.Second
)

// Config configures one run.
type Config struct {
	// Seed determines every random choice of the run.
	Seed uint64
	// Faults is what goes wrong.
	Faults Profile
	// Clients is how many simulated clients issue operations at once.
	Clients int
	// Ops is how many operations the clients issue in all.
	Ops int
	// MaxActivations and IdleTimeout configure the actor runtime; they are
	// low by default so that actors deactivate and reactivate constantly.
	MaxActivations int
	IdleTimeout    time.Duration
	// ThinkTime bounds the random pause of a client between two operations
	// (0: DefaultThinkTime; negative: none).
	ThinkTime time.Duration
	// OpTimeout bounds one operation; one that times out has an unknown
	// outcome.
	OpTimeout time.Duration
	// RunTimeout bounds the whole run; a run that takes longer is reported
	// as a liveness violation.
	RunTimeout time.Duration
	// SettleTimeout bounds, in simulated time, how long the turns still
	// running when the clients finish may take to end; longer is a
	// liveness violation.
	SettleTimeout time.Duration
	// Clock is the base of the simulated clock; nil means the real clock
	// (which under GOOS=wasip1 the host simulates).
	Clock clock.Clock
	// Variant, when set, replaces parts of the system with deliberately
	// broken ones. Only tests set it, to show that the checkers catch bugs.
	Variant *Variant
}

func (c Config) withDefaults() Config {
	if c.Clients <= 0 {
		c.Clients = DefaultClients
	}
	if c.Ops <= 0 {
		c.Ops = DefaultOps
	}
	if c.MaxActivations <= 0 {
		c.MaxActivations = DefaultMaxActivations
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ThinkTime == 0 {
		c.ThinkTime = DefaultThinkTime
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.RunTimeout <= 0 {
		c.RunTimeout = DefaultRunTimeout
	}
	if c.SettleTimeout <= 0 {
		c.SettleTimeout = DefaultSettleTimeout
	}
	return c
}

// Variant plants a bug: tests use it to show that a sweep catches each kind
// of bug the checkers are for. Production code never sets it.
type Variant struct {
	// Name describes the bug.
	Name string
	// WrapStore, when set, wraps the store of each incarnation of the
	// service (each start of the simulated process; in a cluster run, each
	// start of each node).
	WrapStore func(store kv.Store, env VariantEnv) kv.Store
	// Replicas, when above 1, runs that many services, each with its own
	// actor runtime, over the same store, and sends each request to one of
	// them at random.
	Replicas int
	// WrapPlacement, when set, wraps each cluster node's placement (a
	// cluster run: see cluster.go); store is the node's store.
	WrapPlacement func(p actor.Placement, store kv.Store) actor.Placement
	// WrapForward, when set, wraps each cluster node's transport of
	// forwarded requests; sign is the node's (cluster.Node.Sign).
	WrapForward func(rt http.RoundTripper, sign func(*http.Request)) http.RoundTripper
	// WrapCluster, when set, wraps each cluster node as its API sees it
	// (routes, forwarded marks).
	WrapCluster func(c api.Cluster) api.Cluster
	// WrapNodeClock, when set, wraps the clock each cluster node's
	// membership (its lease renewals and self-fence timer) runs on.
	WrapNodeClock func(c clock.Clock) clock.Clock
}

// VariantEnv is what a Variant's wrapper may use.
type VariantEnv struct {
	Clock       clock.Clock
	IdleTimeout time.Duration
	// Done is closed when the incarnation crashes or the run ends.
	Done <-chan struct{}
	// Seed seeds the variant's own random choices.
	Seed uint64
}

// Result is what a run found.
type Result struct {
	Seed uint64
	// Profile is the text form of the fault profile.
	Profile string
	// Trace is a hash of every recorded event: operation calls and returns
	// with their ids, logical times, clock readings and responses, fault
	// injections, crashes and restarts. Under GOOS=wasip1 with a simulated
	// clock, equal seeds give equal traces.
	Trace [32]byte
	// Ops is how many operations the clients issued.
	Ops int
	// Faults counts injected faults by kind, and restarts.
	Faults map[string]int
	// Violations are the checkers' findings; empty when the run passed.
	Violations []Violation
	// SimTime is how long the run took on the base clock.
	SimTime time.Duration
	// Checked counts what the message checkers examined, by name: sends
	// answered, histories read back, tool calls replayed, and so on.
	Checked map[string]int `json:",omitempty"`
	// Error says why the run could not complete (it was interrupted, or
	// the host running it failed); such a result has no trace. A run that
	// completed with violations has none.
	Error string `json:",omitempty"`
	// Wall is how long the run took in wall time, as Sweep measured it:
	// not part of what a seed replays.
	Wall time.Duration `json:"-"`
}

// Failed reports whether the run found a violation or did not complete.
func (r Result) Failed() bool { return r.Error != "" || len(r.Violations) > 0 }

// Violation is one checker's finding.
type Violation struct {
	// Checker names the property that failed.
	Checker string
	// Message says what happened.
	Message string
	// History is the part of the recorded history that shows it, one
	// operation a line.
	History string
}

// Checkers are the properties a run checks, by the names violations carry.
var Checkers = []string{
	"create-get",        // an acknowledged create is later not found
	"delete-get",        // an acknowledged delete is later found
	"durability",        // an acknowledged write is later overwritten by an older one
	"partial-effect",    // an effect of a failed operation is visible
	"corruption",        // a damaged or never-written value reached a client
	"single-activation", // two activations of one actor ran at once
	"linearizability",   // a per-object history has no linearization
	"invariants",        // stored records, indexes and attachments disagree
	"unexpected-error",  // a server error or panic with no fault to cause it
	"liveness",          // the run did not finish, or left a turn, turn lock or wait behind
	"message-lost",      // an acknowledged message is missing from the history
	"duplicate-turn",    // one message ran two turns, or a resend got another answer
	"history",           // a history has a call without one result, split runs, ...
	"memory",            // a block's value does not follow from its memory tool calls
	"listing",           // a listing, whole or walked page by page, is out of order, repeats, skips or disagrees with the model
	"forwarding",        // a cluster node received one forwarded call twice
}

// Line is the one-line summary of the run: exactly
// "seed=N trace=HEX ops=N violations=N", then " faults=kind:n,..." when any
// fault was injected and " sim_time=DURATION"; for a run that did not
// complete, "seed=N trace=- ops=0 violations=0 error=QUOTED".
func (r Result) Line() string {
	if r.Error != "" {
		return fmt.Sprintf("seed=%d trace=- ops=0 violations=0 error=%q", r.Seed, r.Error)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seed=%d trace=%s ops=%d violations=%d", r.Seed, hex.EncodeToString(r.Trace[:]), r.Ops, len(r.Violations))
	if len(r.Faults) > 0 {
		b.WriteString(" faults=")
		b.WriteString(formatCounts(r.Faults))
	}
	fmt.Fprintf(&b, " sim_time=%s", r.SimTime.Round(time.Microsecond))
	return b.String()
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ",")
}

// ReplayCommand is the command that replays the run.
func (r Result) ReplayCommand() string {
	return ReplayCommand(r.Seed, r.Profile)
}

// ReplayCommand is the command that replays seed under profile.
func ReplayCommand(seed uint64, profile string) string {
	if profile == "" {
		profile = "none"
	}
	return fmt.Sprintf("go run ./cmd/kelpie sim --seed %d --faults %s", seed, profile)
}

// Report is the full account of a failed run: the seed, each violation with
// its checker, message and history, and the command that replays it. It is
// empty for a run that passed.
func (r Result) Report() string {
	if len(r.Violations) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d (faults %s): %d violation(s)\n", r.Seed, r.Profile, len(r.Violations))
	for i, v := range r.Violations {
		fmt.Fprintf(&b, "\n[%d] checker %s: %s\n", i+1, v.Checker, v.Message)
		if v.History != "" {
			b.WriteString(indent(v.History, "    "))
		}
	}
	fmt.Fprintf(&b, "\nreplay: %s\n", r.ReplayCommand())
	return b.String()
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}
