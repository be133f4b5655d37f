package sim

import (
	"fmt"
	"slices"
	"strings"
)

// The message-history checkers. They compare what message sends and
// listings answered with each agent's whole history as the audit read it
// back after the run (an agent the audit found gone was deleted, and with it
// its history: nothing is checked of it).
//
//   - message-lost: an acknowledged send (200 with a stop reason, or a
//     stream that reached [DONE]) has its user message and every message it
//     returned in the history, as it returned them; and a complete listing
//     made after the send was acknowledged has them too. Parts streamed token
//     by token are only required when the turn stopped cleanly (end_turn,
//     max_steps, max_tokens_exceeded): a step that fails after streaming
//     text is never committed.
//   - duplicate-turn: an otid is the user message of at most one turn; a
//     message sent again with its otid is answered with the same run and the
//     same messages (all of them when the first answer's turn stopped
//     cleanly, else at least those). (A send none of whose attempts can
//     have taken effect must leave no message: partial-effect.)
//   - history: each message id shows once; every tool call of an assistant
//     message has exactly one result among the tool messages that follow it
//     (and no result answers anything else), never the one the next turn
//     gives a call found without a result (a step commits its calls with
//     their results, so no call is ever without one); each run's messages are
//     contiguous and start with its user message; every listing made during
//     the run is a contiguous piece of the final history (the start of it
//     when it listed fewer than its limit), part for part. (That messages
//     are stored with dense sequence numbers is checked on the disk, by the
//     invariants.)
//   - memory: for a block no client wrote after creating it, not deleted,
//     and edited by memory tools of at most one agent, all of whose possible
//     editors' histories are known: replaying the memory tool calls of the
//     history in order on its initial value explains every recorded result
//     (success where the edit applies, the length it reports, an error where
//     it cannot apply) and gives the block's final value. Blocks that
//     clients also wrote, or that several agents edited, are checked by the
//     linearizability model instead, where each memory tool call is an
//     operation on its block that took effect while its send ran; blocks
//     that an agent whose history is gone may have edited are left out of
//     both (their values written by tools are not checked).

// repairedResult is in the result the agent gives, at the next turn, a
// tool call found without one.
const repairedResult = "the tool call was interrupted before it returned"

// msgState is what the message checkers know.
type msgState struct {
	audit  *audit
	sends  []*opRecord          // first attempts of message sends, in call order
	byOtid map[string]*opRecord // first attempts by otid
	// edits are the memory tool calls of the audited histories, by the
	// block their label names (labels are unique in a run), each agent's in
	// history order.
	edits map[string][]*toolEdit
	// opaque are the blocks that an agent whose history is not known may
	// have edited with a memory tool.
	opaque map[string]bool
	// runOtid maps each run of an audited history to its user message's
	// otid.
	runOtid map[string]string
}

func (c *checker) prepareMessages(a *audit) {
	state := &msgState{audit: a, byOtid: map[string]*opRecord{}, edits: map[string][]*toolEdit{},
		opaque: map[string]bool{}, runOtid: map[string]string{}}
	c.msg = state
	editors := map[string]map[string]bool{} // block -> agents it may have been attached to
	relate := func(agentID string, blocks ...string) {
		for _, b := range blocks {
			if agentID == "" || b == "" {
				continue
			}
			if editors[b] == nil {
				editors[b] = map[string]bool{}
			}
			editors[b][agentID] = true
		}
	}
	mayEdit := map[string]bool{} // agents a turn may have run for
	for _, op := range c.ops {
		t := op.Kind.traits()
		if root := op.first(); t.attaches {
			relate(root.Agent, root.MemBlocks...)
			relate(root.Agent, root.IDs...)
			relate(root.Agent, root.Block)
		}
		if t.turn && op.Out != failedOutcome {
			mayEdit[op.Agent] = true
		}
		if t.turn && op.Root == nil {
			state.sends = append(state.sends, op)
			state.byOtid[op.Otid] = op
		}
	}
	for _, b := range sortedKeys(editors) {
		for _, agentID := range sortedKeys(editors[b]) {
			if _, ok := a.history(agentID); mayEdit[agentID] && !ok {
				state.opaque[b] = true
			}
		}
	}
	c.count("blocks_opaque", len(state.opaque))
	c.readHistories()
}

// readHistories notes the runs and memory edits of every history the audit
// read.
func (c *checker) readHistories() {
	w := c.w
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, agentID := range w.agents {
		hist, ok := c.msg.audit.history(agentID)
		if !ok {
			continue
		}
		c.count("histories", 1)
		c.count("history_parts", len(hist))
		for _, m := range hist {
			if m.MessageType == mtUser && m.RunID != "" {
				c.msg.runOtid[m.RunID] = m.Otid
			}
		}
		for _, e := range toolEdits(agentID, hist) {
			if b := w.labelBlock[e.label]; b != "" {
				c.msg.edits[b] = append(c.msg.edits[b], e)
			}
		}
	}
}

// window bounds when the steps of a turn run can have committed: from the
// first attempt of its send to the latest any attempt can have taken
// effect.
func (c *checker) window(run string) (*opRecord, int64, int64) {
	first := c.msg.byOtid[c.msg.runOtid[run]]
	if first == nil {
		return nil, 0, never
	}
	end := int64(0)
	for _, a := range append([]*opRecord{first}, first.Retries...) {
		if a.Out == unknownOutcome {
			end = max(end, a.EffectBy)
		} else {
			end = max(end, a.Ret)
		}
	}
	return first, first.Call, end
}

// addToolEdits adds the memory tool calls of the audited histories to the
// linearizability model of their blocks.
func (c *checker) addToolEdits() {
	for _, b := range sortedKeys(c.msg.edits) {
		if c.msg.opaque[b] || !c.blockKnown(b) {
			continue
		}
		for _, e := range c.msg.edits[b] {
			op, call, ret := c.window(e.run)
			if op == nil {
				op = &opRecord{ID: -1, Client: -1, request: request{Method: "TURN", Path: e.run}}
			}
			c.objects[blockObj(b)] = append(c.objects[blockObj(b)], &modelOp{op: op, object: blockObj(b), kind: blockToolEdit, result: resultOK, call: call, ret: ret, edit: e})
			c.count("tool_edits_modelled", 1)
		}
	}
}

// addAudit adds the audit's reads: at the end, each agent and block exists
// with the value read, or not.
func (c *checker) addAudit() {
	a := c.msg.audit
	if a == nil {
		return
	}
	op := &opRecord{ID: -1, Client: -1, request: request{Method: "GET", Path: "(the audit after the run)"}, Call: a.call, Ret: a.ret, Status: 200}
	for _, id := range sortedKeys(a.agents) {
		switch a.agents[id].status {
		case 200:
			c.add(op, agentObj(id), modelOp{kind: agentRead, present: true})
		case 404:
			c.add(op, agentObj(id), modelOp{kind: agentRead, present: false})
		}
	}
	for _, id := range sortedKeys(a.blocks) {
		switch read := a.blocks[id]; read.status {
		case 200:
			c.readBlock(op, read.block)
		case 404:
			c.add(op, blockObj(id), modelOp{kind: blockRead, present: false})
		}
	}
}

// excerpt renders a history around part at.
func excerpt(hist []msgJSON, at int) string {
	lo, hi := max(0, at-8), min(len(hist), at+8)
	var b strings.Builder
	if lo > 0 {
		fmt.Fprintf(&b, "... %d earlier messages\n", lo)
	}
	for i := lo; i < hi; i++ {
		mark := "  "
		if i == at {
			mark = "> "
		}
		fmt.Fprintf(&b, "%s%d %s\n", mark, i, hist[i].String())
	}
	if hi < len(hist) {
		fmt.Fprintf(&b, "... %d later messages\n", len(hist)-hi)
	}
	return b.String()
}

func (c *checker) checkMessages() {
	a := c.msg.audit
	if a == nil {
		return
	}
	c.w.mu.Lock()
	agents := append([]string(nil), c.w.agents...)
	c.w.mu.Unlock()
	for _, agentID := range agents {
		if hist, ok := a.history(agentID); ok {
			c.checkHistory(agentID, hist)
		}
	}
	for _, first := range c.msg.sends {
		c.checkSend(first)
	}
	for _, op := range c.ops {
		if op.Out == okOutcome && op.RespMsgs != nil {
			c.checkListing(op)
		}
	}
	c.checkMemory()
}

// finding is what a check found wrong in a history.
type finding struct {
	checker string
	at      int // the part of the history it is about
	msg     string
}

func found(checker string, at int, format string, args ...any) *finding {
	return &finding{checker: checker, at: at, msg: fmt.Sprintf(format, args...)}
}

// checkHistory checks the shape of one agent's final history.
func (c *checker) checkHistory(agentID string, hist []msgJSON) {
	groups := groupMessages(hist)
	f := uniqueMessages(groups)
	if f == nil {
		f = c.checkToolResults(groups)
	}
	if f == nil {
		f = c.checkRuns(groups)
	}
	if f != nil {
		c.report(f.checker, fmt.Sprintf("agent %s: %s", agentID, f.msg),
			"final history:\n"+excerpt(hist, f.at)+"operations:\n"+c.historyOf(agentID, -1))
	}
}

// uniqueMessages: each message id shows once.
func uniqueMessages(groups []*msgGroup) *finding {
	seen := map[string]int{}
	for i, g := range groups {
		if j, dup := seen[g.id]; dup {
			return found("history", g.first, "message %s shows twice in the history, at %d and %d", g.id, groups[j].first, g.first)
		}
		seen[g.id] = i
	}
	return nil
}

// checkToolResults: every tool call of an assistant message has exactly
// one result among the tool messages right after it, and every result
// answers a call of that message.
func (c *checker) checkToolResults(groups []*msgGroup) *finding {
	for i := 0; i < len(groups); i++ {
		g := groups[i]
		switch g.kind() {
		case mtToolReturn:
			return found("history", g.first, "tool result %s (call %s) follows no assistant message", g.id, g.parts[0].ToolCallID)
		case mtAssistant:
			calls := g.calls()
			deferred := g.deferredCalls()
			c.count("tool_calls_paired", len(calls))
			answered := map[string]int{}
			j := i + 1
			for ; j < len(groups) && groups[j].kind() == mtToolReturn; j++ {
				r := groups[j].parts[0]
				if strings.Contains(r.ToolReturn, repairedResult) && !slices.Contains(deferred, r.ToolCallID) {
					// Every built-in tool has its result committed with its
					// call; only a step committed in pieces needs the repair
					// at the next turn. (A custom tool runs after its call
					// commits: a crash meanwhile leaves the call to the
					// repair, and checkTools holds it to the sandbox.)
					return found("history", groups[j].first, "tool call %s of assistant message %s was answered by the repair at a later turn: its result was not committed with it", r.ToolCallID, g.id)
				}
				if !slices.Contains(calls, r.ToolCallID) {
					return found("history", groups[j].first, "tool result %s answers call %s, which assistant message %s did not make (its calls: %v)", r.ID, r.ToolCallID, g.id, calls)
				}
				answered[r.ToolCallID]++
			}
			for _, id := range calls {
				if answered[id] == 0 && j == len(groups) && slices.Contains(deferred, id) {
					// A custom tool's call whose result did not commit,
					// with no turn since to answer it as interrupted.
					continue
				}
				if n := answered[id]; n != 1 {
					return found("history", g.first, "tool call %s of assistant message %s has %d results before the next message", id, g.id, n)
				}
			}
			i = j - 1
		}
	}
	return nil
}

// checkRuns: runs are contiguous, each opened by its user message, and an
// otid opens one turn at most.
func (c *checker) checkRuns(groups []*msgGroup) *finding {
	runAt := map[string]int{}
	otidAt := map[string]int{}
	prev := ""
	for _, g := range groups {
		run := g.runID()
		if t := g.parts[0].MessageType; run == "" && (t == mtSystem || t == mtSummary) {
			continue // a context's system message or summary: of no run
		}
		if run == prev {
			if g.kind() == mtUser {
				return found("history", g.first, "run %s has a second user message %s", run, g.id)
			}
			continue
		}
		if at, dup := runAt[run]; dup {
			return found("history", g.first, "the messages of run %s are not contiguous: it has messages at %d and again at %d", run, at, g.first)
		}
		runAt[run] = g.first
		prev = run
		if g.kind() != mtUser {
			return found("history", g.first, "run %s starts with a %s, not its user message", run, g.parts[0].MessageType)
		}
		otid := g.parts[0].Otid
		if at, dup := otidAt[otid]; dup {
			id := -1
			if first := c.msg.byOtid[otid]; first != nil {
				id = first.ID
			}
			return found("duplicate-turn", g.first, "otid %s (sent by op #%d) is the user message of two turns: at %d and at %d", otid, id, at, g.first)
		}
		otidAt[otid] = g.first
	}
	return nil
}

// sendView is one send (a first attempt and its retries) with what the
// history of its agent holds of it.
type sendView struct {
	first  *opRecord
	hist   []msgJSON
	userAt int            // the part of the history that is its user message; -1 if none
	sigs   map[string]int // every part of the history, by signature
	ids    map[string]bool
	acked  []*opRecord // the attempts answered in full
}

// checkSend checks one message send and its retries against the history
// of its agent.
func (c *checker) checkSend(first *opRecord) {
	hist, ok := c.msg.audit.history(first.Agent)
	if !ok {
		return
	}
	v := &sendView{first: first, hist: hist, userAt: -1, sigs: map[string]int{}, ids: map[string]bool{}}
	for i, m := range hist {
		if v.userAt < 0 && m.MessageType == mtUser && m.Otid == first.Otid {
			v.userAt = i
		}
		v.sigs[m.sig()] = i
		v.ids[m.ID] = true
	}
	possible := false
	for _, op := range append([]*opRecord{first}, first.Retries...) {
		possible = possible || op.Out != failedOutcome
		if op.Out == unknownOutcome {
			c.count("send_attempts_unknown", 1)
		}
		if op.Out == okOutcome && op.Send != nil && op.Send.Done {
			v.acked = append(v.acked, op)
		}
	}
	fail := func(op *opRecord, f *finding) {
		c.report(f.checker, f.msg, c.historyOf(first.Agent, op.ID)+"final history of agent "+first.Agent+":\n"+excerpt(hist, f.at))
	}
	if !possible && v.userAt >= 0 {
		fail(first, found("partial-effect", v.userAt, "message otid %s (op #%d) is in the history of agent %s, but every attempt to send it failed", first.Otid, first.ID, first.Agent))
		return
	}
	c.count("sends", 1)
	if len(v.acked) > 0 {
		c.count("sends_acked", 1)
	}
	if len(v.acked) > 1 {
		c.count("resends_compared", len(v.acked)-1)
	}
	for _, op := range v.acked {
		c.count("stop_"+op.Send.Stop, 1)
		if f := v.checkAnswer(op); f != nil {
			fail(op, f)
			return
		}
	}
	for _, op := range v.acked[min(1, len(v.acked)):] {
		if f := v.checkResend(op); f != nil {
			fail(op, f)
			return
		}
	}
}

// checkAnswer: an acknowledged answer's user message and every message it
// returned are in the history, as returned.
func (v *sendView) checkAnswer(op *opRecord) *finding {
	r, otid := op.Send, v.first.Otid
	if v.userAt < 0 {
		return found("message-lost", len(v.hist)-1, "op #%d sent message otid %s to agent %s and was answered (stop %s), but the message is not in the agent's history", op.ID, otid, v.first.Agent, r.Stop)
	}
	if run := v.hist[v.userAt].RunID; r.RunID != "" && r.RunID != run {
		return found("duplicate-turn", v.userAt, "op #%d (otid %s) was answered with run %s, but its message is in run %s", op.ID, otid, r.RunID, run)
	}
	for i := range r.Msgs {
		m := &r.Msgs[i]
		switch {
		case r.tentative(m):
			if r.clean() && !v.ids[m.ID] {
				return found("message-lost", v.userAt, "op #%d (otid %s) streamed message %s and its turn ended with %s, but the history has no message %s", op.ID, otid, m, r.Stop, m.ID)
			}
		default:
			if _, ok := v.sigs[m.sig()]; !ok {
				return found("message-lost", v.userAt, "op #%d (otid %s) returned message %s, which the history does not have as returned", op.ID, otid, m)
			}
		}
	}
	return nil
}

// checkResend: an answer to a message sent again is the first answer
// again.
func (v *sendView) checkResend(op *opRecord) *finding {
	firstAnswer, again := v.acked[0].Send, op.Send
	if firstAnswer.RunID != "" && again.RunID != "" && firstAnswer.RunID != again.RunID {
		return found("duplicate-turn", v.userAt, "op #%d sent otid %s again and got run %s, but op #%d had got run %s", op.ID, v.first.Otid, again.RunID, v.acked[0].ID, firstAnswer.RunID)
	}
	want, got := committedParts(firstAnswer), committedParts(again)
	if firstAnswer.Tokens || again.Tokens {
		want, got = idsOf(firstAnswer), idsOf(again)
	}
	missing := ""
	for _, s := range want {
		if !slices.Contains(got, s) {
			missing = s
			break
		}
	}
	extra := firstAnswer.clean() && !firstAnswer.Tokens && !again.Tokens && len(got) != len(want)
	if missing == "" && !extra {
		return nil
	}
	note := ""
	if missing != "" {
		note = "; missing " + clipString(missing, 200)
	}
	return found("duplicate-turn", v.userAt, "op #%d sent otid %s again and got %d messages, not the %d of op #%d's answer (stop %s)%s", op.ID, v.first.Otid, len(got), len(want), v.acked[0].ID, firstAnswer.Stop, note)
}

func committedParts(r *sendResp) []string {
	var out []string
	for i := range r.Msgs {
		if !r.tentative(&r.Msgs[i]) {
			out = append(out, r.Msgs[i].sig())
		}
	}
	return out
}

func idsOf(r *sendResp) []string {
	var out []string
	for i := range r.Msgs {
		if m := &r.Msgs[i]; !r.tentative(m) || r.clean() {
			if !slices.Contains(out, m.ID) {
				out = append(out, m.ID)
			}
		}
	}
	return out
}

// checkListing checks a listing made during the run against the final
// history: it must be a contiguous piece of it (its start when it listed
// fewer messages than its limit), and hold every message acknowledged
// before it began if it listed them all.
func (c *checker) checkListing(op *opRecord) {
	hist, ok := c.msg.audit.history(op.Agent)
	if !ok || len(op.RespMsgs) == 0 {
		return
	}
	start, f := listingInHistory(op, hist)
	if f == nil {
		c.count("listings", 1)
		f = c.checkWholeListing(op, hist, start)
	}
	if f != nil {
		c.report(f.checker, f.msg, c.historyOf(op.Agent, op.ID)+"final history of agent "+op.Agent+":\n"+excerpt(hist, f.at))
	}
}

// listingInHistory finds listing op in hist, part for part, and returns
// where it starts.
func listingInHistory(op *opRecord, hist []msgJSON) (int, *finding) {
	listed := op.RespMsgs
	start := slices.IndexFunc(hist, func(m msgJSON) bool { return m.ID == listed[0].ID })
	if start < 0 {
		return 0, found("message-lost", len(hist)-1, "op #%d listed message %s of agent %s, which the final history does not have", op.ID, listed[0].String(), op.Agent)
	}
	for i := range listed {
		if start+i < len(hist) && hist[start+i].sig() == listed[i].sig() {
			continue
		}
		there := "nothing"
		if start+i < len(hist) {
			there = hist[start+i].String()
		}
		return 0, found("history", min(start+i, len(hist)-1), "op #%d listed %s at position %d of its listing, where the final history has %s", op.ID, listed[i].String(), i, there)
	}
	return start, nil
}

// checkWholeListing: a listing of all of an agent's messages, from the
// oldest, starts where the history does and holds every message
// acknowledged before it began.
func (c *checker) checkWholeListing(op *opRecord, hist []msgJSON, start int) *finding {
	whole := strings.Contains(op.Path, "order=asc") && len(groupMessages(op.RespMsgs)) < limitOf(op.Path)
	switch {
	case !whole:
		return nil
	case start != 0:
		return found("history", start, "op #%d listed all of agent %s's messages from %s, but the final history has %d earlier ones", op.ID, op.Agent, op.RespMsgs[0].ID, start)
	}
	return c.listedAcknowledged(op, len(hist)-1)
}

// listedAcknowledged: a listing of all of an agent's messages holds every
// message acknowledged before it began.
func (c *checker) listedAcknowledged(op *opRecord, at int) *finding {
	have := map[string]bool{}
	otids := map[string]bool{}
	for _, m := range op.RespMsgs {
		have[m.sig()] = true
		if m.MessageType == mtUser {
			otids[m.Otid] = true
		}
	}
	for _, first := range c.msg.sends {
		if first.Agent != op.Agent {
			continue
		}
		for _, a := range append([]*opRecord{first}, first.Retries...) {
			if a.Out != okOutcome || a.Send == nil || !a.Send.Done || a.Ret >= op.Call {
				continue
			}
			if !otids[first.Otid] {
				return found("message-lost", at, "op #%d sent otid %s and was answered before op #%d listed the messages of agent %s, which do not have it", a.ID, first.Otid, op.ID, op.Agent)
			}
			for i := range a.Send.Msgs {
				if m := &a.Send.Msgs[i]; !a.Send.tentative(m) && !have[m.sig()] {
					return found("message-lost", at, "op #%d was answered with message %s before op #%d listed the messages of agent %s, which do not have it", a.ID, m, op.ID, op.Agent)
				}
			}
		}
	}
	return nil
}

func limitOf(path string) int {
	_, q, _ := strings.Cut(path, "?")
	for _, param := range strings.Split(q, "&") {
		if v, ok := strings.CutPrefix(param, "limit="); ok {
			n := 0
			fmt.Sscanf(v, "%d", &n)
			return n
		}
	}
	return 100
}

// checkMemory replays, for each block edited by memory tools only, the
// memory tool calls of the one agent that made them on its initial value.
func (c *checker) checkMemory() {
	w := c.w
	w.mu.Lock()
	blocks := append([]string(nil), w.blocks...)
	creates := map[string]*opRecord{}
	for _, b := range blocks {
		creates[b] = w.blockCreatedBy[b]
	}
	w.mu.Unlock()
	for _, b := range blocks {
		read := c.msg.audit.blocks[b]
		if c.msg.opaque[b] || read == nil || read.status != 200 || creates[b] == nil || c.clientWrote(b) {
			continue
		}
		initial, ok := initialValue(creates[b], b)
		edits := c.msg.edits[b]
		agents := map[string]bool{}
		for _, e := range edits {
			agents[e.agent] = true
		}
		if !ok || len(agents) > 1 {
			continue
		}
		if !c.replayMemory(b, read.block, initial, edits) {
			return
		}
	}
}

// initialValue is the value create gave block b.
func initialValue(create *opRecord, b string) (string, bool) {
	if i := slices.Index(create.MemBlocks, b); i >= 0 {
		return create.MemValues[i], true
	}
	if create.Block == b {
		return create.Value, true
	}
	return "", false
}

// replayMemory replays the memory tool calls edits on block b's initial
// value, and compares with the value the audit read; false if it reported
// a violation.
func (c *checker) replayMemory(b string, final blockJSON, initial string, edits []*toolEdit) bool {
	v := initial
	var done []string
	for _, e := range edits {
		next, ok := e.step(v)
		done = append(done, fmt.Sprintf("%q -> %s", clipString(v, 60), e))
		if !ok {
			c.report("memory", fmt.Sprintf("block %s (label %s): the history of agent %s records %s, which cannot come from the block's value %q at that point of the history", b, final.Label, e.agent, e, v),
				"memory tool calls on the block, in history order, from its initial value:\n"+strings.Join(done, "\n")+"\n"+c.historyOf(b, -1))
			return false
		}
		v = next
	}
	c.count("memory_blocks_replayed", 1)
	c.count("memory_edits_replayed", len(edits))
	if v != final.Value {
		c.report("memory", fmt.Sprintf("block %s (label %s) holds %q after the run, but its initial value %q with the %d memory tool calls of the history applied is %q", b, final.Label, final.Value, initial, len(edits), v),
			"memory tool calls on the block, in history order:\n"+strings.Join(done, "\n")+"\n"+c.historyOf(b, -1))
		return false
	}
	return true
}

// clientWrote reports whether a client may have written block b's value or
// deleted it after creating it.
func (c *checker) clientWrote(b string) bool {
	for _, op := range c.ops {
		if op.Kind.traits().writesBlock && op.Block == b && op.Out != failedOutcome {
			return true
		}
	}
	return false
}
