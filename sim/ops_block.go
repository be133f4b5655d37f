package sim

// Operations on blocks.

type (
	createBlockOp     struct{}
	getBlockOp        struct{}
	listBlocksOp      struct{}
	updateBlockOp     struct{}
	deleteBlockOp     struct{}
	listBlockAgentsOp struct{}
)

func (createBlockOp) traits() traits { return traits{write: true} }

func (createBlockOp) generate(c *client, op *opRecord) {
	op.Label, op.Value = c.token("s"), c.token("v")
	op.set("POST", "/v1/blocks", map[string]string{"label": op.Label, "value": op.Value})
	c.w.byLabel[op.Label] = op
}

func (createBlockOp) parse(op *opRecord) error { return op.parseBlock() }

func (createBlockOp) learn(w *world, op, root *opRecord) {
	root.done = true
	switch {
	case op.Out == okOutcome && op.RespBlock != nil:
		w.adoptBlock(root, *op.RespBlock)
	case root.finalOut() == failedOutcome && root.Block != "":
		w.sys.violation("partial-effect", root.Block, "block %s was seen while its create (op #%d) ran, and the create then failed with %d", root.Block, op.ID, op.Status)
	}
}

func (createBlockOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	if op.Block != "" && op.Out != failedOutcome {
		b.add(op, blockObj(op.Block), modelOp{kind: blockCreate, result: res, value: op.Value})
	}
}

func (getBlockOp) traits() traits { return traits{needs: needBlock} }

func (getBlockOp) generate(c *client, op *opRecord) {
	op.Block = c.pickBlock()
	op.set("GET", "/v1/blocks/"+op.Block, nil)
}

func (getBlockOp) parse(op *opRecord) error           { return op.parseBlock() }
func (getBlockOp) learn(*world, *opRecord, *opRecord) {}

func (getBlockOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	if res == resultNoBlock {
		b.add(op, blockObj(op.Block), modelOp{kind: blockRead, present: false})
	} else if op.RespBlock != nil {
		b.c.readBlock(op, *op.RespBlock)
	}
}

func (listBlocksOp) listing() *listingKind { return blocksListing }

func (listBlocksOp) traits() traits { return traits{listing: true} }

func (listBlocksOp) generate(_ *client, op *opRecord) { op.set("GET", "/v1/blocks?limit=1000", nil) }

func (listBlocksOp) parse(op *opRecord) error           { return op.parseBlocks() }
func (listBlocksOp) learn(*world, *opRecord, *opRecord) {}

// model: a block created before the listing answered and not in it was
// gone.
func (listBlocksOp) model(b *modelBuilder, op *opRecord, _ modelResult) {
	listed := map[string]bool{}
	for _, blk := range op.RespBlocks {
		listed[blk.ID] = true
		b.c.readBlock(op, blk)
	}
	for id, create := range b.w.blockCreatedBy {
		if !listed[id] && create.Call < op.Ret {
			b.add(op, blockObj(id), modelOp{kind: blockRead, present: false})
		}
	}
}

func (updateBlockOp) traits() traits { return traits{write: true, writesBlock: true, needs: needBlock} }

func (updateBlockOp) generate(c *client, op *opRecord) {
	op.Block, op.Value = c.pickBlock(), c.token("v")
	op.set("PATCH", "/v1/blocks/"+op.Block, map[string]string{"value": op.Value})
}

func (updateBlockOp) parse(op *opRecord) error           { return op.parseBlock() }
func (updateBlockOp) learn(*world, *opRecord, *opRecord) {}

func (updateBlockOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	if res == resultNoBlock {
		res = resultAbsent
	}
	b.add(op, blockObj(op.Block), modelOp{kind: blockWrite, result: res, value: op.Value})
}

func (deleteBlockOp) traits() traits { return traits{write: true, writesBlock: true, needs: needBlock} }

func (deleteBlockOp) generate(c *client, op *opRecord) {
	op.Block = c.pickBlock()
	op.set("DELETE", "/v1/blocks/"+op.Block, nil)
}

func (deleteBlockOp) parse(*opRecord) error { return nil }

func (deleteBlockOp) learn(w *world, op, _ *opRecord) {
	if op.Out == okOutcome {
		w.blockLive[op.Block] = false
	}
}

func (deleteBlockOp) model(b *modelBuilder, op *opRecord, res modelResult) {
	if res == resultNoBlock {
		b.add(op, blockObj(op.Block), modelOp{kind: blockDelete, result: resultAbsent})
		return
	}
	b.add(op, blockObj(op.Block), modelOp{kind: blockDelete, result: res})
	// It also detaches the block from every agent: see modelBuilder.finish.
	b.blockDeletes = append(b.blockDeletes, op)
}

func (listBlockAgentsOp) listing() *listingKind { return blockAgentsListing }

func (listBlockAgentsOp) traits() traits { return traits{listing: true, needs: needBlock} }

func (listBlockAgentsOp) generate(c *client, op *opRecord) {
	op.Block = c.pickBlock()
	op.set("GET", "/v1/blocks/"+op.Block+"/agents?limit=1000", nil)
}

func (listBlockAgentsOp) parse(op *opRecord) error {
	err := op.parseAgents()
	for i := range op.RespAgents {
		op.RespAgents[i].withoutBlocks = true // Letta lists them so
	}
	return err
}

func (listBlockAgentsOp) learn(*world, *opRecord, *opRecord) {}

// model: each agent listed had the block attached; each agent created
// before the listing answered and not in it had not.
func (listBlockAgentsOp) model(b *modelBuilder, op *opRecord, _ modelResult) {
	listed := map[string]bool{}
	for _, a := range op.RespAgents {
		listed[a.ID] = true
		if b.c.agentKnown(a.ID) {
			b.add(op, agentObj(a.ID), modelOp{kind: agentProbe, present: true, block: op.Block, name: a.Name})
		}
	}
	for id, create := range b.w.agentCreatedBy {
		if !listed[id] && create.Call < op.Ret {
			b.add(op, agentObj(id), modelOp{kind: agentProbe, present: false, block: op.Block})
		}
	}
}
