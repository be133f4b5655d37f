package sim

import (
	"fmt"
	"slices"

	"github.com/kelpie/kelpie/agent/memfs"
)

// Operations on agents and on their blocks.

type (
	createAgentOp      struct{}
	getAgentOp         struct{}
	listAgentsOp       struct{}
	updateAgentOp      struct{}
	setBlocksOp        struct{}
	deleteAgentOp      struct{}
	attachOp           struct{}
	detachOp           struct{}
	updateAgentBlockOp struct{}
	getAgentBlockOp    struct{}
	listAgentBlocksOp  struct{}
)

// ---- create ------------------------------------------------------------------

// agentTags are the tags agents are created with (each with even odds):
// the audit reads the agents listing filtered by each.
var agentTags = []string{"red", "blue"}

func (createAgentOp) traits() traits { return traits{write: true, attaches: true} }

// smallContextWindow is the context window, in tokens, of the agents whose
// turns compact: a system prompt and a few turns.
const smallContextWindow = 2000

func (createAgentOp) generate(c *client, op *opRecord) {
	w := c.w
	op.Name = c.token("a")
	for range 1 + c.rng.IntN(2) {
		op.MemLabels = append(op.MemLabels, c.token("m"))
		op.MemValues = append(op.MemValues, c.token("v"))
	}
	op.MemBlocks = make([]string, len(op.MemLabels))
	if b := c.pickBlock(); b != "" && c.rng.IntN(3) == 0 {
		op.IDs = []string{b}
	}
	type mem struct {
		Label string `json:"label"`
		Value string `json:"value"`
	}
	body := struct {
		Name         string   `json:"name"`
		AgentType    string   `json:"agent_type,omitempty"`
		MemoryBlocks []mem    `json:"memory_blocks"`
		BlockIDs     []string `json:"block_ids,omitempty"`
		Tags         []string `json:"tags,omitempty"`
		// ContextWindow, when small, makes the agent's turns compact its
		// history once it outgrows the window.
		ContextWindow int      `json:"context_window_limit,omitempty"`
		Tools         []string `json:"tools,omitempty"`
	}{Name: op.Name, BlockIDs: op.IDs}
	if w.toolReady && c.rng.IntN(4) > 0 {
		body.Tools = []string{simNoteTool}
	}
	if c.rng.IntN(3) == 0 {
		body.ContextWindow = smallContextWindow
	}
	// Not with the small window: the system prompt and tools of some
	// agent types would no longer fit it.
	if w.mcpReady && body.ContextWindow == 0 && c.rng.IntN(3) > 0 {
		body.Tools = append(body.Tools, simMCPTool)
	}
	for _, t := range agentTags {
		if c.rng.IntN(2) == 0 {
			body.Tags = append(body.Tags, t)
		}
	}
	if op.MemFS = c.rng.IntN(memfsOdds) == 0; op.MemFS {
		body.Tags = append(body.Tags, memfs.EnabledTag)
	}
	// Agents of the default type answer in text; memgpt agents answer
	// through send_message, with other memory tools.
	body.AgentType = []string{"", "", "memgpt_agent", "memgpt_v2_agent"}[c.rng.IntN(4)]
	for i := range op.MemLabels {
		body.MemoryBlocks = append(body.MemoryBlocks, mem{op.MemLabels[i], op.MemValues[i]})
	}
	op.set("POST", "/v1/agents", body)
	// Registered before the call: a concurrent read may see the agent
	// before this client sees the response.
	w.byName[op.Name] = op
	for _, label := range op.MemLabels {
		w.byLabel[label] = op
	}
}

func (createAgentOp) parse(op *opRecord) error { return op.parseAgent() }

func (createAgentOp) learn(w *world, op, root *opRecord) {
	root.done = true
	switch {
	case op.Out == okOutcome && op.RespAgent != nil:
		w.adoptAgent(root, *op.RespAgent)
	case root.finalOut() == failedOutcome && root.Agent != "":
		w.sys.violation("partial-effect", root.Agent, "agent %s was seen while its create (op #%d) ran, and the create then failed with %d", root.Agent, op.ID, op.Status)
	}
}

func (createAgentOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	if op.Out == failedOutcome {
		return
	}
	for i, id := range op.MemBlocks {
		if id != "" {
			b.add(op, blockObj(id), modelOp{kind: blockCreate, result: res, value: op.MemValues[i]})
		}
	}
	if op.Agent == "" {
		return
	}
	attached := slices.Concat(op.MemBlocks, op.IDs)
	if slices.Contains(attached, "") {
		// A memory block of a create with an unknown outcome was never
		// seen: what the agent started with is unknowable.
		b.skip[agentObj(op.Agent)] = true
		return
	}
	b.relate(op.Agent, attached...)
	m := modelOp{kind: agentCreate, result: res, name: op.Name, attached: joinIDs(attached)}
	b.withResponse(op, &m)
	b.add(op, agentObj(op.Agent), m)
}

// ---- get and list ----------------------------------------------------------------

func (getAgentOp) traits() traits { return traits{needs: needAgent} }

func (getAgentOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.set("GET", "/v1/agents/"+op.Agent, nil)
}

func (getAgentOp) parse(op *opRecord) error           { return op.parseAgent() }
func (getAgentOp) learn(*world, *opRecord, *opRecord) {}

func (getAgentOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	if res == resultAbsent {
		b.add(op, agentObj(op.Agent), modelOp{kind: agentRead, present: false})
	} else if op.RespAgent != nil {
		b.readAgent(op, *op.RespAgent, true)
	}
}

func (listAgentsOp) listing() *listingKind { return agentsListing }

func (listAgentsOp) traits() traits { return traits{listing: true} }

func (listAgentsOp) generate(_ *client, op *opRecord) { op.set("GET", "/v1/agents?limit=1000", nil) }

func (listAgentsOp) parse(op *opRecord) error { return op.parseAgents() }

// learn: an agent created before the listing began and not in it is gone.
func (listAgentsOp) learn(w *world, op, _ *opRecord) {
	if op.Out != okOutcome {
		return
	}
	listed := map[string]bool{}
	for _, a := range op.RespAgents {
		listed[a.ID] = true
	}
	for _, id := range w.agents {
		if !listed[id] && w.agentCreatedBy[id].Call < op.Call {
			w.agentLive[id] = false
		}
	}
}

func (listAgentsOp) model(b *modelBuilder, op *opRecord, _ modelResult) {
	listed := map[string]bool{}
	for _, a := range op.RespAgents {
		listed[a.ID] = true
		b.readAgent(op, a, true)
	}
	for id, create := range b.w.agentCreatedBy {
		if !listed[id] && create.Call < op.Ret {
			b.add(op, agentObj(id), modelOp{kind: agentRead, present: false})
		}
	}
}

// ---- update and delete --------------------------------------------------------------

func (updateAgentOp) traits() traits { return traits{write: true, needs: needAgent} }

func (updateAgentOp) generate(c *client, op *opRecord) {
	op.Agent, op.Name = c.pickAgent(), c.token("a")
	op.set("PATCH", "/v1/agents/"+op.Agent, map[string]string{"name": op.Name})
}

func (updateAgentOp) parse(op *opRecord) error           { return op.parseAgent() }
func (updateAgentOp) learn(*world, *opRecord, *opRecord) {}

func (updateAgentOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	m := modelOp{kind: agentRename, result: res, name: op.Name}
	b.withResponse(op, &m)
	b.add(op, agentObj(op.Agent), m)
}

func (setBlocksOp) traits() traits { return traits{write: true, attaches: true, needs: needAgent} }

func (setBlocksOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.IDs = []string{}
	for range c.rng.IntN(4) {
		if b := c.pickBlock(); b != "" && !slices.Contains(op.IDs, b) {
			op.IDs = append(op.IDs, b)
		}
	}
	op.set("PATCH", "/v1/agents/"+op.Agent, map[string][]string{"block_ids": op.IDs})
}

func (setBlocksOp) parse(op *opRecord) error           { return op.parseAgent() }
func (setBlocksOp) learn(*world, *opRecord, *opRecord) {}

func (setBlocksOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.relate(op.Agent, op.IDs...)
	m := modelOp{kind: agentSetBlocks, result: res, attached: joinIDs(op.IDs)}
	if res == resultNoBlock {
		m.result = resultOK // which block was missing is not known; the agent exists
		m.kind, m.present = agentRead, true
	}
	b.withResponse(op, &m)
	b.add(op, agentObj(op.Agent), m)
}

func (deleteAgentOp) traits() traits { return traits{write: true, needs: needAgent} }

func (deleteAgentOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.set("DELETE", "/v1/agents/"+op.Agent, nil)
	// Before the call: a turn the delete cuts short may end first.
	if c.w.deleting[op.Agent] == 0 {
		c.w.deleting[op.Agent] = c.sys.rec.seq.Load() + 1
	}
}

func (deleteAgentOp) parse(*opRecord) error { return nil }

func (deleteAgentOp) learn(w *world, op, _ *opRecord) {
	if op.Out == okOutcome {
		w.agentLive[op.Agent] = false
	}
}

func (deleteAgentOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.add(op, agentObj(op.Agent), modelOp{kind: agentDelete, result: res})
}

// ---- an agent's blocks ------------------------------------------------------------

func (attachOp) traits() traits {
	return traits{write: true, attaches: true, needs: needAgent | needBlock}
}

func (attachOp) generate(c *client, op *opRecord) {
	op.Agent, op.Block = c.pickAgent(), c.pickBlock()
	op.set("PATCH", "/v1/agents/"+op.Agent+"/core-memory/blocks/attach/"+op.Block, nil)
}

func (attachOp) parse(op *opRecord) error           { return op.parseAgent() }
func (attachOp) learn(*world, *opRecord, *opRecord) {}

func (attachOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.attachOrDetach(op, agentAttach, res)
}

func (detachOp) traits() traits { return traits{write: true, needs: needAgent | needBlock} }

func (detachOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.Block = c.pickAttached(op.Agent)
	op.set("PATCH", "/v1/agents/"+op.Agent+"/core-memory/blocks/detach/"+op.Block, nil)
}

func (detachOp) parse(op *opRecord) error           { return op.parseAgent() }
func (detachOp) learn(*world, *opRecord, *opRecord) {}

func (detachOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.attachOrDetach(op, agentDetach, res)
}

// attachOrDetach models an attach or a detach.
func (b *modelBuilder) attachOrDetach(op *opRecord, kind modelOpKind, res modelResult) {
	b.relate(op.Agent, op.Block)
	m := modelOp{kind: kind, result: res, block: op.Block}
	b.withResponse(op, &m)
	b.add(op, agentObj(op.Agent), m)
	if res == resultNoBlock && b.c.blockKnown(op.Block) {
		b.add(op, blockObj(op.Block), modelOp{kind: blockRead, present: false})
	}
}

func (updateAgentBlockOp) traits() traits {
	return traits{write: true, writesBlock: true, needs: needAgent | needBlock}
}

func (updateAgentBlockOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.Block = c.pickAttached(op.Agent)
	op.Label, op.Value = c.w.blockLabel[op.Block], c.token("v")
	op.set("PATCH", "/v1/agents/"+op.Agent+"/core-memory/blocks/"+op.Label, map[string]string{"value": op.Value})
}

func (updateAgentBlockOp) parse(op *opRecord) error           { return op.parseBlock() }
func (updateAgentBlockOp) learn(*world, *opRecord, *opRecord) {}

func (updateAgentBlockOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.relate(op.Agent, op.Block)
	b.add(op, agentObj(op.Agent), modelOp{kind: agentEditLabel, result: res, block: op.Block})
	if (res == resultOK || res == resultUnknown) && b.c.blockKnown(op.Block) {
		b.add(op, blockObj(op.Block), modelOp{kind: blockWrite, result: res, value: op.Value})
		if answered := op.RespBlock; answered != nil && answered.ID != op.Block {
			b.c.report("corruption", fmt.Sprintf("op #%d edited the block labelled %s, which is %s, and answered with block %s", op.ID, op.Label, op.Block, answered.ID), b.c.historyOf(op.Agent, op.ID))
		}
	}
}

func (getAgentBlockOp) traits() traits { return traits{needs: needAgent | needBlock} }

func (getAgentBlockOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.Block = c.pickAttached(op.Agent)
	op.Label = c.w.blockLabel[op.Block]
	op.set("GET", "/v1/agents/"+op.Agent+"/core-memory/blocks/"+op.Label, nil)
}

func (getAgentBlockOp) parse(op *opRecord) error           { return op.parseBlock() }
func (getAgentBlockOp) learn(*world, *opRecord, *opRecord) {}

func (getAgentBlockOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	b.relate(op.Agent, op.Block)
	if res != resultOK {
		b.add(op, agentObj(op.Agent), modelOp{kind: agentRead, result: res, block: op.Block})
		return
	}
	b.add(op, agentObj(op.Agent), modelOp{kind: agentHasBlock, block: op.Block})
	if op.RespBlock != nil {
		b.c.readBlock(op, *op.RespBlock)
	}
}

func (listAgentBlocksOp) listing() *listingKind { return agentBlocksListing }

func (listAgentBlocksOp) traits() traits { return traits{needs: needAgent} }

func (listAgentBlocksOp) generate(c *client, op *opRecord) {
	op.Agent = c.pickAgent()
	op.set("GET", "/v1/agents/"+op.Agent+"/core-memory/blocks", nil)
}

func (listAgentBlocksOp) parse(op *opRecord) error           { return op.parseBlocks() }
func (listAgentBlocksOp) learn(*world, *opRecord, *opRecord) {}

func (listAgentBlocksOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	if res == resultAbsent {
		b.add(op, agentObj(op.Agent), modelOp{kind: agentRead, present: false})
		return
	}
	ids := make([]string, len(op.RespBlocks))
	for i, blk := range op.RespBlocks {
		ids[i] = blk.ID
		b.c.readBlock(op, blk)
	}
	b.relate(op.Agent, ids...)
	b.add(op, agentObj(op.Agent), modelOp{kind: agentRead, present: true, hasAttached: true, attached: joinIDs(ids)})
}
