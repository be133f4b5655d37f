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

func (c *checker) prepareMessages(w *world, a *audit) {
	ms := &msgState{audit: a, byOtid: map[string]*opRecord{}, edits: map[string][]*toolEdit{},
		opaque: map[string]bool{}, runOtid: map[string]string{}}
	c.msg = ms
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
		switch op.Kind {
		case kCreateAgent:
			root := op
			if op.Root != nil {
				root = op.Root
			}
			relate(root.Agent, root.MemBlocks...)
			relate(root.Agent, root.IDs...)
		case kSetBlocks:
			relate(op.Agent, op.IDs...)
		case kAttach:
			relate(op.Agent, op.Block)
		case kSendMessage:
			if op.Out != failedOutcome {
				mayEdit[op.Agent] = true
			}
			if op.Root == nil {
				ms.sends = append(ms.sends, op)
				ms.byOtid[op.Otid] = op
			}
		}
	}
	for _, b := range sortedKeys(editors) {
		for _, agentID := range sortedKeys(editors[b]) {
			if _, ok := a.history(agentID); mayEdit[agentID] && !ok {
				ms.opaque[b] = true
			}
		}
	}
	c.count("blocks_opaque", len(ms.opaque))
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, agentID := range w.agents {
		hist, ok := a.history(agentID)
		if !ok {
			continue
		}
		c.count("histories", 1)
		c.count("history_parts", len(hist))
		for _, m := range hist {
			if m.MessageType == mtUser && m.RunID != "" {
				ms.runOtid[m.RunID] = m.Otid
			}
		}
		for _, e := range toolEdits(agentID, hist) {
			if b := w.labelBlock[e.label]; b != "" {
				ms.edits[b] = append(ms.edits[b], e)
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
func (c *checker) addToolEdits(blockKnown func(string) bool) {
	for _, b := range sortedKeys(c.msg.edits) {
		if c.msg.opaque[b] || !blockKnown(b) {
			continue
		}
		for _, e := range c.msg.edits[b] {
			op, call, ret := c.window(e.run)
			if op == nil {
				op = &opRecord{ID: -1, Client: -1, Kind: "turn", Method: "TURN", Path: e.run}
			}
			c.objs[blockObj(b)] = append(c.objs[blockObj(b)], &mop{op: op, obj: blockObj(b), kind: bToolEdit, res: rOK, call: call, ret: ret, edit: e})
			c.count("tool_edits_modelled", 1)
		}
	}
}

// addAudit adds the audit's reads: at the end, each agent and block exists
// with the value read, or not.
func (c *checker) addAudit(w *world) {
	a := c.msg.audit
	if a == nil {
		return
	}
	op := &opRecord{ID: -1, Client: -1, Kind: "audit", Method: "GET", Path: "(the audit after the run)", Call: a.call, Ret: a.ret, Status: 200}
	known := func(id string) bool { _, ok := w.blockCreate[id]; return ok }
	for _, id := range sortedKeys(a.agents) {
		switch a.agents[id].status {
		case 200:
			c.add(op, agentObj(id), mop{kind: aRead, present: true})
		case 404:
			c.add(op, agentObj(id), mop{kind: aRead, present: false})
		}
	}
	for _, id := range sortedKeys(a.blocks) {
		switch ba := a.blocks[id]; ba.status {
		case 200:
			c.readBlock(op, ba.block, known)
		case 404:
			c.add(op, blockObj(id), mop{kind: bRead, present: false})
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

func (c *checker) checkMessages(w *world) {
	a := c.msg.audit
	if a == nil {
		return
	}
	w.mu.Lock()
	agents := append([]string(nil), w.agents...)
	w.mu.Unlock()
	for _, agentID := range agents {
		if hist, ok := a.history(agentID); ok {
			c.checkHistory(agentID, hist)
		}
	}
	for _, first := range c.msg.sends {
		c.checkSend(first)
	}
	for _, op := range c.ops {
		if op.Kind == kListMessages && op.Out == okOutcome && op.RespMsgs != nil {
			c.checkListing(op)
		}
	}
	c.checkMemory(w)
}

// checkHistory checks the shape of one agent's final history.
func (c *checker) checkHistory(agentID string, hist []msgJSON) {
	groups := groupMessages(hist)
	fail := func(checker string, at int, format string, args ...any) {
		c.report(checker, fmt.Sprintf("agent %s: ", agentID)+fmt.Sprintf(format, args...),
			"final history:\n"+excerpt(hist, at)+"operations:\n"+c.historyOf(agentID, -1))
	}
	seen := map[string]int{}
	for i, g := range groups {
		if j, dup := seen[g.id]; dup {
			fail("history", g.first, "message %s shows twice in the history, at %d and %d", g.id, groups[j].first, g.first)
			return
		}
		seen[g.id] = i
	}
	// Tool calls and their results.
	for i := 0; i < len(groups); i++ {
		g := groups[i]
		switch g.kind() {
		case mtToolReturn:
			fail("history", g.first, "tool result %s (call %s) follows no assistant message", g.id, g.parts[0].ToolCallID)
			return
		case mtAssistant:
			calls := g.calls()
			c.count("tool_calls_paired", len(calls))
			answered := map[string]int{}
			j := i + 1
			for ; j < len(groups) && groups[j].kind() == mtToolReturn; j++ {
				r := groups[j].parts[0]
				if strings.Contains(r.ToolReturn, repairedResult) {
					// Every tool the server runs has its result committed
					// with its call; only a step committed in pieces needs
					// the repair at the next turn.
					fail("history", groups[j].first, "tool call %s of assistant message %s was answered by the repair at a later turn: its result was not committed with it", r.ToolCallID, g.id)
					return
				}
				if !slices.Contains(calls, r.ToolCallID) {
					fail("history", groups[j].first, "tool result %s answers call %s, which assistant message %s did not make (its calls: %v)", r.ID, r.ToolCallID, g.id, calls)
					return
				}
				answered[r.ToolCallID]++
			}
			for _, id := range calls {
				if n := answered[id]; n != 1 {
					fail("history", g.first, "tool call %s of assistant message %s has %d results before the next message", id, g.id, n)
					return
				}
			}
			i = j - 1
		}
	}
	// Runs: contiguous, each opened by its user message, and one turn per
	// otid.
	runAt := map[string]int{}
	otidAt := map[string]int{}
	prev := ""
	for _, g := range groups {
		run := g.runID()
		if run == prev {
			if g.kind() == mtUser {
				fail("history", g.first, "run %s has a second user message %s", run, g.id)
				return
			}
			continue
		}
		if at, dup := runAt[run]; dup {
			fail("history", g.first, "the messages of run %s are not contiguous: it has messages at %d and again at %d", run, at, g.first)
			return
		}
		runAt[run] = g.first
		prev = run
		if g.kind() != mtUser {
			fail("history", g.first, "run %s starts with a %s, not its user message", run, g.parts[0].MessageType)
			return
		}
		otid := g.parts[0].Otid
		if at, dup := otidAt[otid]; dup {
			first := c.msg.byOtid[otid]
			id := -1
			if first != nil {
				id = first.ID
			}
			fail("duplicate-turn", g.first, "otid %s (sent by op #%d) is the user message of two turns: at %d and at %d", otid, id, at, g.first)
			return
		}
		otidAt[otid] = g.first
	}
}

// checkSend checks one message send and its retries against the history
// of its agent.
func (c *checker) checkSend(first *opRecord) {
	hist, ok := c.msg.audit.history(first.Agent)
	if !ok {
		return
	}
	attempts := append([]*opRecord{first}, first.Retries...)
	fail := func(checker string, op *opRecord, at int, format string, args ...any) {
		c.report(checker, fmt.Sprintf(format, args...),
			c.historyOf(first.Agent, op.ID)+"final history of agent "+first.Agent+":\n"+excerpt(hist, at))
	}
	userAt := -1
	for i, m := range hist {
		if m.MessageType == mtUser && m.Otid == first.Otid {
			userAt = i
			break
		}
	}
	sigs := map[string]int{}
	ids := map[string]bool{}
	for i, m := range hist {
		sigs[m.sig()] = i
		ids[m.ID] = true
	}
	var acked []*opRecord
	possible := false
	for _, op := range attempts {
		if op.Out != failedOutcome {
			possible = true
		}
		if op.Out == unknownOutcome {
			c.count("send_attempts_unknown", 1)
		}
		if op.Out == okOutcome && op.Send != nil && op.Send.Done {
			acked = append(acked, op)
		}
	}
	if !possible && userAt >= 0 {
		fail("partial-effect", first, userAt, "message otid %s (op #%d) is in the history of agent %s, but every attempt to send it failed", first.Otid, first.ID, first.Agent)
		return
	}
	c.count("sends", 1)
	if len(acked) > 0 {
		c.count("sends_acked", 1)
	}
	if len(acked) > 1 {
		c.count("resends_compared", len(acked)-1)
	}
	for _, op := range acked {
		r := op.Send
		c.count("stop_"+r.Stop, 1)
		if userAt < 0 {
			fail("message-lost", op, len(hist)-1, "op #%d sent message otid %s to agent %s and was answered (stop %s), but the message is not in the agent's history", op.ID, first.Otid, first.Agent, r.Stop)
			return
		}
		if run := hist[userAt].RunID; r.RunID != "" && r.RunID != run {
			fail("duplicate-turn", op, userAt, "op #%d (otid %s) was answered with run %s, but its message is in run %s", op.ID, first.Otid, r.RunID, run)
			return
		}
		for i := range r.Msgs {
			m := &r.Msgs[i]
			switch {
			case r.tentative(m):
				if r.clean() && !ids[m.ID] {
					fail("message-lost", op, userAt, "op #%d (otid %s) streamed message %s and its turn ended with %s, but the history has no message %s", op.ID, first.Otid, m, r.Stop, m.ID)
					return
				}
			default:
				if _, ok := sigs[m.sig()]; !ok {
					fail("message-lost", op, userAt, "op #%d (otid %s) returned message %s, which the history does not have as returned", op.ID, first.Otid, m)
					return
				}
			}
		}
	}
	// An answer to a message sent again is the first answer again.
	for k := 1; k < len(acked); k++ {
		r1, rk := acked[0].Send, acked[k].Send
		if r1.RunID != "" && rk.RunID != "" && r1.RunID != rk.RunID {
			fail("duplicate-turn", acked[k], userAt, "op #%d sent otid %s again and got run %s, but op #%d had got run %s", acked[k].ID, first.Otid, rk.RunID, acked[0].ID, r1.RunID)
			return
		}
		want := committedParts(r1)
		got := committedParts(rk)
		if r1.Tokens || rk.Tokens {
			want, got = idsOf(r1), idsOf(rk)
		}
		missing := ""
		for _, s := range want {
			if !slices.Contains(got, s) {
				missing = s
				break
			}
		}
		extra := r1.clean() && !r1.Tokens && !rk.Tokens && len(got) != len(want)
		if missing != "" || extra {
			fail("duplicate-turn", acked[k], userAt, "op #%d sent otid %s again and got %d messages, not the %d of op #%d's answer (stop %s)%s", acked[k].ID, first.Otid, len(got), len(want), acked[0].ID, r1.Stop,
				map[bool]string{true: "; missing " + clipString(missing, 200), false: ""}[missing != ""])
			return
		}
	}
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
	if !ok {
		return
	}
	fail := func(checker string, at int, format string, args ...any) {
		c.report(checker, fmt.Sprintf(format, args...),
			c.historyOf(op.Agent, op.ID)+"final history of agent "+op.Agent+":\n"+excerpt(hist, at))
	}
	lst := op.RespMsgs
	if len(lst) == 0 {
		return
	}
	start := -1
	for i, m := range hist {
		if m.ID == lst[0].ID {
			start = i
			break
		}
	}
	if start < 0 {
		fail("message-lost", len(hist)-1, "op #%d listed message %s of agent %s, which the final history does not have", op.ID, lst[0].String(), op.Agent)
		return
	}
	for i := range lst {
		if start+i >= len(hist) || hist[start+i].sig() != lst[i].sig() {
			at := min(start+i, len(hist)-1)
			fail("history", at, "op #%d listed %s at position %d of its listing, where the final history has %s", op.ID, lst[i].String(), i, func() string {
				if start+i < len(hist) {
					return hist[start+i].String()
				}
				return "nothing"
			}())
			return
		}
	}
	c.count("listings", 1)
	asc := strings.Contains(op.Path, "order=asc")
	whole := asc && len(groupMessages(lst)) < limitOf(op.Path)
	if whole && start != 0 {
		fail("history", start, "op #%d listed all of agent %s's messages from %s, but the final history has %d earlier ones", op.ID, op.Agent, lst[0].ID, start)
		return
	}
	if !whole {
		return
	}
	// Every message acknowledged before the listing began is in it.
	have := map[string]bool{}
	for _, m := range lst {
		have[m.sig()] = true
	}
	for _, first := range c.msg.sends {
		if first.Agent != op.Agent {
			continue
		}
		for _, a := range append([]*opRecord{first}, first.Retries...) {
			if a.Out != okOutcome || a.Send == nil || !a.Send.Done || a.Ret >= op.Call {
				continue
			}
			found := false
			for _, m := range lst {
				if m.MessageType == mtUser && m.Otid == first.Otid {
					found = true
				}
			}
			if !found {
				fail("message-lost", len(hist)-1, "op #%d sent otid %s and was answered before op #%d listed the messages of agent %s, which do not have it", a.ID, first.Otid, op.ID, op.Agent)
				return
			}
			for i := range a.Send.Msgs {
				if m := &a.Send.Msgs[i]; !a.Send.tentative(m) && !have[m.sig()] {
					fail("message-lost", len(hist)-1, "op #%d was answered with message %s before op #%d listed the messages of agent %s, which do not have it", a.ID, m, op.ID, op.Agent)
					return
				}
			}
		}
	}
}

func limitOf(path string) int {
	_, q, _ := strings.Cut(path, "?")
	for _, kv := range strings.Split(q, "&") {
		if v, ok := strings.CutPrefix(kv, "limit="); ok {
			n := 0
			fmt.Sscanf(v, "%d", &n)
			return n
		}
	}
	return 100
}

// checkMemory replays, for each block edited by memory tools only, the
// memory tool calls of the one agent that made them on its initial value.
func (c *checker) checkMemory(w *world) {
	a := c.msg.audit
	w.mu.Lock()
	blocks := append([]string(nil), w.blocks...)
	creates := map[string]*opRecord{}
	for _, b := range blocks {
		creates[b] = w.blockCreate[b]
	}
	w.mu.Unlock()
	for _, b := range blocks {
		ba := a.blocks[b]
		create := creates[b]
		if c.msg.opaque[b] || ba == nil || ba.status != 200 || create == nil {
			continue
		}
		initial, ok := "", false
		switch create.Kind {
		case kCreateBlock:
			initial, ok = create.Value, true
		case kCreateAgent:
			if i := slices.Index(create.MemBlocks, b); i >= 0 {
				initial, ok = create.MemValues[i], true
			}
		}
		if !ok || c.clientWrote(b) {
			continue
		}
		edits := c.msg.edits[b]
		agents := map[string]bool{}
		for _, e := range edits {
			agents[e.agent] = true
		}
		if len(agents) > 1 {
			continue
		}
		v := initial
		var done []string
		for _, e := range edits {
			next, ok := e.step(v)
			done = append(done, fmt.Sprintf("%q -> %s", clipString(v, 60), e))
			if !ok {
				c.report("memory", fmt.Sprintf("block %s (label %s): the history of agent %s records %s, which cannot come from the block's value %q at that point of the history", b, ba.block.Label, e.agent, e, v),
					"memory tool calls on the block, in history order, from its initial value:\n"+strings.Join(done, "\n")+"\n"+c.historyOf(b, -1))
				return
			}
			v = next
		}
		c.count("memory_blocks_replayed", 1)
		c.count("memory_edits_replayed", len(edits))
		if v != ba.block.Value {
			c.report("memory", fmt.Sprintf("block %s (label %s) holds %q after the run, but its initial value %q with the %d memory tool calls of the history applied is %q", b, ba.block.Label, ba.block.Value, initial, len(edits), v),
				"memory tool calls on the block, in history order:\n"+strings.Join(done, "\n")+"\n"+c.historyOf(b, -1))
			return
		}
	}
}

// clientWrote reports whether a client may have written block b's value or
// deleted it after creating it.
func (c *checker) clientWrote(b string) bool {
	for _, op := range c.ops {
		switch op.Kind {
		case kUpdateBlock, kUpdateAgentBlock, kDeleteBlock:
			if op.Block == b && op.Out != failedOutcome {
				return true
			}
		}
	}
	return false
}
