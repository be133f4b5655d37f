package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// operation is one operation of the agent actor: it runs in the actor's
// transaction (call.Txn) on the agent's record, which exists, and returns
// its JSON result.
type operation func(c *core, call *actor.Call, a *schema.Agent) ([]byte, error)

// op makes an operation from a function of its decoded payload.
func op[P any](fn func(c *core, call *actor.Call, a *schema.Agent, p P) ([]byte, error)) operation {
	return func(c *core, call *actor.Call, a *schema.Agent) ([]byte, error) {
		p, err := decodePayload[P](call)
		if err != nil {
			return nil, err
		}
		return fn(c, call, a, p)
	}
}

// decodePayload decodes an invocation's JSON payload, or takes the value
// it encodes if the caller gave it (actor.WithLocal).
func decodePayload[P any](call *actor.Call) (P, error) {
	if p, ok := call.Local.(P); ok {
		return p, nil
	}
	var p P
	if err := schema.Decode(call.Payload, &p); err != nil {
		return p, fmt.Errorf("%s payload: %w", call.Op, err)
	}
	return p, nil
}

// turnOp adapts an operation of the agent loop.
func turnOp[P any](fn func(call *actor.Call, a *schema.Agent, p P) ([]byte, error)) operation {
	return op(func(_ *core, call *actor.Call, a *schema.Agent, p P) ([]byte, error) { return fn(call, a, p) })
}

// Operations of the agent actor, by name. Creating an agent is apart:
// it is the one operation on an agent that does not exist.
const (
	opCreateAgent        = "create"
	opUpdateAgent        = "update"
	opDeleteAgent        = "delete"
	opAttachBlock        = "attach_block"
	opDetachBlock        = "detach_block"
	opCreateConversation = "create_conversation"
	opUpdateConversation = "update_conversation"
	opInsertPassage      = "insert_passage"
	opDeletePassage      = "delete_passage"
	opAttachTool         = "attach_tool"
	opDetachTool         = "detach_tool"
	opSetToolApproval    = "set_tool_approval"
	opRecompile          = "recompile"
	opResetMessages      = "reset_messages"
	opDeleteConversation = "delete_conversation"
	opForkConversation   = "fork_conversation"
	opAttachIdentity     = "attach_identity"
	opDetachIdentity     = "detach_identity"
	opImportAgents       = "import_agents"
	opStepFeedback       = "step_feedback"
	opAttachArchive      = "attach_archive"
	opDetachArchive      = "detach_archive"
)

// The operations that create the agent they run on.
var agentCreates = map[string]operation{
	opCreateAgent:  op(createAgent),
	opImportAgents: op(importAgents),
}

var agentOps = map[string]operation{
	opUpdateAgent:           op(updateAgent),
	opDeleteAgent:           op(deleteAgent),
	opAttachBlock:           op(attachBlock),
	opDetachBlock:           op(detachBlock),
	opCreateConversation:    op(createConversation),
	opUpdateConversation:    op(updateConversation),
	opInsertPassage:         op(insertPassage),
	opDeletePassage:         op(deletePassage),
	opAttachTool:            op(attachTool),
	opDetachTool:            op(detachTool),
	opSetToolApproval:       op(setToolApproval),
	loop.OpResults:          turnOp(loop.Results),
	opRecompile:             op(recompile),
	opResetMessages:         op(resetMessages),
	opDeleteConversation:    op(deleteConversation),
	opForkConversation:      op(forkConversation),
	opAttachIdentity:        op(attachIdentity),
	opDetachIdentity:        op(detachIdentity),
	opSyncRepo:              op(syncRepo),
	opPush:                  op(push),
	opStepFeedback:          op(setStepFeedback),
	opAttachArchive:         op(attachArchive),
	opDetachArchive:         op(detachArchive),
	loop.OpBegin:            op(beginTurn),
	loop.OpCloseInterrupted: turnOp(loop.CloseInterrupted),
	loop.OpStep:             turnOp(loop.Step),
	loop.OpEnd:              turnOp(loop.End),
	loop.OpCompact:          turnOp(loop.Compact),
}

// beginTurn is loop.OpBegin, run by the service's turn manager: it hands
// the turn starting what it read.
func beginTurn(c *core, call *actor.Call, a *schema.Agent, p loop.BeginPayload) ([]byte, error) {
	return c.turns.Begin(call, a, p)
}

// agentActor is the agent actor. Its state is *schema.Agent, nil when the
// agent does not exist.
type agentActor struct{ c *core }

func (agentActor) Decode(_ actor.ID, data []byte) (any, error) {
	if data == nil {
		return (*schema.Agent)(nil), nil
	}
	return schema.DecodeAgent(data)
}

func (agentActor) Encode(state any) ([]byte, error) { return schema.Encode(state.(*schema.Agent)) }

// Invoke runs an operation, then moves the agent's index entries and count
// to its new state in the same transaction, whatever the operation changed
// (unless the operation did: see indexesItself).
func (b agentActor) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	truncateNow(call)
	a, _ := call.State.(*schema.Agent)
	fn, err := b.operation(call.Op, a)
	if err != nil {
		return nil, err
	}
	was := schema.IndexView(a)
	out, err := fn(b.c, call, a)
	if err != nil {
		return nil, err
	}
	if indexesItself(call) {
		return out, nil
	}
	is, _ := call.State.(*schema.Agent)
	if schema.SameIndex(was, is) {
		return out, nil
	}
	if err := schema.IndexAgent(call.Txn, schema.IndexedOf(was), schema.IndexedOf(is)); err != nil {
		return nil, err
	}
	return out, nil
}

// indexesItself says whether the operation of call indexed the agent
// itself: a create of an agent whose id was minted (createAgent), which
// knows what that takes without reading (schema.IndexMintedAgent).
func indexesItself(call *actor.Call) bool {
	return call.Minted && call.Op == opCreateAgent
}

// operation returns the operation op on agent a (nil: none exists).
func (agentActor) operation(op string, a *schema.Agent) (operation, error) {
	if create, ok := agentCreates[op]; ok {
		if a != nil {
			return nil, letta.Conflictf("agent %s already exists", a.ID)
		}
		return create, nil
	}
	if a == nil {
		return nil, schema.ErrAgentNotFound
	}
	fn, ok := agentOps[op]
	if !ok {
		return nil, fmt.Errorf("agent actor: unknown operation %q", op)
	}
	return fn, nil
}

// truncateNow makes the invocation's time what Letta renders: microsecond
// precision, so that every read equals what a write returned.
func truncateNow(call *actor.Call) { call.Now = call.Now.UTC().Truncate(time.Microsecond) }

// Operations of the block actor.
const (
	opCreateBlock        = "create"
	opUpdateBlock        = "update"
	opUpdateBlockByLabel = "update_by_label"
	opDeleteBlock        = "delete"
)

// blockOp is one operation of the block actor on block call.ID.Key.
type blockOp func(call *actor.Call) ([]byte, error)

var blockOps = map[string]blockOp{
	opCreateBlock:        createBlock,
	opUpdateBlock:        updateBlock,
	opUpdateBlockByLabel: updateBlockByLabel,
	opDeleteBlock:        deleteBlock,
}

// blockActor serialises standalone operations on one block. It keeps no
// state of its own: the block lives at its key, shared with agent actors.
type blockActor struct{ c *core }

func (blockActor) Decode(actor.ID, []byte) (any, error) { return nil, nil }
func (blockActor) Encode(any) ([]byte, error)           { return nil, nil }

func (blockActor) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	truncateNow(call)
	fn, ok := blockOps[call.Op]
	if !ok {
		return nil, fmt.Errorf("block actor: unknown operation %q", call.Op)
	}
	return fn(call)
}
