package agent

import (
	"context"
	"slices"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Deleting the agents of a sleep-time group, as Letta does: deleting the
// main agent deletes its sleep-time agents and their group; deleting a
// sleep-time agent deletes its group and clears the main agent's
// enable_sleeptime (null). Each agent is deleted by its own actor (an
// agent's record is written by its actor only), the sleep-time agents
// before their main agent: a crash midway leaves a main agent without its
// group, whose delete, retried, finishes the job.

// opSleeptimeAgentDeleted clears enable_sleeptime of an agent that no
// longer manages a sleep-time group.
const opSleeptimeAgentDeleted = "sleeptime_agent_deleted"

func init() { agentOps[opSleeptimeAgentDeleted] = op(sleeptimeAgentDeleted) }

// deletedAgent is what opDeleteAgent answers: the main agent of the
// sleep-time group the deleted (sleep-time) agent was in, if any.
type deletedAgent struct {
	MainAgentID string `json:"main_agent_id,omitempty"`
}

func isSleeptimeGroup(g *schema.Group) bool {
	return g.ManagerType == letta.ManagerSleeptime || g.ManagerType == letta.ManagerVoiceSleeptime
}

func isSleeptimeAgent(a *schema.Agent) bool {
	return a.AgentType == "sleeptime_agent" || a.AgentType == "voice_sleeptime_agent"
}

// deleteWithGroup deletes an agent through its actor, first deleting the
// sleep-time agents of the sleep-time group it manages, and then clears
// the flag of the main agent whose sleep-time agent it was.
func (c *core) deleteWithGroup(ctx context.Context, id string) error {
	var members []string
	err := c.read(ctx, func(txn kv.Txn) error {
		g, err := managedGroup(txn, id)
		if g != nil && isSleeptimeGroup(g) {
			members = g.AgentIDs
		}
		return err
	})
	if err != nil {
		return err
	}
	// The steps beyond the request's own delete are idempotent by nature
	// (a second run finds nothing to do): they carry no idempotency key,
	// which names the request's own operation.
	inner := WithIdempotencyKey(ctx, "")
	for _, m := range members {
		if err := c.invoke(inner, schema.AgentActor(m), opDeleteAgent, nil, nil); err != nil && letta.KindOf(err) != letta.KindNotFound {
			return err
		}
	}
	var gone deletedAgent
	if err := c.invoke(ctx, schema.AgentActor(id), opDeleteAgent, nil, &gone); err != nil {
		return err
	}
	if gone.MainAgentID == "" {
		return nil
	}
	err = c.invoke(inner, schema.AgentActor(gone.MainAgentID), opSleeptimeAgentDeleted, nil, nil)
	if letta.KindOf(err) == letta.KindNotFound {
		return nil
	}
	return err
}

// leaveSleeptimeGroup deletes the sleep-time group a sleep-time agent is
// in (the first, as Letta) and answers its main agent.
func leaveSleeptimeGroup(txn kv.Txn, a *schema.Agent) (deletedAgent, error) {
	if !isSleeptimeAgent(a) {
		return deletedAgent{}, nil
	}
	gs, err := groupsOf(txn, a.ID)
	if err != nil {
		return deletedAgent{}, err
	}
	for _, g := range gs {
		if !isSleeptimeGroup(g) || !slices.Contains(g.AgentIDs, a.ID) {
			continue
		}
		if err := schema.DeleteGroup(txn, g); err != nil {
			return deletedAgent{}, err
		}
		return deletedAgent{MainAgentID: deref(g.ManagerAgentID)}, nil
	}
	return deletedAgent{}, nil
}

// sleeptimeAgentDeleted clears enable_sleeptime once the agent manages no
// sleep-time group.
func sleeptimeAgentDeleted(_ *core, call *actor.Call, a *schema.Agent, _ struct{}) ([]byte, error) {
	g, err := managedGroup(call.Txn, a.ID)
	if err != nil || a.EnableSleeptime == nil || g != nil && isSleeptimeGroup(g) {
		return nil, err
	}
	a.EnableSleeptime, a.UpdatedAt = nil, call.Now
	call.SetState(a)
	return nil, nil
}

// dropFolderBlock deletes the block labelled with a folder's name from an
// agent with sleep-time enabled, as Letta does when the folder is detached
// from it or deleted (the block Letta's sleep-time document ingest was to
// keep; that ingest itself does nothing in Letta, nor here).
func dropFolderBlock(txn kv.Txn, a *schema.Agent, folderName string) error {
	if a.EnableSleeptime == nil || !*a.EnableSleeptime {
		return nil
	}
	blocks, err := memory.AgentBlocks(txn, a.ID)
	if err != nil {
		return err
	}
	for _, b := range blocks {
		if b.Label == folderName {
			return schema.DeleteBlock(txn, b)
		}
	}
	return nil
}
