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

// mopKind is a model operation.
type mopKind int

const (
	// Agent objects.
	aCreate     mopKind = iota // create with name and attachments
	aRead                      // exists (with name and attachments if known) or not
	aUpdateName                // PATCH name
	aSetBlocks                 // PATCH block_ids
	aDelete                    // DELETE
	aAttach                    // attach block
	aDetach                    // detach block
	aEditLabel                 // edit an attached block by label
	aHasBlock                  // get an attached block by label
	aProbe                     // is block attached (from a block's agent list)
	aBlockGone                 // the block was deleted: detached everywhere
	// Block objects.
	bCreate   // create with value
	bRead     // exists with value, or not
	bWrite    // set value
	bDelete   // delete
	bToolEdit // a memory tool call of an agent's turn, with its result
)

var mopNames = map[mopKind]string{
	aCreate: "create", aRead: "read", aUpdateName: "rename", aSetBlocks: "set-blocks", aDelete: "delete",
	aAttach: "attach", aDetach: "detach", aEditLabel: "edit-by-label", aHasBlock: "has-block", aProbe: "probe",
	aBlockGone: "block-deleted", bCreate: "create", bRead: "read", bWrite: "write", bDelete: "delete",
	bToolEdit: "tool-edit",
}

// result of a model operation.
type mres int

const (
	rOK          mres = iota // acknowledged
	rUnknown                 // may or may not have happened
	rAbsent                  // the object (agent, or block for block objects) was not found
	rNoBlock                 // on an agent: the named block does not exist
	rNotAttached             // on an agent: the named block is not attached
)

// mop is one model operation on one object.
type mop struct {
	op        *opRecord
	obj       string // "agent <id>" or "block <id>"
	kind      mopKind
	res       mres
	call, ret int64

	name    string // aCreate/aUpdateName: name written; reads: name seen ("" unknown)
	att     string // aCreate/aSetBlocks: attachments written; reads: seen (hasAtt)
	hasAtt  bool
	block   string // the block an agent operation names
	present bool   // aRead/aProbe/bRead: seen present
	value   string // bCreate/bWrite: written; bRead: seen
	// Responses of acknowledged agent writes: the state after.
	respName string
	respAtt  string
	hasResp  bool
	// anyValue: a bRead that saw the block but whose value the model
	// cannot know (written by a memory tool of a turn whose history is
	// gone).
	anyValue bool
	// edit is a bToolEdit's call and result.
	edit *toolEdit
}

func (m *mop) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", mopNames[m.kind])
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
	if m.hasAtt {
		fmt.Fprintf(&b, " att=[%s]", m.att)
	}
	switch m.res {
	case rOK:
		if m.kind == aRead || m.kind == bRead || m.kind == aProbe {
			if m.present {
				b.WriteString(" -> present")
			} else {
				b.WriteString(" -> absent")
			}
		} else {
			b.WriteString(" -> ok")
		}
	case rUnknown:
		b.WriteString(" -> unknown")
	case rAbsent:
		b.WriteString(" -> not found")
	case rNoBlock:
		b.WriteString(" -> block not found")
	case rNotAttached:
		b.WriteString(" -> not attached")
	}
	return b.String()
}

// agentState is an agent object's state; att is its sorted attached block
// ids, joined by commas.
type agentState struct {
	exists, gone bool
	name, att    string
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

func splitIDs(att string) []string {
	if att == "" {
		return nil
	}
	return strings.Split(att, ",")
}

func attHas(att, id string) bool { return slices.Contains(splitIDs(att), id) }

func attAdd(att, id string) string { return joinIDs(append(splitIDs(att), id)) }

func attRemove(att, id string) string {
	ids := splitIDs(att)
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

func stepAgent(s agentState, m *mop) []any {
	ok := func(cond bool, next agentState) []any {
		if !cond {
			return nil
		}
		if m.hasResp && (next.name != m.respName || next.att != m.respAtt) {
			return nil
		}
		return []any{next}
	}
	keep := func(cond bool) []any {
		if cond {
			return []any{s}
		}
		return nil
	}
	// Results every agent operation shares.
	switch m.res {
	case rAbsent:
		return keep(!s.exists)
	case rNoBlock, rNotAttached:
		return keep(s.exists && !attHas(s.att, m.block))
	}
	switch m.kind {
	case aCreate:
		next := agentState{exists: true, name: m.name, att: m.att}
		if m.res == rUnknown {
			return maybe(s, next, !s.exists && !s.gone)
		}
		return ok(!s.exists && !s.gone, next)
	case aRead:
		if !m.present {
			return keep(!s.exists)
		}
		return keep(s.exists && (m.name == "" || m.name == s.name) && (!m.hasAtt || m.att == s.att))
	case aHasBlock:
		return keep(s.exists && attHas(s.att, m.block))
	case aProbe:
		if m.present {
			return keep(s.exists && attHas(s.att, m.block) && (m.name == "" || m.name == s.name))
		}
		return keep(!s.exists || !attHas(s.att, m.block))
	case aUpdateName:
		next := s
		next.name = m.name
		if m.res == rUnknown {
			return maybe(s, next, s.exists)
		}
		return ok(s.exists, next)
	case aSetBlocks:
		next := s
		next.att = m.att
		if m.res == rUnknown {
			return maybe(s, next, s.exists)
		}
		return ok(s.exists, next)
	case aDelete:
		next := agentState{gone: true}
		if m.res == rUnknown {
			return maybe(s, next, s.exists)
		}
		return ok(s.exists, next)
	case aAttach:
		next := s
		next.att = attAdd(s.att, m.block)
		if m.res == rUnknown {
			return maybe(s, next, s.exists)
		}
		return ok(s.exists, next)
	case aDetach:
		next := s
		next.att = attRemove(s.att, m.block)
		if m.res == rUnknown {
			return maybe(s, next, s.exists)
		}
		return ok(s.exists && attHas(s.att, m.block), next)
	case aEditLabel:
		if m.res == rUnknown {
			return []any{s}
		}
		return keep(s.exists && attHas(s.att, m.block))
	case aBlockGone:
		next := s
		next.att = attRemove(s.att, m.block)
		if m.res == rUnknown {
			return maybe(s, next, true)
		}
		return []any{next}
	}
	panic(fmt.Sprintf("sim: agent model: operation %d", m.kind))
}

func stepBlock(s blockState, m *mop) []any {
	keep := func(cond bool) []any {
		if cond {
			return []any{s}
		}
		return nil
	}
	if m.res == rAbsent {
		return keep(!s.exists)
	}
	switch m.kind {
	case bCreate:
		next := blockState{exists: true, value: m.value}
		if m.res == rUnknown {
			return maybe(s, next, !s.exists && !s.gone)
		}
		if s.exists || s.gone {
			return nil
		}
		return []any{next}
	case bRead:
		if !m.present {
			return keep(!s.exists)
		}
		return keep(s.exists && (m.anyValue || s.value == m.value))
	case bToolEdit:
		// A call that named no attached block or had unusable arguments
		// did nothing; one that succeeded found the block and changed it
		// as the tool does; one that failed on the value left it.
		if !s.exists {
			return keep(m.edit.noEffect())
		}
		next := s
		v, ok := m.edit.step(s.value)
		if !ok {
			return nil
		}
		next.value = v
		return []any{next}
	case bWrite:
		next := s
		next.value = m.value
		if m.res == rUnknown {
			return maybe(s, next, s.exists)
		}
		if !s.exists {
			return nil
		}
		return []any{next}
	case bDelete:
		next := blockState{gone: true}
		if m.res == rUnknown {
			return maybe(s, next, s.exists)
		}
		if !s.exists {
			return nil
		}
		return []any{next}
	}
	panic(fmt.Sprintf("sim: block model: operation %d", m.kind))
}

// model is the porcupine model of one object's history.
var model = porcupine.NondeterministicModel{
	Init: func() []any { return []any{nil} },
	Step: func(state, input, _ any) []any {
		m := input.(*mop)
		if strings.HasPrefix(m.obj, "agent ") {
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
	DescribeOperation: func(input, _ any) string { return input.(*mop).String() },
	DescribeState:     func(state any) string { return fmt.Sprintf("%+v", state) },
}

var linearModel = model.ToModel()

// checkLinearizable checks one object's history.
func checkLinearizable(mops []*mop) bool {
	ops := make([]porcupine.Operation, len(mops))
	for i, m := range mops {
		ops[i] = porcupine.Operation{ClientId: m.op.Client, Input: m, Call: m.call, Return: m.ret}
	}
	return porcupine.CheckOperations(linearModel, ops)
}

// minimize drops reads from an illegal history while it stays illegal,
// leaving a short history that still shows the violation. Writes stay: a
// history without one of its writes is not a history that happened.
func minimize(mops []*mop) []*mop {
	out := slices.Clone(mops)
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

func isRead(m *mop) bool {
	switch m.kind {
	case aRead, aHasBlock, aProbe, bRead:
		return true
	}
	return m.res == rAbsent || m.res == rNoBlock || m.res == rNotAttached
}
