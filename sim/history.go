package sim

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// outcome is what a client knows of an operation's effect.
type outcome int

const (
	// okOutcome: acknowledged; its effect happened between call and return.
	okOutcome outcome = iota
	// failedOutcome: a definite error; it had no effect.
	failedOutcome
	// unknownOutcome: it may or may not have taken effect, up to its
	// effect bound.
	unknownOutcome
)

func (o outcome) String() string {
	switch o {
	case okOutcome:
		return "ok"
	case failedOutcome:
		return "failed"
	}
	return "unknown"
}

// never is the effect bound of an operation that may take effect at any
// time after its call: porcupine's "return time = infinity".
const never = math.MaxInt64

// opRecord is one client operation of the history.
type opRecord struct {
	ID     int
	Client int
	Inc    int       // incarnation it was sent to
	Kind   operation // what it is (ops.go)
	request

	// Call and Ret are logical times (a global counter) around the
	// operation; EffectBy bounds when an unknown operation's effect can
	// have happened (never when it cannot be bounded).
	Call, Ret, EffectBy int64

	Status int
	Resp   []byte
	Detail string // the error detail of a 4xx or 5xx
	Out    outcome
	// ErrKind and ErrText are how it failed, when it did: the kind of an
	// error status (errKind) or the stop reason of a turn that failed or
	// was cut off, and the fullest text known (the detail, the streamed
	// error, or the error the service logged for it).
	ErrKind, ErrText string
	// TimedOut: the client gave up on it after Config.OpTimeout.
	TimedOut bool
	// trail is what happened on its path (path.go).
	trail *trail

	// Root is the first attempt of a retry, Retries the later attempts of
	// a first one, and Final (written under world.mu) the latest attempt
	// answered.
	Root    *opRecord
	Retries []*opRecord
	Final   *opRecord

	// done is set, under world.mu, once the response has been learnt from.
	done bool

	responses
}

// request is what a client asked: the call and the arguments it was made
// from. A retry asks the same.
type request struct {
	Method string
	Path   string
	Body   []byte

	// Arguments, by kind.
	// Agent and Block of a create are learnt from its response or, when
	// its outcome is unknown, from a read that shows what it made; they are
	// written under world.mu.
	Agent        string   // target agent id
	Block        string   // target block id (also of a label edit, resolved)
	Conversation string   // target conversation id
	Passage      string   // target passage id
	Label        string   // label of a label edit, a new block, ...
	Value        string   // value written: of a block, a passage's text, a conversation's summary
	Name         string   // agent name written
	IDs          []string // block_ids of a create or a PATCH
	MemLabels    []string // memory blocks of a create: labels
	MemValues    []string // and values
	MemBlocks    []string // and ids, once known ("" until then)
	MemFS        bool     // an agent create: with a memory repository (memfs.go)
	Commit       string   // a push: the commit it moves the branch to

	// ContentType is the body's, when it is not JSON (a git push).
	ContentType string

	// IdemKey is the Idempotency-Key the operation carries ("" none). A
	// write with a key whose outcome is unknown is retried with the same
	// key.
	IdemKey string

	// Messages: the otid of a message send (of its user message), whether
	// it streams, and token by token.
	Otid         string
	Streaming    bool
	StreamTokens bool

	// Target is the agent or block the operation names, for messages.
	Target string
}

// bodyText is the body as a history shows it: JSON as it is, anything
// else (a git pack) by its size and what it brings.
func (r *request) bodyText() string {
	if r.ContentType == "" {
		return string(r.Body)
	}
	return fmt.Sprintf("<%d bytes of %s: commit %s, value %s>", len(r.Body), r.ContentType, r.Commit, r.Value)
}

// clone returns a copy of r that shares no slice with it.
func (r request) clone() request {
	r.Body = slices.Clone(r.Body)
	r.IDs = slices.Clone(r.IDs)
	r.MemLabels = slices.Clone(r.MemLabels)
	r.MemValues = slices.Clone(r.MemValues)
	r.MemBlocks = slices.Clone(r.MemBlocks)
	return r
}

// responses are the parsed forms of a 200's body; which one is set
// depends on the kind.
type responses struct {
	RespAgent  *agentJSON
	RespAgents []agentJSON
	RespBlock  *blockJSON
	RespBlocks []blockJSON
	Send       *sendResp // a message send's answer (complete or not)
	RespMsgs   []msgJSON // a message listing, oldest first
	// Conversations, passages and runs: just what the clients learn from.
	RespConv     *idJSON
	RespConvs    []idJSON
	RespPassages []idJSON
	RespRuns     []idJSON
	// Rejected is why a push's ref update was refused ("" if made).
	Rejected string
}

// idJSON is a conversation, passage or run, as far as the clients care.
type idJSON struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"`
}

func idsOfJSON(objects []idJSON) string {
	out := make([]string, len(objects))
	for i, object := range objects {
		out[i] = object.ID
	}
	return "[" + strings.Join(out, " ") + "]"
}

type agentJSON struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Tags   []string    `json:"tags"`
	Blocks []blockJSON `json:"blocks"`
	// withoutBlocks: listed without its blocks, so Blocks tells nothing
	// of its attachments.
	withoutBlocks bool
}

type blockJSON struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Value string `json:"value"`
}

func (a *agentJSON) blockIDs() []string {
	ids := make([]string, len(a.Blocks))
	for i, b := range a.Blocks {
		ids[i] = b.ID
	}
	slices.Sort(ids)
	return ids
}

// recorder keeps the history and the trace hash.
type recorder struct {
	clock *Clock
	seq   atomic.Int64

	mu     sync.Mutex
	h      hash.Hash
	ops    []*opRecord
	events int
	// inflight are the operations called and not returned, by method and
	// path: the service's log names a failed request by those alone.
	inflight map[string][]*opRecord
}

func newRecorder(c *Clock) *recorder {
	return &recorder{clock: c, h: sha256.New(), inflight: map[string][]*opRecord{}}
}

// requestKey is how the service's log names op's request.
func requestKey(method, path string) string {
	path, _, _ = strings.Cut(path, "?")
	return method + " " + path
}

// inflightOps returns the operations in flight for a request named by
// method and path.
func (r *recorder) inflightOps(method, path string) []*opRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.inflight[requestKey(method, path)])
}

// tick returns the next logical time.
func (r *recorder) tick() int64 { return r.seq.Add(1) }

// event adds one line to the trace.
func (r *recorder) event(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events++
	fmt.Fprintf(r.h, "%d %d %d %s\n", r.events, r.seq.Load(), r.clock.Now().UnixNano(), line)
}

// begin numbers op, stamps its call and records it.
func (r *recorder) begin(op *opRecord) {
	r.mu.Lock()
	op.ID = len(r.ops)
	op.trail = &trail{}
	r.ops = append(r.ops, op)
	k := requestKey(op.Method, op.Path)
	r.inflight[k] = append(r.inflight[k], op)
	r.mu.Unlock()
	op.Call = r.tick()
	r.event("call op=%d client=%d inc=%d t=%d %s %s %s", op.ID, op.Client, op.Inc, op.Call, op.Method, op.Path, op.bodyText())
}

// end stamps op's return and records its response.
func (r *recorder) end(op *opRecord) {
	r.mu.Lock()
	k := requestKey(op.Method, op.Path)
	if r.inflight[k] = slices.DeleteFunc(r.inflight[k], func(o *opRecord) bool { return o == op }); len(r.inflight[k]) == 0 {
		delete(r.inflight, k)
	}
	r.mu.Unlock()
	op.Ret = r.tick()
	r.event("return op=%d t=%d status=%d body=%x", op.ID, op.Ret, op.Status, sha256.Sum256(op.Resp))
}

func (r *recorder) trace() [32]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [32]byte
	copy(out[:], r.h.Sum(nil))
	return out
}

// format renders one operation as a history line.
func (op *opRecord) format() string {
	var b strings.Builder
	ret := fmt.Sprint(op.Ret)
	if op.Out == unknownOutcome {
		if op.EffectBy == never {
			ret += ",effect:any time"
		} else {
			ret += fmt.Sprintf(",effect by:%d", op.EffectBy)
		}
	}
	fmt.Fprintf(&b, "#%d client %d inc %d [%d..%s] %s %s", op.ID, op.Client, op.Inc, op.Call, ret, op.Method, op.Path)
	if len(op.Body) > 0 {
		fmt.Fprintf(&b, " %s", op.bodyText())
	}
	if op.IdemKey != "" {
		fmt.Fprintf(&b, " [key %s]", op.IdemKey)
	}
	if op.Root != nil {
		fmt.Fprintf(&b, " (retry of #%d)", op.Root.ID)
	}
	fmt.Fprintf(&b, " -> %d %s", op.Status, op.Out)
	if op.TimedOut {
		b.WriteString(" (timed out)")
	}
	if op.ErrKind != "" {
		fmt.Fprintf(&b, " %s", op.ErrKind)
		if op.ErrText != "" && op.ErrText != op.Detail {
			fmt.Fprintf(&b, " %q", clipString(op.ErrText, 200))
		}
	}
	b.WriteString(op.answer())
	if t := op.trail.String(); t != "" {
		b.WriteString(" " + t)
	}
	if len(op.Retries) > 0 {
		ids := make([]string, len(op.Retries))
		for i, r := range op.Retries {
			ids[i] = fmt.Sprintf("#%d", r.ID)
		}
		fmt.Fprintf(&b, " (retried as %s)", strings.Join(ids, ", "))
	}
	return b.String()
}

// first is the first attempt of op: op itself unless it is a retry.
func (op *opRecord) first() *opRecord {
	if op.Root != nil {
		return op.Root
	}
	return op
}

// attemptNote says, for a message, which request op repeats: " (a resend
// of #N)", or "".
func (op *opRecord) attemptNote() string {
	if op.Root == nil {
		return ""
	}
	return fmt.Sprintf(" (a resend of #%d)", op.Root.ID)
}

// answer renders op's response in short, for a history line.
func (op *opRecord) answer() string {
	switch {
	case op.Detail != "":
		return fmt.Sprintf(" %q", clipString(op.Detail, 120))
	case op.RespAgent != nil:
		return " " + op.RespAgent.summary()
	case op.RespBlock != nil:
		return " " + op.RespBlock.summary()
	case op.RespAgents != nil:
		parts := make([]string, len(op.RespAgents))
		for i := range op.RespAgents {
			parts[i] = op.RespAgents[i].summary()
		}
		return fmt.Sprintf(" [%s]", strings.Join(parts, "; "))
	case op.RespBlocks != nil:
		parts := make([]string, len(op.RespBlocks))
		for i := range op.RespBlocks {
			parts[i] = op.RespBlocks[i].summary()
		}
		return fmt.Sprintf(" [%s]", strings.Join(parts, "; "))
	case op.Send != nil:
		return " " + op.Send.summary()
	case op.RespMsgs != nil:
		return fmt.Sprintf(" %d messages", len(op.RespMsgs))
	case op.RespConv != nil:
		return " " + op.RespConv.ID
	case op.RespConvs != nil:
		return " " + idsOfJSON(op.RespConvs)
	case op.RespPassages != nil:
		return " " + idsOfJSON(op.RespPassages)
	case op.RespRuns != nil:
		return " " + idsOfJSON(op.RespRuns)
	}
	return ""
}

// finalOut is the outcome of the latest answered attempt of a first
// attempt. Called with world.mu held.
func (op *opRecord) finalOut() outcome {
	if f := op.Final; f != nil {
		if f.Out == failedOutcome && f.Status != 404 {
			return unknownOutcome // see checker.logical
		}
		return f.Out
	}
	return op.Out
}

func (a *agentJSON) summary() string {
	parts := make([]string, len(a.Blocks))
	for i, bl := range a.Blocks {
		parts[i] = bl.summary()
	}
	return fmt.Sprintf("{%s name=%s blocks=[%s]}", a.ID, a.Name, strings.Join(parts, " "))
}

func (b *blockJSON) summary() string {
	return fmt.Sprintf("%s(%s=%s)", b.ID, b.Label, b.Value)
}

func clipString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// formatOps renders ops in call order, at most limit of them: those
// nearest to the operation with id focus (or the last ones when focus < 0).
func formatOps(ops []*opRecord, focus int, limit int) string {
	ops = slices.Clone(ops)
	slices.SortFunc(ops, func(a, b *opRecord) int { return int(a.Call - b.Call) })
	ops = slices.CompactFunc(ops, func(a, b *opRecord) bool { return a == b })
	if len(ops) > limit {
		at := len(ops) - 1
		for i, op := range ops {
			if op.ID == focus {
				at = i
			}
		}
		lo := max(0, at-limit*3/4)
		hi := min(len(ops), lo+limit)
		lo = max(0, hi-limit)
		prefix := ""
		if lo > 0 {
			prefix = fmt.Sprintf("... %d earlier operations\n", lo)
		}
		suffix := ""
		if hi < len(ops) {
			suffix = fmt.Sprintf("... %d later operations\n", len(ops)-hi)
		}
		return prefix + joinOps(ops[lo:hi]) + suffix
	}
	return joinOps(ops)
}

func joinOps(ops []*opRecord) string {
	var b strings.Builder
	for _, op := range ops {
		b.WriteString(op.format())
		b.WriteByte('\n')
	}
	return b.String()
}

// parseResponse fills op's parsed response fields from its body.
func (op *opRecord) parseResponse() error {
	if op.Status != 200 {
		var d struct {
			Detail any `json:"detail"`
		}
		if json.Unmarshal(op.Resp, &d) == nil && d.Detail != nil {
			op.Detail = fmt.Sprint(d.Detail)
		} else {
			op.Detail = string(op.Resp)
		}
		return nil
	}
	return op.Kind.parse(op)
}

// Parsers of the response shapes the operations share.

func (op *opRecord) parseAgent() error {
	op.RespAgent = new(agentJSON)
	return json.Unmarshal(op.Resp, op.RespAgent)
}

func (op *opRecord) parseAgents() error {
	err := json.Unmarshal(op.Resp, &op.RespAgents)
	if op.RespAgents == nil {
		op.RespAgents = []agentJSON{}
	}
	return err
}

func (op *opRecord) parseBlock() error {
	op.RespBlock = new(blockJSON)
	return json.Unmarshal(op.Resp, op.RespBlock)
}

func (op *opRecord) parseBlocks() error {
	err := json.Unmarshal(op.Resp, &op.RespBlocks)
	if op.RespBlocks == nil {
		op.RespBlocks = []blockJSON{}
	}
	return err
}
