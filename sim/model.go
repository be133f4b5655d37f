package sim

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The linearizability model. Each agent and each block is an object with
// its own history (a partition). An operation that touches several objects
// contributes one model operation to each: a read of an agent with its
// blocks reads the agent (existence, name, attachments) and each block
// (value); deleting a block also detaches it from every agent it may be
// attached to. Checking the projections separately is sound: a linearizable
// history has linearizable projections.

// modelOpKind is what a model operation does.
type modelOpKind int

const (
	// Agent objects.
	agentCreate    modelOpKind = iota // create with name and attachments
	agentRead                         // exists (with name and attachments if known) or not
	agentRename                       // PATCH name
	agentSetBlocks                    // PATCH block_ids
	agentDelete                       // DELETE
	agentAttach                       // attach block
	agentDetach                       // detach block
	agentEditLabel                    // edit an attached block by label
	agentHasBlock                     // get an attached block by label
	agentProbe                        // is block attached (from a block's agent list)
	agentBlockGone                    // the block was deleted: detached everywhere
	// Block objects.
	blockCreate   // create with value
	blockRead     // exists with value, or not
	blockWrite    // set value
	blockDelete   // delete
	blockToolEdit // a memory tool call of an agent's turn, with its result
)

var modelOpNames = map[modelOpKind]string{
	agentCreate: "create", agentRead: "read", agentRename: "rename", agentSetBlocks: "set-blocks", agentDelete: "delete",
	agentAttach: "attach", agentDetach: "detach", agentEditLabel: "edit-by-label", agentHasBlock: "has-block", agentProbe: "probe",
	agentBlockGone: "block-deleted", blockCreate: "create", blockRead: "read", blockWrite: "write", blockDelete: "delete",
	blockToolEdit: "tool-edit",
}

// modelResult is the result of a model operation.
type modelResult int

const (
	resultOK          modelResult = iota // acknowledged
	resultUnknown                        // may or may not have happened
	resultAbsent                         // the object (agent, or block for block objects) was not found
	resultNoBlock                        // on an agent: the named block does not exist
	resultNotAttached                    // on an agent: the named block is not attached
)

// modelOp is one model operation on one object.
type modelOp struct {
	op        *opRecord
	object    string // "agent <id>" or "block <id>"
	kind      modelOpKind
	result    modelResult
	call, ret int64

	name        string // agentCreate/agentRename: name written; reads: name seen ("" unknown)
	attached    string // agentCreate/agentSetBlocks: attachments written; reads: seen (hasAttached)
	hasAttached bool
	block       string // the block an agent operation names
	present     bool   // agentRead/agentProbe/blockRead: seen present
	value       string // blockCreate/blockWrite: written; blockRead: seen
	// Responses of acknowledged agent writes: the state after.
	respName     string
	respAttached string
	hasResp      bool
	// anyValue: a blockRead that saw the block but whose value the model
	// cannot know (written by a memory tool of a turn whose history is
	// gone).
	anyValue bool
	// edit is a blockToolEdit's call and result.
	edit *toolEdit
}

func (m *modelOp) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", modelOpNames[m.kind])
	if m.block != "" {
		fmt.Fprintf(&b, " %s", m.block)
	}
	if m.name != "" {
		fmt.Fprintf(&b, " name=%s", m.name)
	}
	if m.value != "" {
		fmt.Fprintf(&b, " value=%q", m.value)
	}
	if m.anyValue {
		b.WriteString(" (any value)")
	}
	if m.edit != nil {
		fmt.Fprintf(&b, " %s", m.edit)
	}
	if m.hasAttached {
		fmt.Fprintf(&b, " att=[%s]", m.attached)
	}
	b.WriteString(m.resultString())
	return b.String()
}

func (m *modelOp) resultString() string {
	switch m.result {
	case resultOK:
		switch {
		case m.kind != agentRead && m.kind != blockRead && m.kind != agentProbe:
			return " -> ok"
		case m.present:
			return " -> present"
		}
		return " -> absent"
	case resultUnknown:
		return " -> unknown"
	case resultAbsent:
		return " -> not found"
	case resultNoBlock:
		return " -> block not found"
	case resultNotAttached:
		return " -> not attached"
	}
	return ""
}

// agentState is an agent object's state; attached is its sorted attached
// block ids, joined by commas.
type agentState struct {
	exists, gone   bool
	name, attached string
}

type blockState struct {
	exists, gone bool
	value        string
}

func joinIDs(ids []string) string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	return strings.Join(ids, ",")
}

func splitIDs(joined string) []string {
	if joined == "" {
		return nil
	}
	return strings.Split(joined, ",")
}

func hasID(joined, id string) bool { return slices.Contains(splitIDs(joined), id) }

func addID(joined, id string) string { return joinIDs(append(splitIDs(joined), id)) }

func removeID(joined, id string) string {
	ids := splitIDs(joined)
	ids = slices.DeleteFunc(ids, func(x string) bool { return x == id })
	return strings.Join(ids, ",")
}

// maybe is the set of states after an operation that may or may not have
// happened.
func maybe(s, next any, possible bool) []any {
	if !possible || s == next {
		return []any{s}
	}
	return []any{s, next}
}

// keepIf is the set of states after a read: s if the read can be of s,
// else none.
func keepIf(s any, cond bool) []any {
	if cond {
		return []any{s}
	}
	return nil
}

func stepAgent(s agentState, m *modelOp) []any {
	// Results every agent operation shares.
	switch m.result {
	case resultAbsent:
		return keepIf(s, !s.exists)
	case resultNoBlock, resultNotAttached:
		return keepIf(s, s.exists && !hasID(s.attached, m.block))
	}
	switch m.kind {
	case agentRead:
		if !m.present {
			return keepIf(s, !s.exists)
		}
		return keepIf(s, s.exists && (m.name == "" || m.name == s.name) && (!m.hasAttached || m.attached == s.attached))
	case agentHasBlock:
		return keepIf(s, s.exists && hasID(s.attached, m.block))
	case agentProbe:
		if m.present {
			return keepIf(s, s.exists && hasID(s.attached, m.block) && (m.name == "" || m.name == s.name))
		}
		return keepIf(s, !s.exists || !hasID(s.attached, m.block))
	case agentEditLabel:
		// The block's value is its own object's; here it only tells
		// that the block was attached.
		if m.result == resultUnknown {
			return []any{s}
		}
		return keepIf(s, s.exists && hasID(s.attached, m.block))
	}
	next, applies, mayApply := agentWrite(s, m)
	if m.result == resultUnknown {
		return maybe(s, next, mayApply)
	}
	if !applies || m.hasResp && (next.name != m.respName || next.attached != m.respAttached) {
		return nil
	}
	return []any{next}
}

// agentWrite is the state write m makes of s, whether an acknowledged m
// can apply to s, and whether one of unknown outcome can.
func agentWrite(s agentState, m *modelOp) (next agentState, applies, mayApply bool) {
	next = s
	switch m.kind {
	case agentCreate:
		possible := !s.exists && !s.gone
		return agentState{exists: true, name: m.name, attached: m.attached}, possible, possible
	case agentRename:
		next.name = m.name
		return next, s.exists, s.exists
	case agentSetBlocks:
		next.attached = m.attached
		return next, s.exists, s.exists
	case agentDelete:
		return agentState{gone: true}, s.exists, s.exists
	case agentAttach:
		next.attached = addID(s.attached, m.block)
		return next, s.exists, s.exists
	case agentDetach:
		next.attached = removeID(s.attached, m.block)
		return next, s.exists && hasID(s.attached, m.block), s.exists
	case agentBlockGone:
		next.attached = removeID(s.attached, m.block)
		return next, true, true
	}
	panic(fmt.Sprintf("sim: agent model: operation %d", m.kind))
}

func stepBlock(s blockState, m *modelOp) []any {
	if m.result == resultAbsent {
		return keepIf(s, !s.exists)
	}
	switch m.kind {
	case blockCreate:
		next := blockState{exists: true, value: m.value}
		if m.result == resultUnknown {
			return maybe(s, next, !s.exists && !s.gone)
		}
		if s.exists || s.gone {
			return nil
		}
		return []any{next}
	case blockRead:
		if !m.present {
			return keepIf(s, !s.exists)
		}
		return keepIf(s, s.exists && (m.anyValue || s.value == m.value))
	case blockToolEdit:
		// A call that named no attached block or had unusable arguments
		// did nothing; one that succeeded found the block and changed it
		// as the tool does; one that failed on the value left it.
		if !s.exists {
			return keepIf(s, m.edit.noEffect())
		}
		next := s
		v, ok := m.edit.step(s.value)
		if !ok {
			return nil
		}
		next.value = v
		return []any{next}
	case blockWrite:
		next := s
		next.value = m.value
		if m.result == resultUnknown {
			return maybe(s, next, s.exists)
		}
		if !s.exists {
			return nil
		}
		return []any{next}
	case blockDelete:
		next := blockState{gone: true}
		if m.result == resultUnknown {
			return maybe(s, next, s.exists)
		}
		if !s.exists {
			return nil
		}
		return []any{next}
	}
	panic(fmt.Sprintf("sim: block model: operation %d", m.kind))
}

// objectModel is the porcupine model of one object's history.
var objectModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{nil} },
	Step: func(state, input, _ any) []any {
		m := input.(*modelOp)
		if strings.HasPrefix(m.object, "agent ") {
			s, _ := state.(agentState)
			return stepAgent(s, m)
		}
		s, _ := state.(blockState)
		return stepBlock(s, m)
	},
	Equal: func(a, b any) bool { return a == b },
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		fmt.Fprintf(h, "%v", state)
		return h.Sum64()
	},
	DescribeOperation: func(input, _ any) string { return input.(*modelOp).String() },
	DescribeState:     func(state any) string { return fmt.Sprintf("%+v", state) },
}

var linearModel = objectModel.ToModel()

// checkLinearizable checks one object's history.
func checkLinearizable(modelOps []*modelOp) bool {
	ops := make([]porcupine.Operation, len(modelOps))
	for i, m := range modelOps {
		ops[i] = porcupine.Operation{ClientId: m.op.Client, Input: m, Call: m.call, Return: m.ret}
	}
	return porcupine.CheckOperations(linearModel, ops)
}

// minimize drops reads from an illegal history while it stays illegal,
// leaving a short history that still shows the violation. Writes stay: a
// history without one of its writes is not a history that happened.
func minimize(modelOps []*modelOp) []*modelOp {
	out := slices.Clone(modelOps)
	for i := len(out) - 1; i >= 0; i-- {
		if !isRead(out[i]) {
			continue
		}
		try := slices.Delete(slices.Clone(out), i, i+1)
		if !checkLinearizable(try) {
			out = try
		}
	}
	return out
}

func isRead(m *modelOp) bool {
	switch m.kind {
	case agentRead, agentHasBlock, agentProbe, blockRead:
		return true
	}
	return m.result == resultAbsent || m.result == resultNoBlock || m.result == resultNotAttached
}
