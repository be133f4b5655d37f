package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// world is what the clients know together: the agents, blocks,
// conversations and passages whose ids they have learned, and which
// creates may still surface.
type world struct {
	sys *system

	mu              sync.Mutex
	agents          []string
	agentCreatedBy  map[string]*opRecord // agent id -> its create
	agentLive       map[string]bool      // believed to exist
	agentBlocksSeen map[string][]string  // attachments last seen
	blocks          []string
	blockCreatedBy  map[string]*opRecord // block id -> the create that made it
	blockLive       map[string]bool
	blockLabel      map[string]string
	labelBlock      map[string]string
	byName          map[string]*opRecord // agent creates by requested name
	byLabel         map[string]*opRecord // block-creating operations by label
	deleting        map[string]int64     // agents a delete was sent for: the logical time before its call
	conversations   []string
	convAgent       map[string]string // conversation id -> its agent
	passages        []string
	passageAgent    map[string]string // passage id -> its agent
	passageLive     map[string]bool   // believed to exist
	// toolReady: an upsert of the custom tool was acknowledged, so agents
	// may be created with it (tools are never deleted).
	toolReady bool
	// mcpServer: the simulated MCP server is registered; mcpReady: its
	// tool is stored, so agents may be given it (mcp.go).
	mcpServer, mcpReady bool
}

func newWorld(s *system) *world {
	return &world{
		sys:             s,
		agentCreatedBy:  map[string]*opRecord{},
		agentLive:       map[string]bool{},
		agentBlocksSeen: map[string][]string{},
		blockCreatedBy:  map[string]*opRecord{},
		blockLive:       map[string]bool{},
		blockLabel:      map[string]string{},
		labelBlock:      map[string]string{},
		byName:          map[string]*opRecord{},
		byLabel:         map[string]*opRecord{},
		deleting:        map[string]int64{},
		convAgent:       map[string]string{},
		passageAgent:    map[string]string{},
		passageLive:     map[string]bool{},
	}
}

// client is one simulated API client.
type client struct {
	n   int
	sys *system
	w   *world
	rng *rand.Rand
	ops int
	seq int // names, labels and values this client wrote
	// busy is the operation the client is waiting on, if any.
	busy atomic.Pointer[opRecord]
}

func (c *client) run() {
	for done := 0; done < c.ops && !c.sys.stopped(); done++ {
		c.pause()
		c.maybeFault()
		op := c.next()
		if p, ok := op.Kind.(preparer); ok {
			p.prepare(c, op)
		}
		c.do(op)
		c.w.learn(op)
		// A write with an unknown outcome and an idempotency key (or a
		// message with an otid) is retried with the same key: it must take
		// effect exactly once. Retries count against the client's
		// operations.
		keyed := op.IdemKey != "" || op.Otid != ""
		for last := op; last.Out == unknownOutcome && keyed && len(op.Retries) < maxRetries && done+1 < c.ops && !c.sys.stopped(); {
			done++
			c.pause()
			last = c.retry(op)
			c.do(last)
			c.w.learn(last)
		}
		// Now and then a message already answered is sent again: the
		// answer must be the same run, not a second turn.
		if op.Kind.traits().turn && op.Out == okOutcome && c.rng.IntN(8) == 0 && done+1 < c.ops && !c.sys.stopped() {
			done++
			c.pause()
			again := c.retry(op)
			c.do(again)
			c.w.learn(again)
		}
	}
}

// pause waits a random think time.
func (c *client) pause() {
	if c.sys.cfg.ThinkTime > 0 {
		time.Sleep(time.Duration(c.rng.Int64N(int64(c.sys.cfg.ThinkTime) + 1)))
	}
}

// maxRetries bounds the retries of one operation.
const maxRetries = 3

// retry returns a new attempt of op, a first attempt, with the same
// request.
func (c *client) retry(op *opRecord) *opRecord {
	c.w.mu.Lock() // a create's ids are learnt under it
	defer c.w.mu.Unlock()
	r := &opRecord{Client: op.Client, Kind: op.Kind, Root: op, request: op.request.clone()}
	op.Retries = append(op.Retries, r)
	return r
}

// maybeFault injects the process and clock faults drawn at this point.
func (c *client) maybeFault() {
	s := c.sys
	if inc := s.current(); inc.cl != nil {
		inc.cl.drawFaults()
	}
	if s.inj.fire(ProcessCrash, "") {
		inc := s.current()
		delay := time.Duration(s.inj.intn(500)) * time.Microsecond
		go func() {
			// A little later, so that the crash lands in the middle of
			// whatever is running then.
			time.Sleep(delay)
			s.crash(inc, "process_crash")
		}()
	}
	if s.inj.fire(ClockSkew, "") {
		d := time.Duration(s.inj.intn(1200)-600) * time.Second
		s.clock.Skew(d)
		s.rec.event("clock skew offset=%s", d)
	}
	if s.inj.fire(ClockJump, "") {
		d := time.Duration(s.inj.intn(4*3600)-2*3600) * time.Second
		s.clock.Jump(d)
		s.rec.event("clock jump by=%s offset=%s", d, s.clock.Offset())
	}
}

func (c *client) token(prefix string) string {
	c.seq++
	return fmt.Sprintf("%s%d-%d", prefix, c.n, c.seq)
}

// next picks the next operation and its arguments.
func (c *client) next() *opRecord {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	op := &opRecord{Client: c.n, Kind: c.pickKind()}
	op.Kind.generate(c, op)
	t := op.Kind.traits()
	if t.write && c.rng.IntN(2) == 0 {
		op.IdemKey = c.token("k")
	}
	if op.lacks(t.needs) {
		// Nothing to act on yet: read the list instead.
		*op = opRecord{Client: c.n, Kind: listAgentsOp{}}
		op.Kind.generate(c, op)
	}
	op.Target = op.Agent + op.Block
	return op
}

// pickKind draws the kind of the next operation from the mix, but makes
// sure there are agents and blocks to act on, not too many agents, and
// soon the custom tool. Called with w.mu held.
func (c *client) pickKind() operation {
	w := c.w
	live := 0
	for _, id := range w.agents {
		if w.agentLive[id] {
			live++
		}
	}
	var kind operation
	switch {
	case live < 2:
		kind = createAgentOp{}
	case len(w.blocks) < 2 && c.rng.IntN(2) == 0:
		kind = createBlockOp{}
	case !w.toolReady && c.rng.IntN(8) == 0:
		kind = upsertToolOp{}
	case w.toolReady && !w.mcpReady && c.rng.IntN(8) == 0:
		kind = mcpSetupOp{addTool: w.mcpServer}
	default:
		r := c.rng.IntN(mixTotal)
		for _, m := range mix {
			if r < m.weight {
				kind = m.kind
				break
			}
			r -= m.weight
		}
	}
	if _, creates := kind.(createAgentOp); creates && live > 12 {
		kind = deleteAgentOp{}
	}
	return kind
}

func (op *opRecord) set(method, path string, body any) {
	op.Method, op.Path = method, path
	if body != nil {
		op.Body, _ = json.Marshal(body)
	}
}

// pickAgent returns a known agent: mostly one believed to exist. Called
// with w.mu held.
func (c *client) pickAgent() string {
	return pick(c.rng, c.w.agents, c.w.agentLive)
}

func (c *client) pickBlock() string {
	return pick(c.rng, c.w.blocks, c.w.blockLive)
}

func pick(rng *rand.Rand, ids []string, live map[string]bool) string {
	if len(ids) == 0 {
		return ""
	}
	if rng.IntN(10) > 0 {
		var alive []string
		for _, id := range ids {
			if live[id] {
				alive = append(alive, id)
			}
		}
		if len(alive) > 0 {
			return alive[rng.IntN(len(alive))]
		}
	}
	return ids[rng.IntN(len(ids))]
}

// pickConversation returns a known conversation: mostly one of an agent
// believed to exist. Called with w.mu held.
func (c *client) pickConversation() string {
	live := map[string]bool{}
	for _, conv := range c.w.conversations {
		live[conv] = c.w.agentLive[c.w.convAgent[conv]]
	}
	return pick(c.rng, c.w.conversations, live)
}

// pickPassage returns a known passage: mostly one believed to exist.
// Called with w.mu held.
func (c *client) pickPassage() string {
	return pick(c.rng, c.w.passages, c.w.passageLive)
}

// pickAttached returns a block agent was last seen with, or any block.
func (c *client) pickAttached(agentID string) string {
	if att := c.w.agentBlocksSeen[agentID]; len(att) > 0 && c.rng.IntN(5) > 0 {
		return att[c.rng.IntN(len(att))]
	}
	return c.pickBlock()
}

// do sends op to the current incarnation and records it.
func (c *client) do(op *opRecord) {
	s := c.sys
	inc := s.current()
	op.Inc = inc.n
	h := inc.handlers[0]
	if len(inc.handlers) > 1 {
		h = inc.handlers[c.rng.IntN(len(inc.handlers))]
	}
	ctx, cancel := context.WithTimeout(withOp(inc.ctx, op), s.cfg.OpTimeout)
	defer cancel()
	req := httptest.NewRequest(op.Method, op.Path, bytes.NewReader(op.Body)).WithContext(ctx)
	// A legacy client's User-Agent: agents come with their blocks.
	req.Header.Set("User-Agent", "kelpie-sim/1")
	switch {
	case op.ContentType != "":
		req.Header.Set("Content-Type", op.ContentType)
	case op.Body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	if op.IdemKey != "" {
		req.Header.Set("Idempotency-Key", op.IdemKey)
	}
	rw := httptest.NewRecorder()
	s.rec.begin(op)
	c.busy.Store(op)
	defer c.busy.Store(nil)
	func() {
		defer func() {
			if p := recover(); p != nil {
				s.violation("unexpected-error", op.Target, "op #%d: the handler panicked: %v", op.ID, p)
				rw.Code = http.StatusInternalServerError
			}
		}()
		h.ServeHTTP(rw, req)
	}()
	op.Status, op.Resp = rw.Code, rw.Body.Bytes()
	op.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	s.rec.end(op)
	switch {
	case op.Status == 200 && op.Streaming && !streamDone(op.Resp):
		op.Out = unknownOutcome // the stream was cut off
	case op.Status == 200:
		op.Out = okOutcome
	case op.Status >= 400 && op.Status < 500:
		op.Out = failedOutcome
	default:
		op.Out = unknownOutcome
	}
	if err := op.parseResponse(); err != nil {
		s.violation("corruption", op.Target, "op #%d: response is not the JSON it should be: %v: %s", op.ID, err, clipString(string(op.Resp), 300))
	}
	op.ErrKind, op.ErrText = op.failure()
	c.checkResponse(op)
}

// failure says how op failed: the kind of its error status or the stop
// reason of its failed or cut-off turn, and the fullest text known; "" for
// an operation that did not fail.
func (op *opRecord) failure() (kind, text string) {
	turnErr, serverErr := op.trail.logged()
	if op.Status != 200 {
		text = op.Detail
		if op.Status == 500 && serverErr != "" {
			text = serverErr
		}
		return errKind(op.Status, op.Detail), text
	}
	answer := op.Send
	if answer == nil {
		return "", ""
	}
	text = answer.Error
	if text == "" {
		text = turnErr
	}
	switch {
	case !answer.Done:
		return "cut-off", text
	case answer.clean():
		return "", ""
	}
	return answer.Stop, text
}

// faultClasses are the classes of fault that can make op fail: storage
// faults, and model faults for a call that makes a model request.
func (op *opRecord) faultClasses() []string {
	if op.Kind.traits().callsModel {
		return []string{pathStorage, pathLLM, pathBadLLM}
	}
	return []string{pathStorage}
}

// contextChanged tells a compaction refused because its context changed
// (a reset) while the summary was being written.
func contextChanged(detail string) bool {
	return strings.Contains(detail, "the context changed while it was being summarised")
}

// callsPending tells a call refused because the agent's last turn left
// tool calls without results (a custom tool's result that did not commit,
// until the next turn answers it as interrupted).
func callsPending(detail string) bool {
	return strings.Contains(detail, "is waiting for the results of its tool calls")
}

// conversationBusy tells a message refused because another turn of its
// conversation was running or waiting (Letta's CONVERSATION_BUSY).
func conversationBusy(detail string) bool {
	return strings.Contains(detail, "is currently being processed for this conversation")
}

// errKind names the kind of an error response, as the API's statuses and
// details tell them apart.
func errKind(status int, detail string) string {
	switch status {
	case 400, 422:
		return "invalid"
	case 404:
		return "not-found"
	case 409:
		switch {
		case strings.Contains(detail, "Concurrent update"):
			return "contended"
		case conversationBusy(detail):
			return "conversation-busy"
		}
		return "conflict"
	case 413:
		return "too-large"
	case 429:
		return "busy"
	case 500:
		return "internal"
	case 503:
		switch {
		case strings.HasPrefix(detail, "Request was cancelled"):
			return "cancelled"
		case strings.Contains(strings.ToLower(detail), "shutting down"):
			return "shutting-down"
		case strings.Contains(detail, "another owner"):
			return "moved"
		}
		return "unavailable"
	}
	return fmt.Sprintf("status-%d", status)
}

// checkResponse runs the checks one response allows on its own.
func (c *client) checkResponse(op *opRecord) {
	s := c.sys
	if op.Status == 200 && bytes.IndexByte(op.Resp, corruptMarker) >= 0 {
		s.violation("corruption", op.Target, "op #%d: response carries a damaged value (%q): %s", op.ID, corruptMarker, clipString(string(op.Resp), 300))
	}
	switch {
	case op.Status == 503 && strings.Contains(op.Detail, "another owner") && !(isCluster(s.cfg.Faults) && s.causeOf(op, pathCluster) != ""):
		// In a cluster, a node's commit is fenced once its agent moved:
		// the move is on the call's path.
		s.violation("single-activation", op.Target, "op #%d %s %s: a commit was fenced (%q): another activation moved the epoch", op.ID, op.Method, op.Path, op.Detail)
	case op.TimedOut:
		// No fault takes that long: a crash ends a call at once.
		s.violation("liveness", op.Target, "op #%d %s %s%s: no answer within its timeout of %s (%d %s); then %s", op.ID, op.Method, op.Path, op.attemptNote(), s.cfg.OpTimeout, op.Status, op.ErrKind, s.current().heldOrNothing())
	case op.Status >= 500 || op.Status == 429 || op.ErrKind == "contended":
		// A call that conflicts re-runs until the commit it met has
		// landed (seconds): one still contended met a fault, or a bug.
		if s.causeOf(op, op.faultClasses()...) == "" {
			s.violation("unexpected-error", op.Target, "op #%d %s %s: %d %s with no fault on its path and no crash while it ran: %s", op.ID, op.Method, op.Path, op.Status, op.ErrKind, op.ErrText)
		}
	case op.Status == 404 && op.Kind.traits().listing:
		s.violation("partial-effect", op.Target, "op #%d %s %s: a listing answered 404 (%s): an index or attachment names a missing record", op.ID, op.Method, op.Path, op.Detail)
	case op.Status == 400 && op.Kind == compactOp{} && nothingToCompact(op.Detail):
		// Letta's /compact answer for a context it cannot reduce.
	case op.Status == 400 || op.Status == 413 || op.Status == 422:
		s.violation("unexpected-error", op.Target, "op #%d %s %s: valid request rejected with %d: %s", op.ID, op.Method, op.Path, op.Status, op.Detail)
	case op.Status == 409 && (conversationBusy(op.Detail) || contextChanged(op.Detail) || callsPending(op.Detail)):
		// Judged once the run is over (checker.checkBusy), against the
		// calls that may have held the conversation or changed the context.
	case mcpTaken(op):
	case op.Status == 409 && !strings.Contains(op.Detail, "Concurrent update"):
		s.violation("unexpected-error", op.Target, "op #%d %s %s: unexpected conflict: %s", op.ID, op.Method, op.Path, op.Detail)
	}
	if l, ok := op.Kind.(lister); ok && op.Status == 200 {
		if problem := checkPage(l.listing(), op); problem != "" {
			s.violation("listing", op.Target, "op #%d %s %s: %s", op.ID, op.Method, op.Path, problem)
		}
	}
	switch answer := op.Send; {
	case answer != nil && op.Out == okOutcome:
		c.checkStop(op, answer)
	case answer != nil && !answer.Done && !op.TimedOut && s.causeOf(op) == "":
		s.violation("unexpected-error", op.Target, "op #%d %s %s: the stream was cut off with no crash while it ran: %s", op.ID, op.Method, op.Path, clipString(op.ErrText, 300))
	}
}

// checkStop checks how a turn that answered stopped: a failure needs a
// cause on its path.
func (c *client) checkStop(op *opRecord, answer *sendResp) {
	s := c.sys
	var classes []string
	switch answer.Stop {
	case "end_turn", "max_steps", "max_tokens_exceeded":
		return
	case "llm_api_error":
		classes = []string{pathLLM}
	case "error":
		c.w.mu.Lock()
		deleting := c.w.deleting[op.Agent]
		c.w.mu.Unlock()
		if deleting != 0 && deleting <= op.Ret {
			return // the agent went away under its turn
		}
		classes = []string{pathStorage}
	case "cancelled":
		// Only a crash cancels a turn of the workload.
	default:
		s.violation("unexpected-error", op.Target, "op #%d %s %s: unexpected stop reason %q", op.ID, op.Method, op.Path, answer.Stop)
		return
	}
	if s.causeOf(op, classes...) == "" {
		s.violation("unexpected-error", op.Target, "op #%d %s %s: the turn stopped with %s and no fault on its path to cause it: %s", op.ID, op.Method, op.Path, answer.Stop, clipString(op.ErrText, 300))
	}
}

// Error details the checks tell apart.
func notFoundKind(detail string) string {
	switch {
	case detail == "Agent not found" || strings.HasPrefix(detail, "Agent with ID"):
		return "agent"
	case detail == "Block not found" || strings.HasPrefix(detail, "Block with id"):
		return "block"
	case strings.HasPrefix(detail, "No block with id"):
		return "not-attached"
	case strings.HasPrefix(detail, "No block with label"):
		return "no-label"
	}
	return ""
}

// learn updates what the clients know from op's response.
func (w *world) learn(op *opRecord) {
	w.mu.Lock()
	defer w.mu.Unlock()
	notFound := ""
	if op.Status == 404 {
		notFound = notFoundKind(op.Detail)
	}
	if notFound == "agent" && op.Agent != "" {
		w.agentLive[op.Agent] = false
	}
	if notFound == "block" && op.Block != "" {
		w.blockLive[op.Block] = false
	}
	root := op
	if op.Root != nil {
		root = op.Root
		root.Final = op
	}
	op.Kind.learn(w, op, root)
	if a := op.RespAgent; a != nil {
		w.seeAgent(op, *a)
	}
	for _, a := range op.RespAgents {
		w.seeAgent(op, a)
	}
	if b := op.RespBlock; b != nil {
		w.seeBlock(op, *b)
	}
	for _, b := range op.RespBlocks {
		w.seeBlock(op, b)
	}
}

// seeConversation learns of a conversation of agentID. Called with w.mu
// held.
func (w *world) seeConversation(id, agentID string) {
	if _, known := w.convAgent[id]; !known && id != "" && agentID != "" {
		w.conversations = append(w.conversations, id)
		w.convAgent[id] = agentID
	}
}

// seePassage learns of a passage of agentID. Called with w.mu held.
func (w *world) seePassage(id, agentID string) {
	if _, known := w.passageAgent[id]; !known && id != "" && agentID != "" {
		w.passages = append(w.passages, id)
		w.passageAgent[id] = agentID
		w.passageLive[id] = true
	}
}

// seeAgent learns from an agent in a response. Called with w.mu held.
func (w *world) seeAgent(op *opRecord, a agentJSON) {
	if a.ID == "" {
		return
	}
	if _, known := w.agentCreatedBy[a.ID]; !known {
		w.adoptAgent(w.byName[a.Name], a)
	}
	if _, known := w.agentCreatedBy[a.ID]; !known {
		return
	}
	w.agentLive[a.ID] = true
	if !a.withoutBlocks {
		w.agentBlocksSeen[a.ID] = a.blockIDs()
	}
	for _, b := range a.Blocks {
		w.seeBlock(op, b)
	}
}

func (w *world) seeBlock(op *opRecord, b blockJSON) {
	if b.ID == "" {
		return
	}
	if _, known := w.blockCreatedBy[b.ID]; !known {
		w.adoptBlock(w.byLabel[b.Label], b)
	}
	if _, known := w.blockCreatedBy[b.ID]; known {
		w.blockLive[b.ID] = true
	}
}

// adoptAgent learns the id of the agent that create made: from its own
// response, or from a read that shows an agent whose create had an unknown
// outcome. An agent no create made, or that a failed create made, is a
// violation.
func (w *world) adoptAgent(create *opRecord, a agentJSON) {
	if _, known := w.agentCreatedBy[a.ID]; known {
		return
	}
	switch {
	case create == nil:
		w.sys.violation("corruption", a.ID, "agent %s (name %q) appeared, but no operation created it", a.ID, a.Name)
		return
	case create.done && create.finalOut() == failedOutcome:
		w.sys.violation("partial-effect", a.ID, "agent %s (name %q) appeared, but its create (op #%d) failed with %d", a.ID, a.Name, create.ID, create.Status)
		return
	case create.Agent != "" && create.Agent != a.ID:
		w.sys.violation("corruption", a.ID, "agent %s has the name %q of the agent %s that op #%d created", a.ID, a.Name, create.Agent, create.ID)
		return
	}
	create.Agent = a.ID
	w.agents = append(w.agents, a.ID)
	w.agentCreatedBy[a.ID] = create
	w.agentLive[a.ID] = true
	for _, b := range a.Blocks {
		if i := slices.Index(create.MemLabels, b.Label); i >= 0 {
			w.adoptBlock(create, b)
		}
	}
}

// adoptBlock is adoptAgent for blocks; create made the block standalone or
// as a memory block of a new agent.
func (w *world) adoptBlock(create *opRecord, b blockJSON) {
	if _, known := w.blockCreatedBy[b.ID]; known {
		return
	}
	switch {
	case create == nil:
		w.sys.violation("corruption", b.ID, "block %s (label %q) appeared, but no operation created it", b.ID, b.Label)
		return
	case create.done && create.finalOut() == failedOutcome:
		w.sys.violation("partial-effect", b.ID, "block %s (label %q) appeared, but its create (op #%d) failed with %d", b.ID, b.Label, create.ID, create.Status)
		return
	}
	if len(create.MemLabels) > 0 { // an agent's memory block
		i := slices.Index(create.MemLabels, b.Label)
		if i < 0 || (create.MemBlocks[i] != "" && create.MemBlocks[i] != b.ID) {
			w.sys.violation("corruption", b.ID, "block %s (label %q) does not match the blocks op #%d created", b.ID, b.Label, create.ID)
			return
		}
		create.MemBlocks[i] = b.ID
	} else {
		if create.Block != "" && create.Block != b.ID {
			w.sys.violation("corruption", b.ID, "block %s has the label %q of block %s that op #%d created", b.ID, b.Label, create.Block, create.ID)
			return
		}
		create.Block = b.ID
	}
	w.blocks = append(w.blocks, b.ID)
	w.blockCreatedBy[b.ID] = create
	w.blockLive[b.ID] = true
	w.blockLabel[b.ID] = b.Label
	w.labelBlock[b.Label] = b.ID
}
