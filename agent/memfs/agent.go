package memfs

import (
	"slices"
	"time"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// EnabledTag is the agent tag that gives an agent a memory repository, as
// in Letta (letta-code's `/memfs enable` adds it).
const EnabledTag = "git-memory-enabled"

// Enabled says whether agent a keeps a memory repository.
func Enabled(a *schema.Agent) bool { return slices.Contains(a.Tags, EnabledTag) }

// SyncAgent commits the agent's blocks to its repository, as Sync, if the
// agent keeps one; blocks nil reads them. The agent is the author. It
// returns whether it committed.
func SyncAgent(txn kv.Txn, a *schema.Agent, blocks []*schema.Block, now time.Time, message string) (bool, error) {
	if !Enabled(a) {
		return false, nil
	}
	if blocks == nil {
		var err error
		if blocks, err = memory.AgentBlocks(txn, a.ID); err != nil {
			return false, err
		}
	}
	return Sync(NewStore(txn, a.ID), blocks, AgentSignature(a.ID, a.Name, now), message)
}
