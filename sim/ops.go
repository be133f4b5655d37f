package sim

// Operations of the workload. Each kind of operation is a type with
// everything the simulator does differently for it: what it needs and does
// (its traits), how a client picks its arguments and makes its request, how
// its answer parses, what the clients learn from it, and what it tells the
// linearizability model. Adding an operation is adding a type (here and in
// ops_*.go) and its line in the mix.

// operation is one kind of workload operation.
type operation interface {
	traits() traits
	// generate picks op's arguments, drawing from the client's random
	// stream, and sets its request. Called with the world's lock held.
	generate(c *client, op *opRecord)
	// parse fills op's parsed response from the body of a 200.
	parse(op *opRecord) error
	// learn updates what the clients know from op's answer; root is its
	// first attempt (op itself unless op is a retry). Called with the
	// world's lock held.
	learn(w *world, op, root *opRecord)
	// model adds to the linearizability model what the logical operation
	// op (a first attempt and its retries, see checker.logical) did or
	// saw, res being its result.
	model(b *modelBuilder, op *opRecord, res modelResult)
}

// preparer is an operation that makes its request from what other
// requests answer (a push, from a fetch): prepare runs after generate,
// without the world's lock, and may turn op into another kind.
type preparer interface {
	prepare(c *client, op *opRecord)
}

// traits are what the workload and the checkers need to know of a kind.
type traits struct {
	// write: it may change state. A write may carry an Idempotency-Key
	// (and is retried with it after an unknown outcome), and an unknown
	// outcome of one is modelled; an unknown read tells nothing.
	write bool
	// listing: it lists what a filter selects, and the filter need not
	// name anything that exists: it never answers 404, and a failed one
	// tells nothing of any one object.
	listing bool
	// turn: it runs a turn of its agent.
	turn bool
	// attaches: it may attach its memory blocks, IDs or block to its agent.
	attaches bool
	// writesBlock: it may change its block's value, or delete it.
	writesBlock bool
	// callsModel: outside a turn, it makes a model request whose failure
	// fails it (a compaction's summary).
	callsModel bool
	// needs are the arguments it cannot go without.
	needs need
}

// need is a set of arguments an operation cannot go without: a client that
// knows of nothing to name lists the agents instead.
type need uint8

const (
	needAgent need = 1 << iota
	needBlock
	needConversation
	needPassage
)

// lacks reports whether op is without an argument its kind needs.
func (op *opRecord) lacks(n need) bool {
	return n&needAgent != 0 && op.Agent == "" || n&needBlock != 0 && op.Block == "" ||
		n&needConversation != 0 && op.Conversation == "" || n&needPassage != 0 && op.Passage == ""
}

// mix is the workload's operation mix, by weight.
var mix = []struct {
	kind   operation
	weight int
}{
	{createAgentOp{}, 8}, {getAgentOp{}, 12}, {listAgentsOp{}, 3}, {updateAgentOp{}, 7},
	{setBlocksOp{}, 2}, {deleteAgentOp{}, 3}, {createBlockOp{}, 4}, {getBlockOp{}, 6},
	{listBlocksOp{}, 2}, {updateBlockOp{}, 8}, {updateAgentBlockOp{}, 10}, {attachOp{}, 6},
	{detachOp{}, 5}, {deleteBlockOp{}, 2}, {listAgentBlocksOp{}, 3}, {getAgentBlockOp{}, 4},
	{listBlockAgentsOp{}, 3}, {sendMessageOp{}, 16}, {listMessagesOp{}, 5},
	// Conversations, archival memory and runs: a seventh of the mix.
	{createConversationOp{}, 3}, {sendConversationMessageOp{}, 4}, {listConversationsOp{}, 2},
	{createPassageOp{}, 3}, {deletePassageOp{}, 2}, {listPassagesOp{}, 2}, {listRunsOp{}, 2},
	// The context window.
	{compactOp{}, 2}, {resetMessagesOp{}, 1}, {forkConversationOp{}, 1},
	// The custom tool (see tools.go).
	{upsertToolOp{}, 1},
	// Pushes to agents' memory repositories (memfs.go).
	{pushOp{}, 4},
}

var mixTotal = func() int {
	n := 0
	for _, m := range mix {
		n += m.weight
	}
	return n
}()
