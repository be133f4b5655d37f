package agent

import (
	"context"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Tools is the surface of tools.
type Tools struct{ c *core }

// List lists every tool the server has.
func (s *Tools) List(context.Context) []letta.Tool {
	out := []letta.Tool{}
	for _, t := range tool.Builtins() {
		out = append(out, t.Letta())
	}
	return out
}

// ForAgent lists the tools an agent is offered.
func (s *Tools) ForAgent(ctx context.Context, agentID string) ([]letta.Tool, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	out := []letta.Tool{}
	err := s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return err
		}
		for _, t := range tool.AgentTools(a) {
			out = append(out, t.Letta())
		}
		return nil
	})
	return out, err
}
