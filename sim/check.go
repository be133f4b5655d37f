package sim

import (
	"fmt"
	"slices"
	"strings"
)

// maxPerChecker bounds how many violations of one checker a run reports.
const maxPerChecker = 3

// historyLimit bounds the operations a violation's history shows.
const historyLimit = 40

// checker runs the checks over a finished run's history.
type checker struct {
	sys     *system
	w       *world
	ops     []*opRecord
	objects map[string][]*modelOp // the model's operations, by object
	out     []Violation
	per     map[string]int
	msg     *msgState     // the message histories and the memory edits in them
	listed  *listingModel // what the listings must show, beyond agents and blocks
	// checked counts what the checkers examined, by name; known the
	// findings of known defects.
	checked map[string]int
}

func (c *checker) count(name string, n int) {
	if n != 0 {
		c.checked[name] += n
	}
}

func (c *checker) report(checker, msg string, history string) {
	if c.per[checker] >= maxPerChecker {
		return
	}
	c.per[checker]++
	c.out = append(c.out, Violation{Checker: checker, Message: msg, History: history})
}

// check runs every history checker and returns the violations, those found
// during the run first.
func (s *system) check(w *world) []Violation {
	c := &checker{sys: s, w: w, ops: s.rec.ops, objects: map[string][]*modelOp{}, per: map[string]int{}, checked: map[string]int{}, listed: newListingModel()}
	s.checked = c.checked
	for _, op := range c.ops {
		if op.ErrKind != "" {
			c.count("failed "+op.ErrKind, 1)
		}
	}
	c.settle()
	for _, v := range s.online {
		c.report(v.checker, v.msg, c.historyOf(v.object, c.opAt(v.object, v.at)))
	}
	c.prepareMessages(s.final)
	c.build()
	for _, obj := range sortedKeys(c.objects) {
		modelOps := c.objects[obj]
		c.checkCreateDelete(obj, modelOps)
		c.checkValues(obj, modelOps)
	}
	for _, obj := range sortedKeys(c.objects) {
		modelOps := c.objects[obj]
		if c.per["linearizability"] >= maxPerChecker {
			break
		}
		if !checkLinearizable(modelOps) {
			small := minimize(modelOps)
			msg := fmt.Sprintf("the history of %s has no linearization (%d operations; the %d below still have none)", obj, len(modelOps), len(small))
			c.report("linearizability", msg, formatModelOps(small))
		}
	}
	c.checkBusy()
	c.checkMessages()
	c.checkTools()
	c.checkListings()
	c.checkRepos(s.final)
	c.checkSummaries(s.final)
	return c.out
}

// checkBusy: a message refused because its conversation was busy met
// another send to that conversation, in flight when it was refused or cut
// off before then (its turn goes on without its client); a compaction
// refused because its context changed met a reset of its agent in flight;
// a call refused because tool calls wait for results met a turn of its
// agent in flight, or one that did not end cleanly before it.
func (c *checker) checkBusy() {
	for _, op := range c.ops {
		// inFlight: o was running when op was refused, or cut off before.
		inFlight := func(o *opRecord) bool {
			return o.Call < op.Ret && (o.Ret > op.Call || o.Out == unknownOutcome)
		}
		var met func(o *opRecord) bool
		var what string
		switch {
		case op.Status != 409:
			continue
		case conversationBusy(op.Detail):
			met = func(o *opRecord) bool { return o.Method == op.Method && o.Path == op.Path && inFlight(o) }
			what = "refused as busy with no other send to the conversation in flight"
		case contextChanged(op.Detail):
			met = func(o *opRecord) bool { return o.Kind == resetMessagesOp{} && o.Agent == op.Agent && inFlight(o) }
			what = "refused as its context changed with no reset of its agent in flight"
		case callsPending(op.Detail):
			met = func(o *opRecord) bool {
				return o.Kind.traits().turn && o.Agent == op.Agent && (inFlight(o) || o.Call < op.Ret && o.ErrKind != "")
			}
			what = "refused as tool calls wait for results with no turn of its agent in flight or cut short"
		default:
			continue
		}
		if !slices.ContainsFunc(c.ops, func(o *opRecord) bool { return o != op && met(o) }) {
			c.report("unexpected-error", fmt.Sprintf("op #%d %s %s: %s: %s", op.ID, op.Method, op.Path, what, op.Detail),
				c.historyOf(op.Target, op.ID))
		}
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// settle bounds when each unknown operation may have taken effect. A 500
// answers an invocation that has finished: any effect came before the
// answer. Nothing of a crashed incarnation lands after its crash. Other
// unknown outcomes (a cancelled or timed-out call) may land at any time.
func (c *checker) settle() {
	for _, op := range c.ops {
		if op.Out != unknownOutcome {
			continue
		}
		op.EffectBy = never
		if op.Status == 500 {
			op.EffectBy = op.Ret
		}
		if crash := c.sys.all[op.Inc].crashSeq.Load(); crash != 0 {
			if crash < op.Call {
				// Sent to a process already dead: it did nothing.
				op.Out, op.EffectBy = failedOutcome, 0
				continue
			}
			op.EffectBy = min(op.EffectBy, crash)
		}
	}
}

// historyOf renders the operations on object (an agent or block id, or ""
// for the last operations of the run), around operation focus.
func (c *checker) historyOf(object string, focus int) string {
	var ops []*opRecord
	for _, op := range c.ops {
		if object == "" || op.mentions(object) {
			ops = append(ops, op)
		}
	}
	return formatOps(ops, focus, historyLimit)
}

// opAt returns the last operation on object called at or before logical
// time t, or -1.
func (c *checker) opAt(object string, t int64) int {
	focus := -1
	for _, op := range c.ops {
		if op.Call <= t && (object == "" || op.mentions(object)) {
			focus = op.ID
		}
	}
	return focus
}

func (op *opRecord) mentions(id string) bool {
	if op.Agent == id || op.Block == id || slices.Contains(op.IDs, id) || slices.Contains(op.MemBlocks, id) {
		return true
	}
	return strings.Contains(string(op.Resp), id)
}

func formatModelOps(modelOps []*modelOp) string {
	var ops []*opRecord
	note := map[*opRecord][]string{}
	for _, m := range modelOps {
		if len(note[m.op]) == 0 {
			ops = append(ops, m.op)
		}
		note[m.op] = append(note[m.op], m.String())
	}
	var b strings.Builder
	for _, op := range ops {
		fmt.Fprintf(&b, "%s\n    model: %s\n", op.format(), strings.Join(note[op], "; "))
	}
	return b.String()
}

// add appends a model operation for op on obj.
func (c *checker) add(op *opRecord, obj string, m modelOp) {
	m.op, m.object = op, obj
	m.call, m.ret = op.Call, op.Ret
	if op.Out == unknownOutcome {
		m.result, m.ret = resultUnknown, op.EffectBy
	}
	c.objects[obj] = append(c.objects[obj], &m)
}

func agentObj(id string) string { return "agent " + id }
func blockObj(id string) string { return "block " + id }

// agentKnown and blockKnown report whether the clients learnt who created
// the object: the model checks only those.
func (c *checker) agentKnown(id string) bool { _, ok := c.w.agentCreatedBy[id]; return ok }
func (c *checker) blockKnown(id string) bool { _, ok := c.w.blockCreatedBy[id]; return ok }

// modelBuilder turns the history into model operations per object: each
// logical operation's kind says what it did (operation.model).
type modelBuilder struct {
	c *checker
	w *world
	// skip are the objects whose history the model cannot know.
	skip map[string]bool
	// related are the blocks each agent may ever have had attached.
	related map[string]map[string]bool
	// blockDeletes are the block deletes that may have happened.
	blockDeletes []*opRecord
}

// build fills c.objects.
func (c *checker) build() {
	b := &modelBuilder{c: c, w: c.w, skip: map[string]bool{}, related: map[string]map[string]bool{}}
	for _, first := range c.ops {
		if first.Root != nil {
			continue // a retry: part of its first attempt's logical operation
		}
		op := c.logical(first)
		if res, ok := modelResultOf(op); ok {
			op.Kind.model(b, op, res)
		}
	}
	b.finish()
	c.addToolEdits()
	c.addAudit()
	for obj := range b.skip {
		delete(c.objects, obj)
	}
	// Map order must not leak into the results.
	for _, modelOps := range c.objects {
		slices.SortStableFunc(modelOps, func(a, b *modelOp) int { return cmp64(a.call, b.call) })
	}
}

// modelResultOf is the result of a logical operation in the model, or
// false when it tells the model nothing.
func modelResultOf(op *opRecord) (modelResult, bool) {
	t := op.Kind.traits()
	switch {
	case op.Out == failedOutcome && op.Status != 404:
		return 0, false // busy, conflict, sent to a dead process: no effect, nothing seen
	case op.Out == unknownOutcome && !t.write:
		return 0, false
	case op.Status != 200 && t.listing:
		return 0, false // not about any one object
	case op.Out == unknownOutcome:
		return resultUnknown, true
	case op.Status == 404:
		switch notFoundKind(op.Detail) {
		case "agent":
			return resultAbsent, true
		case "block":
			return resultNoBlock, true
		case "not-attached", "no-label":
			return resultNotAttached, true
		}
		return 0, false
	}
	return resultOK, true
}

// finish adds what needs the whole history: a deleted block is detached
// from every agent it may be attached to.
func (b *modelBuilder) finish() {
	for _, op := range b.blockDeletes {
		res := resultOK
		if op.Out == unknownOutcome {
			res = resultUnknown
		}
		for agentID, blocks := range b.related {
			if blocks[op.Block] && b.c.agentKnown(agentID) {
				b.add(op, agentObj(agentID), modelOp{kind: agentBlockGone, result: res, block: op.Block})
			}
		}
	}
}

func (b *modelBuilder) add(op *opRecord, obj string, m modelOp) { b.c.add(op, obj, m) }

// relate notes that blocks may have been attached to agentID.
func (b *modelBuilder) relate(agentID string, blocks ...string) {
	if b.related[agentID] == nil {
		b.related[agentID] = map[string]bool{}
	}
	for _, blk := range blocks {
		b.related[agentID][blk] = true
	}
}

// readAgent models a read of agent a (with its blocks when withBlocks).
func (b *modelBuilder) readAgent(op *opRecord, a agentJSON, withBlocks bool) {
	if !b.c.agentKnown(a.ID) {
		return
	}
	m := modelOp{kind: agentRead, present: true, name: a.Name}
	if withBlocks {
		m.hasAttached, m.attached = true, joinIDs(a.blockIDs())
		b.relate(a.ID, a.blockIDs()...)
	}
	b.add(op, agentObj(a.ID), m)
	for _, blk := range a.Blocks {
		b.c.readBlock(op, blk)
	}
}

// withResponse adds to m, an agent write, the state an acknowledged one
// returned.
func (b *modelBuilder) withResponse(op *opRecord, m *modelOp) {
	a := op.RespAgent
	if a == nil || op.Out != okOutcome {
		return
	}
	m.hasResp, m.respName, m.respAttached = true, a.Name, joinIDs(a.blockIDs())
	b.relate(a.ID, a.blockIDs()...)
	for _, blk := range a.Blocks {
		b.c.readBlock(op, blk)
	}
}

// logical returns the operation that first and its retries (with the same
// idempotency key) make together: called at the first attempt, answered as
// the last attempt was, taking effect at most once, at the latest when the
// last attempt answered or, if no attempt's outcome is known, by the latest
// effect bound of the attempts that may have taken effect.
func (c *checker) logical(first *opRecord) *opRecord {
	if len(first.Retries) == 0 {
		return first
	}
	last := first.Retries[len(first.Retries)-1]
	op := *first
	op.Ret, op.Status, op.Detail, op.Out = last.Ret, last.Status, last.Detail, last.Out
	op.Resp, op.responses = last.Resp, last.responses
	op.EffectBy = last.EffectBy
	if op.Out == failedOutcome && op.Status != 404 {
		// Busy, conflict, or sent to a dead process: the last attempt
		// did nothing and tells nothing of the earlier ones, so the
		// operation did what they did. (A 404 comes from the actor after
		// it found no idempotency record: no earlier attempt took effect.)
		op.Out = outcomeOfAttempts(append([]*opRecord{first}, first.Retries...))
	}
	if op.Out == unknownOutcome {
		// Only the attempts that may have taken effect bound it: one that
		// failed did nothing, and has no bound (an attempt sent to a
		// process already dead is failed once the run is settled).
		op.EffectBy = 0
		for _, a := range append([]*opRecord{first}, first.Retries...) {
			if a.Out == unknownOutcome {
				op.EffectBy = max(op.EffectBy, a.EffectBy)
			}
		}
	}
	return &op
}

// outcomeOfAttempts is the outcome of attempts of which none succeeded:
// failed if every one failed, else unknown.
func outcomeOfAttempts(attempts []*opRecord) outcome {
	for _, a := range attempts {
		if a.Out != failedOutcome {
			return unknownOutcome
		}
	}
	return failedOutcome
}

// readBlock models a read of block b.
func (c *checker) readBlock(op *opRecord, b blockJSON) {
	if c.blockKnown(b.ID) {
		m := modelOp{kind: blockRead, present: true, value: b.Value}
		// A value a memory tool wrote, in a block such tools may have
		// edited in turns whose history is gone: the model cannot know it.
		m.anyValue = c.msg.opaque[b.ID] && strings.Contains(b.Value, toolMarker)
		c.add(op, blockObj(b.ID), m)
	}
}

// evidence of an object's existence or absence in one model operation.
func seesAbsent(m *modelOp) bool {
	if m.result == resultAbsent {
		return true
	}
	return (m.kind == agentRead || m.kind == blockRead) && m.result == resultOK && !m.present
}

func seesPresent(m *modelOp) bool {
	switch m.result {
	case resultUnknown, resultAbsent:
		return false
	case resultNoBlock, resultNotAttached:
		return true // said of an agent that exists
	}
	switch m.kind {
	case agentRead, blockRead, agentProbe:
		return m.present
	case agentCreate, blockCreate, agentBlockGone, agentDelete, blockDelete:
		return false
	case blockToolEdit:
		// A memory tool call that did nothing before looking at the block
		// (no block had its label, its arguments were unusable) did not
		// see it: the model may name a block from a system message
		// compiled before the block went (a conversation keeps its own,
		// as in Letta).
		return m.edit.sawBlock()
	}
	return true // an acknowledged write to the object
}

func isDelete(m *modelOp) bool { return m.kind == agentDelete || m.kind == blockDelete }
func isCreate(m *modelOp) bool { return m.kind == agentCreate || m.kind == blockCreate }

// checkCreateDelete: an acknowledged create is found by every later
// operation unless a delete may have come between; an acknowledged delete
// is never followed by the object being found.
func (c *checker) checkCreateDelete(obj string, modelOps []*modelOp) {
	id := obj[strings.IndexByte(obj, ' ')+1:]
	for _, create := range modelOps {
		if !isCreate(create) || create.result != resultOK {
			continue
		}
		for _, m := range modelOps {
			if m.call <= create.ret || !seesAbsent(m) {
				continue
			}
			deleted := false
			for _, del := range modelOps {
				if isDelete(del) && (del.result == resultOK || del.result == resultUnknown) && del.call < m.ret {
					deleted = true
				}
			}
			if !deleted {
				c.report("create-get", fmt.Sprintf("acknowledged write lost: the create of %s (op #%d) returned success, then op #%d found no %s, and nothing deleted it", obj, create.op.ID, m.op.ID, strings.Fields(obj)[0]),
					c.historyOf(id, m.op.ID))
				return
			}
		}
	}
	for _, del := range modelOps {
		if !isDelete(del) || del.result != resultOK {
			continue
		}
		for _, m := range modelOps {
			if m.call > del.ret && seesPresent(m) {
				c.report("delete-get", fmt.Sprintf("the delete of %s (op #%d) returned success, then op #%d found it (%s)", obj, del.op.ID, m.op.ID, m),
					c.historyOf(id, m.op.ID))
				return
			}
		}
	}
}

// checkValues: every name or value read was written by an operation that
// did not fail, and is not older than an acknowledged write that finished
// before the read began.
func (c *checker) checkValues(obj string, modelOps []*modelOp) {
	id := obj[strings.IndexByte(obj, ' ')+1:]
	isAgent := strings.HasPrefix(obj, "agent ")
	written := func(m *modelOp) (string, bool) {
		switch {
		case isAgent && (m.kind == agentCreate || m.kind == agentRename):
			return m.name, true
		case !isAgent && (m.kind == blockCreate || m.kind == blockWrite):
			return m.value, true
		}
		return "", false
	}
	seen := func(m *modelOp) string {
		switch {
		case isAgent && m.hasResp && m.result == resultOK:
			return m.respName
		case isAgent && (m.kind == agentRead || m.kind == agentProbe) && m.present:
			return m.name
		case !isAgent && m.kind == blockRead && m.present && !strings.Contains(m.value, toolMarker):
			// A value with a marker was written by a memory tool: the
			// linearizability model checks it.
			return m.value
		}
		return ""
	}
	writers := map[string]*modelOp{}
	for _, m := range modelOps {
		if v, ok := written(m); ok && m.result != resultAbsent {
			writers[v] = m
		}
	}
	for _, read := range modelOps {
		v := seen(read)
		if v == "" {
			continue
		}
		writer := writers[v]
		if writer == nil {
			if failed := c.failedWriter(v); failed != nil {
				c.report("partial-effect", fmt.Sprintf("op #%d read %q from %s, which only op #%d wrote, and it failed with %d", read.op.ID, v, obj, failed.ID, failed.Status), c.historyOf(id, read.op.ID))
			} else {
				c.report("corruption", fmt.Sprintf("op #%d read %q from %s, which no operation wrote there", read.op.ID, v, obj), c.historyOf(id, read.op.ID))
			}
			return
		}
		writerEnd := writer.ret // the latest the writer can have taken effect
		for _, other := range modelOps {
			otherValue, ok := written(other)
			if !ok || other.result != resultOK || otherValue == v || other.ret >= read.call {
				continue
			}
			if writerEnd < other.call {
				c.report("durability", fmt.Sprintf("acknowledged write lost: op #%d wrote %q to %s and returned success; op #%d, which began later, read the older %q of op #%d", other.op.ID, otherValue, obj, read.op.ID, v, writer.op.ID),
					c.historyOf(id, read.op.ID))
				return
			}
		}
	}
}

// failedWriter returns the failed operation that wrote v (a name or value),
// if any.
func (c *checker) failedWriter(v string) *opRecord {
	for _, op := range c.ops {
		if op.Out == failedOutcome && (op.Name == v || op.Value == v || slices.Contains(op.MemValues, v)) {
			return op
		}
	}
	return nil
}
