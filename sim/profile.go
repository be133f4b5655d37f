package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FaultKind names one kind of fault.
type FaultKind string

// Storage faults are drawn on the operations of the storage engine (the
// simulated disk under kv.DB); process and clock faults on the clients'
// operations.
const (
	// WriteFail fails a batch without applying it (an I/O error on write).
	WriteFail FaultKind = "write_fail"
	// ReadFail fails a snapshot, get or scan (an I/O error on read).
	ReadFail FaultKind = "read_fail"
	// CorruptRead damages the bytes a read returns, once (a bad transfer).
	CorruptRead FaultKind = "corrupt_read"
	// CorruptWrite stores a damaged value for one key of a batch, which
	// is acknowledged (bit rot at rest: the value stays damaged).
	CorruptWrite FaultKind = "corrupt_write"
	// Latency delays an engine operation by up to a millisecond.
	Latency FaultKind = "latency"
	// DiskFull fails the next one to eight batches without applying them.
	DiskFull FaultKind = "disk_full"
	// FsyncFail applies a batch or not (a coin decides) and fails it.
	FsyncFail FaultKind = "fsync_fail"
	// CrashBeforeWrite crashes the process as a batch arrives: not applied.
	CrashBeforeWrite FaultKind = "crash_before_write"
	// CrashAfterWrite crashes the process once a batch is durable: it is
	// applied, but the caller sees an error.
	CrashAfterWrite FaultKind = "crash_after_write"
	// CrashDuringTxn crashes the process while a transaction is reading:
	// it never commits.
	CrashDuringTxn FaultKind = "crash_during_txn"
	// ProcessCrash crashes the process at an arbitrary point between and
	// during client operations.
	ProcessCrash FaultKind = "process_crash"
	// ClockSkew sets the service's clock off by up to ten minutes.
	ClockSkew FaultKind = "clock_skew"
	// ClockJump moves the service's clock forward or back by up to two hours.
	ClockJump FaultKind = "clock_jump"

	// LLM faults are drawn on each request to the simulated model provider
	// (its key is the agent's id; op is "stream" or "complete").
	//
	// LLMError fails the request with a retryable server error (500, 502,
	// 503 or 529), sometimes after part of a streamed answer.
	LLMError FaultKind = "llm_error"
	// LLMRateLimit fails the request with 429 and a Retry-After.
	LLMRateLimit FaultKind = "llm_rate_limit"
	// LLMTimeout blocks the request for a simulated while (or until its
	// context ends) and then fails it as timed out.
	LLMTimeout FaultKind = "llm_timeout"
	// LLMBadResponse answers with a response a model should not give: a
	// call of an unknown tool or of a tool the agent lacks, malformed or
	// mistyped JSON arguments, a call without an id, two calls with one
	// id, a call reusing the id of an earlier turn's, or nothing at all.
	LLMBadResponse FaultKind = "llm_bad_response"

	// Cluster faults (cluster.go) make the run a cluster of ClusterNodes
	// nodes on one shared database. Node faults are drawn on the clients'
	// operations, network faults on each forwarded request.
	//
	// NodeCrash crashes one node (its activations, memory and requests
	// lost, its lease left to lapse) and restarts it a little later.
	NodeCrash FaultKind = "node_crash"
	// DBPartition cuts one node off from the database for a while.
	DBPartition FaultKind = "db_partition"
	// PeerPartition cuts one node off from its peers for a while: its
	// forwards, and those sent to it, are refused.
	PeerPartition FaultKind = "peer_partition"
	// LeaseStall stalls one node's database calls, its lease renewals
	// among them, for a while (each waits until its deadline).
	LeaseStall FaultKind = "lease_stall"
	// NodeSkew sets a node's clock off by up to maxNodeSkew when it starts.
	NodeSkew FaultKind = "node_skew"
	// ForwardDelay delays a forwarded request by up to maxForwardDelay.
	ForwardDelay FaultKind = "forward_delay"
	// ForwardDrop loses a forwarded request before it arrives, or its
	// answer after the owner ran it.
	ForwardDrop FaultKind = "forward_drop"
	// ForwardDuplicate delivers a forwarded request twice (a copy follows
	// it, as a proxy that re-sends does): the owner must run it once.
	ForwardDuplicate FaultKind = "forward_duplicate"
	// ForwardReorder holds a forwarded request until a later forward of
	// its sender has arrived (or up to maxForwardDelay).
	ForwardReorder FaultKind = "forward_reorder"
	// DBReplyLost commits a node's transaction in the database and loses
	// the answer: the node sees kv.ErrUnavailable (outcome unknown).
	DBReplyLost FaultKind = "db_reply_lost"
	// NodeJump steps one node's clock forwards or back by up to
	// maxNodeJump (an NTP step, an operator).
	NodeJump FaultKind = "node_jump"
)

// Fault is one fault of a profile.
type Fault struct {
	Kind FaultKind
	// Prob is the chance of injecting the fault on each eligible operation.
	Prob float64
	// Key, when set, limits a storage fault to operations on keys with this
	// prefix (a batch is eligible when any of its keys is).
	Key string
	// Op, when set to "read" or "write", limits a storage fault to reads
	// (snapshots, gets, scans) or writes (batches). Only Latency has both.
	Op string
	// After makes the fault eligible only after this many eligible
	// operations have passed.
	After int
	// Max bounds how many times the fault is injected in one run; 0 means
	// no bound.
	Max int
}

// faultKinds are the known kinds, in canonical order, with their defaults.
var faultDefaults = []Fault{
	{Kind: WriteFail, Prob: 0.03, Max: 8},
	{Kind: ReadFail, Prob: 0.004, Max: 8},
	{Kind: CorruptRead, Prob: 0.002, Max: 4},
	{Kind: CorruptWrite, Prob: 0.004, Max: 2},
	{Kind: Latency, Prob: 0.02, Max: 40},
	{Kind: DiskFull, Prob: 0.01, Max: 2},
	{Kind: FsyncFail, Prob: 0.02, Max: 4},
	{Kind: CrashBeforeWrite, Prob: 0.008, Max: 2},
	{Kind: CrashAfterWrite, Prob: 0.008, Max: 2},
	{Kind: CrashDuringTxn, Prob: 0.001, Max: 2},
	{Kind: ProcessCrash, Prob: 0.01, Max: 4},
	{Kind: ClockSkew, Prob: 0.02, Max: 6},
	{Kind: ClockJump, Prob: 0.01, Max: 4},
	{Kind: LLMError, Prob: 0.04, Max: 10},
	{Kind: LLMRateLimit, Prob: 0.03, Max: 10},
	{Kind: LLMTimeout, Prob: 0.02, Max: 6},
	{Kind: LLMBadResponse, Prob: 0.05, Max: 12},
	{Kind: ToolCrash, Prob: 0.1, Max: 6},
	{Kind: ToolTimeout, Prob: 0.05, Max: 4},
	{Kind: ToolHugeOutput, Prob: 0.05, Max: 4},
	{Kind: NodeCrash, Prob: 0.006, Max: 2},
	{Kind: DBPartition, Prob: 0.006, Max: 2},
	{Kind: PeerPartition, Prob: 0.006, Max: 2},
	{Kind: LeaseStall, Prob: 0.006, Max: 2},
	{Kind: NodeSkew, Prob: 0.5},
	{Kind: ForwardDelay, Prob: 0.1, Max: 40},
	{Kind: ForwardDrop, Prob: 0.03, Max: 6},
	{Kind: ForwardDuplicate, Prob: 0.05, Max: 20},
	{Kind: ForwardReorder, Prob: 0.05, Max: 20},
	{Kind: DBReplyLost, Prob: 0.005, Max: 4},
	{Kind: NodeJump, Prob: 0.01, Max: 4},
	{Kind: MCPDisconnect, Prob: 0.08, Max: 4},
	{Kind: MCPHang, Prob: 0.05, Max: 3},
	{Kind: MCPError, Prob: 0.08, Max: 4},
}

// groups are the named profiles.
var groups = map[string][]FaultKind{
	"none":    nil,
	"storage": {WriteFail, ReadFail, CorruptRead, CorruptWrite, Latency, DiskFull, FsyncFail},
	"crash":   {CrashBeforeWrite, CrashAfterWrite, CrashDuringTxn, ProcessCrash},
	"clock":   {ClockSkew, ClockJump},
	"llm":     {LLMError, LLMRateLimit, LLMTimeout, LLMBadResponse},
	"tools":   {ToolCrash, ToolTimeout, ToolHugeOutput},
	"network": {PeerPartition, ForwardDelay, ForwardDrop, ForwardDuplicate, ForwardReorder},
	"cluster": {NodeCrash, DBPartition, PeerPartition, LeaseStall, NodeSkew, NodeJump, ForwardDelay, ForwardDrop,
		ForwardDuplicate, ForwardReorder, DBReplyLost},
	"mcp": {MCPDisconnect, MCPHang, MCPError},
}

func init() {
	var all []FaultKind
	for _, g := range []string{"storage", "crash", "clock", "llm", "tools", "mcp"} {
		all = append(all, groups[g]...)
	}
	groups["all"] = all
}

// ProfileNames lists the named profiles.
var ProfileNames = []string{"none", "storage", "crash", "clock", "llm", "tools", "network", "cluster", "all"}

func defaultFault(k FaultKind) (Fault, bool) {
	for _, f := range faultDefaults {
		if f.Kind == k {
			return f, true
		}
	}
	return Fault{}, false
}

// Profile is a set of faults, at most one of each kind. Its text form is
// what ParseProfile reads and String writes: comma-separated items, each a
// named profile (see ProfileNames; "network" and "cluster" run a cluster) or one fault
// with optional settings,
//
//	kind[=prob][:key=PREFIX][:op=read|write|stream|complete][:after=N][:max=N]
//
// for instance "crash,write_fail=0.2:key=actor/state/:max=3" or
// "llm,llm_error=0.3:op=stream". The ops of storage faults are read and
// write, those of LLM faults stream and complete; an LLM fault's key is
// matched against the agent's id. A later item
// replaces an earlier fault of the same kind; unset settings take the
// kind's defaults.
type Profile struct {
	Faults []Fault
	text   string
}

// ParseProfile parses a profile's text form.
func ParseProfile(s string) (Profile, error) {
	var p Profile
	var items []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		items = append(items, item)
		if kinds, ok := groups[strings.ToLower(item)]; ok {
			items[len(items)-1] = strings.ToLower(item)
			for _, k := range kinds {
				f, _ := defaultFault(k)
				p.set(f)
			}
			continue
		}
		f, err := parseFault(item)
		if err != nil {
			return Profile{}, err
		}
		p.set(f)
	}
	if len(items) == 0 {
		items = []string{"none"}
	}
	p.text = strings.Join(items, ",")
	return p, nil
}

// MustProfile is ParseProfile for constant text; it panics on an error.
func MustProfile(s string) Profile {
	p, err := ParseProfile(s)
	if err != nil {
		panic(err)
	}
	return p
}

func parseFault(item string) (Fault, error) {
	parts := strings.Split(item, ":")
	head := parts[0]
	name, prob, hasProb := strings.Cut(head, "=")
	f, ok := defaultFault(FaultKind(strings.ToLower(strings.TrimSpace(name))))
	if !ok {
		return Fault{}, fmt.Errorf("sim: unknown fault or profile %q (profiles: %s; faults: %s)",
			name, strings.Join(ProfileNames, ", "), strings.Join(kindNames(), ", "))
	}
	if hasProb {
		v, err := strconv.ParseFloat(prob, 64)
		if err != nil || v < 0 || v > 1 {
			return Fault{}, fmt.Errorf("sim: fault %s: probability %q: want a number from 0 to 1", f.Kind, prob)
		}
		f.Prob = v
	}
	for _, opt := range parts[1:] {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			return Fault{}, fmt.Errorf("sim: fault %s: setting %q: want name=value", f.Kind, opt)
		}
		switch k {
		case "key":
			f.Key = v
		case "op":
			if isLLMFault(f.Kind) {
				if v != "stream" && v != "complete" && v != "" {
					return Fault{}, fmt.Errorf("sim: fault %s: op %q: want stream or complete", f.Kind, v)
				}
			} else if v != "read" && v != "write" && v != "" {
				return Fault{}, fmt.Errorf("sim: fault %s: op %q: want read or write", f.Kind, v)
			}
			f.Op = v
		case "after", "max":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Fault{}, fmt.Errorf("sim: fault %s: %s %q: want a count", f.Kind, k, v)
			}
			if k == "after" {
				f.After = n
			} else {
				f.Max = n
			}
		default:
			return Fault{}, fmt.Errorf("sim: fault %s: unknown setting %q (key, op, after, max)", f.Kind, k)
		}
	}
	return f, nil
}

func kindNames() []string {
	var out []string
	for _, f := range faultDefaults {
		out = append(out, string(f.Kind))
	}
	return out
}

func (p *Profile) set(f Fault) {
	for i := range p.Faults {
		if p.Faults[i].Kind == f.Kind {
			p.Faults[i] = f
			return
		}
	}
	p.Faults = append(p.Faults, f)
}

// String returns the profile's text form, which ParseProfile reads back to
// the same profile.
func (p Profile) String() string {
	if p.text != "" {
		return p.text
	}
	if len(p.Faults) == 0 {
		return "none"
	}
	// Built in Go rather than parsed: spell every fault out.
	items := make([]string, 0, len(p.Faults))
	for _, f := range p.Faults {
		s := string(f.Kind) + "=" + strconv.FormatFloat(f.Prob, 'g', -1, 64)
		if f.Key != "" {
			s += ":key=" + f.Key
		}
		if f.Op != "" {
			s += ":op=" + f.Op
		}
		if f.After != 0 {
			s += ":after=" + strconv.Itoa(f.After)
		}
		s += ":max=" + strconv.Itoa(f.Max)
		items = append(items, s)
	}
	return strings.Join(items, ",")
}

// Has reports whether the profile injects faults of kind k.
func (p Profile) Has(k FaultKind) bool {
	return slices.ContainsFunc(p.Faults, func(f Fault) bool { return f.Kind == k && f.Prob > 0 })
}

// isLLMFault reports whether k is drawn on model requests.
func isLLMFault(k FaultKind) bool {
	switch k {
	case LLMError, LLMRateLimit, LLMTimeout, LLMBadResponse:
		return true
	}
	return false
}
