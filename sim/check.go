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
	sys  *system
	ops  []*opRecord
	objs map[string][]*mop // by object
	out  []Violation
	per  map[string]int
	msg  *msgState // the message histories and the memory edits in them
	// checked counts what the checkers examined, by name.
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
	c := &checker{sys: s, ops: s.rec.ops, objs: map[string][]*mop{}, per: map[string]int{}, checked: map[string]int{}}
	s.checked = c.checked
	c.settle()
	for _, v := range s.online {
		c.report(v.checker, v.msg, c.historyOf(v.object, c.opAt(v.object, v.at)))
	}
	c.prepareMessages(w, s.final)
	c.build(w)
	for _, obj := range sortedKeys(c.objs) {
		mops := c.objs[obj]
		slices.SortStableFunc(mops, func(a, b *mop) int { return cmp64(a.call, b.call) })
		c.checkCreateDelete(obj, mops)
		c.checkValues(obj, mops)
	}
	for _, obj := range sortedKeys(c.objs) {
		mops := c.objs[obj]
		if c.per["linearizability"] >= maxPerChecker {
			break
		}
		if !checkLinearizable(mops) {
			small := minimize(mops)
			msg := fmt.Sprintf("the history of %s has no linearization (%d operations; the %d below still have none)", obj, len(mops), len(small))
			c.report("linearizability", msg, formatMops(small))
		}
	}
	c.checkMessages(w)
	return c.out
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

func formatMops(mops []*mop) string {
	var ops []*opRecord
	note := map[*opRecord][]string{}
	for _, m := range mops {
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
func (c *checker) add(op *opRecord, obj string, m mop) {
	m.op, m.obj = op, obj
	m.call, m.ret = op.Call, op.Ret
	switch op.Out {
	case unknownOutcome:
		m.res, m.ret = rUnknown, op.EffectBy
	}
	mm := m
	c.objs[obj] = append(c.objs[obj], &mm)
}

func agentObj(id string) string { return "agent " + id }
func blockObj(id string) string { return "block " + id }

// build turns the history into model operations per object.
func (c *checker) build(w *world) {
	agentKnown := func(id string) bool { _, ok := w.agentCreate[id]; return ok }
	blockKnown := func(id string) bool { _, ok := w.blockCreate[id]; return ok }
	skip := map[string]bool{}
	// Blocks each agent may ever have had attached, for block deletes.
	related := map[string]map[string]bool{}
	relate := func(agentID string, blocks ...string) {
		if related[agentID] == nil {
			related[agentID] = map[string]bool{}
		}
		for _, b := range blocks {
			related[agentID][b] = true
		}
	}
	readAgent := func(op *opRecord, a agentJSON, withBlocks bool) {
		if !agentKnown(a.ID) {
			return
		}
		m := mop{kind: aRead, present: true, name: a.Name}
		if withBlocks {
			m.hasAtt, m.att = true, joinIDs(a.blockIDs())
			relate(a.ID, a.blockIDs()...)
		}
		c.add(op, agentObj(a.ID), m)
		for _, b := range a.Blocks {
			c.readBlock(op, b, blockKnown)
		}
	}
	for _, first := range c.ops {
		if first.Root != nil {
			continue // a retry: part of its first attempt's logical operation
		}
		op := c.logical(first)
		if op.Out == failedOutcome && op.Status != 404 {
			continue // busy, conflict, sent to a dead process: no effect, nothing seen
		}
		if op.Out == unknownOutcome && !isWrite(op.Kind) {
			continue
		}
		if op.Status != 200 && isList(op.Kind) {
			continue // not about any one object
		}
		res := rOK
		switch {
		case op.Out == unknownOutcome:
			res = rUnknown
		case op.Status == 404:
			switch notFoundKind(op.Detail) {
			case "agent":
				res = rAbsent
			case "block":
				res = rNoBlock
			case "not-attached", "no-label":
				res = rNotAttached
			default:
				continue
			}
		}
		// The state an acknowledged agent write returns.
		resp := func(m *mop) {
			if a := op.RespAgent; a != nil && op.Out == okOutcome {
				m.hasResp, m.respName, m.respAtt = true, a.Name, joinIDs(a.blockIDs())
				relate(a.ID, a.blockIDs()...)
				for _, b := range a.Blocks {
					c.readBlock(op, b, blockKnown)
				}
			}
		}
		switch op.Kind {
		case kCreateAgent:
			if op.Out == failedOutcome {
				continue
			}
			for i, id := range op.MemBlocks {
				if id != "" {
					c.add(op, blockObj(id), mop{kind: bCreate, res: res, value: op.MemValues[i]})
				}
			}
			if op.Agent == "" {
				continue
			}
			att := slices.Concat(op.MemBlocks, op.IDs)
			if slices.Contains(att, "") {
				// A memory block of a create with an unknown outcome was
				// never seen: what the agent started with is unknowable.
				skip[agentObj(op.Agent)] = true
				continue
			}
			relate(op.Agent, att...)
			m := mop{kind: aCreate, res: res, name: op.Name, att: joinIDs(att)}
			resp(&m)
			c.add(op, agentObj(op.Agent), m)
		case kCreateBlock:
			if op.Block != "" && op.Out != failedOutcome {
				c.add(op, blockObj(op.Block), mop{kind: bCreate, res: res, value: op.Value})
			}
		case kGetAgent:
			if res == rAbsent {
				c.add(op, agentObj(op.Agent), mop{kind: aRead, present: false})
			} else if op.RespAgent != nil {
				readAgent(op, *op.RespAgent, true)
			}
		case kListAgents:
			listed := map[string]bool{}
			for _, a := range op.RespAgents {
				listed[a.ID] = true
				readAgent(op, a, true)
			}
			for id, create := range w.agentCreate {
				if !listed[id] && create.Call < op.Ret {
					c.add(op, agentObj(id), mop{kind: aRead, present: false})
				}
			}
		case kListBlockAgents:
			listed := map[string]bool{}
			for _, a := range op.RespAgents {
				listed[a.ID] = true
				if agentKnown(a.ID) {
					c.add(op, agentObj(a.ID), mop{kind: aProbe, present: true, block: op.Block, name: a.Name})
				}
			}
			for id, create := range w.agentCreate {
				if !listed[id] && create.Call < op.Ret {
					c.add(op, agentObj(id), mop{kind: aProbe, present: false, block: op.Block})
				}
			}
		case kUpdateAgent:
			m := mop{kind: aUpdateName, res: res, name: op.Name}
			resp(&m)
			c.add(op, agentObj(op.Agent), m)
		case kSetBlocks:
			relate(op.Agent, op.IDs...)
			m := mop{kind: aSetBlocks, res: res, att: joinIDs(op.IDs)}
			if res == rNoBlock {
				m.res = rOK // which block was missing is not known; the agent exists
				m.kind, m.present = aRead, true
			}
			resp(&m)
			c.add(op, agentObj(op.Agent), m)
		case kDeleteAgent:
			c.add(op, agentObj(op.Agent), mop{kind: aDelete, res: res})
		case kAttach, kDetach:
			relate(op.Agent, op.Block)
			kind := aAttach
			if op.Kind == kDetach {
				kind = aDetach
			}
			m := mop{kind: kind, res: res, block: op.Block}
			resp(&m)
			c.add(op, agentObj(op.Agent), m)
			if res == rNoBlock && blockKnown(op.Block) {
				c.add(op, blockObj(op.Block), mop{kind: bRead, present: false})
			}
		case kUpdateAgentBlock:
			relate(op.Agent, op.Block)
			c.add(op, agentObj(op.Agent), mop{kind: aEditLabel, res: res, block: op.Block})
			if (res == rOK || res == rUnknown) && blockKnown(op.Block) {
				c.add(op, blockObj(op.Block), mop{kind: bWrite, res: res, value: op.Value})
				if b := op.RespBlock; b != nil && b.ID != op.Block {
					c.report("corruption", fmt.Sprintf("op #%d edited the block labelled %s, which is %s, and answered with block %s", op.ID, op.Label, op.Block, b.ID), c.historyOf(op.Agent, op.ID))
				}
			}
		case kGetAgentBlock:
			relate(op.Agent, op.Block)
			if res == rOK {
				c.add(op, agentObj(op.Agent), mop{kind: aHasBlock, block: op.Block})
				if op.RespBlock != nil {
					c.readBlock(op, *op.RespBlock, blockKnown)
				}
			} else {
				c.add(op, agentObj(op.Agent), mop{kind: aRead, res: res, block: op.Block})
			}
		case kListAgentBlocks:
			if res == rAbsent {
				c.add(op, agentObj(op.Agent), mop{kind: aRead, present: false})
				continue
			}
			ids := make([]string, len(op.RespBlocks))
			for i, b := range op.RespBlocks {
				ids[i] = b.ID
				c.readBlock(op, b, blockKnown)
			}
			relate(op.Agent, ids...)
			c.add(op, agentObj(op.Agent), mop{kind: aRead, present: true, hasAtt: true, att: joinIDs(ids)})
		case kSendMessage, kListMessages:
			// Answered: the agent existed while the call ran.
			switch res {
			case rOK:
				c.add(op, agentObj(op.Agent), mop{kind: aRead, present: true})
			case rAbsent:
				c.add(op, agentObj(op.Agent), mop{kind: aRead, present: false})
			}
		case kGetBlock:
			if res == rNoBlock {
				c.add(op, blockObj(op.Block), mop{kind: bRead, present: false})
			} else if op.RespBlock != nil {
				c.readBlock(op, *op.RespBlock, blockKnown)
			}
		case kListBlocks:
			listed := map[string]bool{}
			for _, b := range op.RespBlocks {
				listed[b.ID] = true
				c.readBlock(op, b, blockKnown)
			}
			for id, create := range w.blockCreate {
				if !listed[id] && create.Call < op.Ret {
					c.add(op, blockObj(id), mop{kind: bRead, present: false})
				}
			}
		case kUpdateBlock:
			if res == rNoBlock {
				res = rAbsent
			}
			c.add(op, blockObj(op.Block), mop{kind: bWrite, res: res, value: op.Value})
		case kDeleteBlock:
			if res == rNoBlock {
				c.add(op, blockObj(op.Block), mop{kind: bDelete, res: rAbsent})
				continue
			}
			c.add(op, blockObj(op.Block), mop{kind: bDelete, res: res})
		}
	}
	// A deleted block is detached from every agent it may be attached to.
	for _, first := range c.ops {
		if first.Root != nil || first.Kind != kDeleteBlock {
			continue
		}
		op := c.logical(first)
		if op.Out == failedOutcome {
			continue
		}
		for agentID, blocks := range related {
			if blocks[op.Block] && agentKnown(agentID) {
				res := rOK
				if op.Out == unknownOutcome {
					res = rUnknown
				}
				c.add(op, agentObj(agentID), mop{kind: aBlockGone, res: res, block: op.Block})
			}
		}
	}
	c.addToolEdits(blockKnown)
	c.addAudit(w)
	for obj := range skip {
		delete(c.objs, obj)
	}
	// Map order must not leak into the results.
	for _, mops := range c.objs {
		slices.SortStableFunc(mops, func(a, b *mop) int { return cmp64(a.call, b.call) })
	}
}

// logical returns the operation that first and its retries (with the same
// idempotency key) make together: called at the first attempt, answered as
// the last attempt was, taking effect at most once, at the latest when the
// last attempt answered or, if no attempt's outcome is known, by the latest
// effect bound of any attempt.
func (c *checker) logical(first *opRecord) *opRecord {
	if len(first.Retries) == 0 {
		return first
	}
	last := first.Retries[len(first.Retries)-1]
	op := *first
	op.Ret, op.Status, op.Detail, op.Out = last.Ret, last.Status, last.Detail, last.Out
	op.Resp, op.RespAgent, op.RespAgents, op.RespBlock, op.RespBlocks = last.Resp, last.RespAgent, last.RespAgents, last.RespBlock, last.RespBlocks
	op.EffectBy = last.EffectBy
	if op.Out == failedOutcome && op.Status != 404 {
		// Busy, conflict, or sent to a dead process: the last attempt
		// did nothing and tells nothing of the earlier ones. A 404 comes
		// from the actor after it found no idempotency record: no
		// earlier attempt took effect.
		op.Out = unknownOutcome
	}
	if op.Out == unknownOutcome {
		op.EffectBy = first.EffectBy
		for _, r := range first.Retries {
			op.EffectBy = max(op.EffectBy, r.EffectBy)
		}
	}
	return &op
}

func (c *checker) readBlock(op *opRecord, b blockJSON, known func(string) bool) {
	if known(b.ID) {
		m := mop{kind: bRead, present: true, value: b.Value}
		// A value a memory tool wrote, in a block such tools may have
		// edited in turns whose history is gone: the model cannot know it.
		m.anyValue = c.msg.opaque[b.ID] && strings.Contains(b.Value, toolMarker)
		c.add(op, blockObj(b.ID), m)
	}
}

func isList(kind string) bool {
	return kind == kListAgents || kind == kListBlocks || kind == kListBlockAgents
}

func isWrite(kind string) bool {
	switch kind {
	case kCreateAgent, kUpdateAgent, kSetBlocks, kDeleteAgent, kCreateBlock, kUpdateBlock,
		kUpdateAgentBlock, kAttach, kDetach, kDeleteBlock:
		return true
	}
	return false
}

// evidence of an object's existence or absence in one model operation.
func seesAbsent(m *mop) bool {
	if m.res == rAbsent {
		return true
	}
	return (m.kind == aRead || m.kind == bRead) && m.res == rOK && !m.present
}

func seesPresent(m *mop) bool {
	switch m.res {
	case rUnknown, rAbsent:
		return false
	case rNoBlock, rNotAttached:
		return true // said of an agent that exists
	}
	switch m.kind {
	case aRead, bRead, aProbe:
		return m.present
	case aCreate, bCreate, aBlockGone, aDelete, bDelete:
		return false
	}
	return true // an acknowledged write to the object
}

func isDelete(m *mop) bool { return m.kind == aDelete || m.kind == bDelete }
func isCreate(m *mop) bool { return m.kind == aCreate || m.kind == bCreate }

// checkCreateDelete: an acknowledged create is found by every later
// operation unless a delete may have come between; an acknowledged delete
// is never followed by the object being found.
func (c *checker) checkCreateDelete(obj string, mops []*mop) {
	id := obj[strings.IndexByte(obj, ' ')+1:]
	for _, cr := range mops {
		if !isCreate(cr) || cr.res != rOK {
			continue
		}
		for _, m := range mops {
			if m.call <= cr.ret || !seesAbsent(m) {
				continue
			}
			deleted := false
			for _, d := range mops {
				if isDelete(d) && (d.res == rOK || d.res == rUnknown) && d.call < m.ret {
					deleted = true
				}
			}
			if !deleted {
				c.report("create-get", fmt.Sprintf("acknowledged write lost: the create of %s (op #%d) returned success, then op #%d found no %s, and nothing deleted it", obj, cr.op.ID, m.op.ID, strings.Fields(obj)[0]),
					c.historyOf(id, m.op.ID))
				return
			}
		}
	}
	for _, d := range mops {
		if !isDelete(d) || d.res != rOK {
			continue
		}
		for _, m := range mops {
			if m.call > d.ret && seesPresent(m) {
				c.report("delete-get", fmt.Sprintf("the delete of %s (op #%d) returned success, then op #%d found it (%s)", obj, d.op.ID, m.op.ID, m),
					c.historyOf(id, m.op.ID))
				return
			}
		}
	}
}

// checkValues: every name or value read was written by an operation that
// did not fail, and is not older than an acknowledged write that finished
// before the read began.
func (c *checker) checkValues(obj string, mops []*mop) {
	id := obj[strings.IndexByte(obj, ' ')+1:]
	isAgent := strings.HasPrefix(obj, "agent ")
	written := func(m *mop) (string, bool) {
		switch {
		case isAgent && (m.kind == aCreate || m.kind == aUpdateName):
			return m.name, true
		case !isAgent && (m.kind == bCreate || m.kind == bWrite):
			return m.value, true
		}
		return "", false
	}
	seen := func(m *mop) string {
		switch {
		case isAgent && m.hasResp && m.res == rOK:
			return m.respName
		case isAgent && (m.kind == aRead || m.kind == aProbe) && m.present:
			return m.name
		case !isAgent && m.kind == bRead && m.present && !strings.Contains(m.value, toolMarker):
			// A value with a marker was written by a memory tool: the
			// linearizability model checks it.
			return m.value
		}
		return ""
	}
	writers := map[string]*mop{}
	for _, m := range mops {
		if v, ok := written(m); ok && m.res != rAbsent {
			writers[v] = m
		}
	}
	for _, r := range mops {
		v := seen(r)
		if v == "" {
			continue
		}
		x := writers[v]
		if x == nil {
			if failed := c.failedWriter(v); failed != nil {
				c.report("partial-effect", fmt.Sprintf("op #%d read %q from %s, which only op #%d wrote, and it failed with %d", r.op.ID, v, obj, failed.ID, failed.Status), c.historyOf(id, r.op.ID))
			} else {
				c.report("corruption", fmt.Sprintf("op #%d read %q from %s, which no operation wrote there", r.op.ID, v, obj), c.historyOf(id, r.op.ID))
			}
			return
		}
		xEnd := x.ret // the latest x can have taken effect
		for _, w := range mops {
			wv, ok := written(w)
			if !ok || w.res != rOK || wv == v || w.ret >= r.call {
				continue
			}
			if xEnd < w.call {
				c.report("durability", fmt.Sprintf("acknowledged write lost: op #%d wrote %q to %s and returned success; op #%d, which began later, read the older %q of op #%d", w.op.ID, wv, obj, r.op.ID, v, x.op.ID),
					c.historyOf(id, r.op.ID))
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
