package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// AttachTool attaches a tool, built-in or custom, to an agent and returns
// the agent as committed.
func (s *Agents) AttachTool(ctx context.Context, agentID, toolID string) (*letta.AgentState, error) {
	return s.toolAttachment(ctx, opAttachTool, agentID, toolID)
}

// DetachTool detaches a tool from an agent and returns the agent as
// committed. Detaching a tool the agent does not have changes nothing.
func (s *Agents) DetachTool(ctx context.Context, agentID, toolID string) (*letta.AgentState, error) {
	return s.toolAttachment(ctx, opDetachTool, agentID, toolID)
}

func (s *Agents) toolAttachment(ctx context.Context, op, agentID, toolID string) (*letta.AgentState, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if err := letta.CheckID("tool_id", "tool", toolID); err != nil {
		return nil, err
	}
	var st letta.AgentState
	if err := s.c.invoke(ctx, schema.AgentActor(agentID), op, toolID, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func attachTool(_ *core, call *actor.Call, a *schema.Agent, toolID string) ([]byte, error) {
	if b := builtinByID(toolID); b != nil {
		addBuiltin(a, b.Name)
	} else if _, err := attachCustom(call.Txn, a, toolID); err != nil {
		return nil, err
	}
	a.UpdatedAt = call.Now
	call.SetState(a)
	return renderCommitted(call.Txn, a)
}

func detachTool(_ *core, call *actor.Call, a *schema.Agent, toolID string) ([]byte, error) {
	if b := builtinByID(toolID); b != nil {
		// The agent's built-in tools become an explicit list, without it.
		if a.IncludeBaseTools == nil || *a.IncludeBaseTools {
			var names []string
			for _, t := range tool.AgentTools(a) {
				names = append(names, t.Name)
			}
			a.IncludeBaseTools, a.ToolNames = new(false), names
		}
		a.ToolNames = slices.DeleteFunc(a.ToolNames, func(n string) bool { return n == b.Name })
	} else if err := schema.DetachTool(call.Txn, a.ID, toolID); err != nil {
		return nil, err
	}
	a.UpdatedAt = call.Now
	call.SetState(a)
	return renderCommitted(call.Txn, a)
}

// addBuiltin offers the built-in tool name to agent a, once.
func addBuiltin(a *schema.Agent, name string) {
	if tool.Find(tool.AgentTools(a), name) == nil {
		a.ToolNames = append(a.ToolNames, name)
	}
}

// attachNamedTools gives a new agent the tools its create request names, by
// name (tools) and by id (tool_ids). A name or id that is neither a
// built-in nor a custom tool is refused, naming every such one, rather than
// dropped. It returns the custom tools attached in the order
// schema.AgentCustomTools lists them (by id), so that the create need not
// read them back.
func attachNamedTools(txn kv.Txn, a *schema.Agent, names, ids []string) ([]*schema.Tool, error) {
	var unknown []string
	var custom []*schema.Tool
	attach := func(id string) error {
		t, err := attachCustom(txn, a, id)
		if err == nil {
			custom = append(custom, t)
		}
		return err
	}
	for _, n := range names {
		if _, ok := tool.Lookup(n); ok {
			addBuiltin(a, n)
			continue
		}
		id, err := schema.ToolIDByName(txn, n)
		if err != nil {
			return nil, err
		}
		if id == "" {
			unknown = append(unknown, n)
			continue
		}
		if err := attach(id); err != nil {
			return nil, err
		}
	}
	for i, id := range ids {
		if err := letta.CheckID(fmt.Sprintf("tool_ids[%d]", i), "tool", id); err != nil {
			return nil, err
		}
		if b := builtinByID(id); b != nil {
			addBuiltin(a, b.Name)
			continue
		}
		err := attach(id)
		if letta.KindOf(err) == letta.KindNotFound {
			unknown = append(unknown, id)
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	if len(unknown) > 0 {
		return nil, letta.Invalidf("Unknown tools: %s. Each must name a built-in tool or a tool created with POST /v1/tools.", strings.Join(unknown, ", "))
	}
	slices.SortFunc(custom, func(x, y *schema.Tool) int { return strings.Compare(x.ID, y.ID) })
	return custom, nil
}

// attachCustom attaches an existing custom tool to agent a; a tool that
// requires approval by default gives the agent a requires_approval rule
// for it, as Letta does. It returns the tool.
func attachCustom(txn kv.Txn, a *schema.Agent, toolID string) (*schema.Tool, error) {
	t, err := schema.GetTool(txn, toolID)
	if err != nil {
		return nil, err
	}
	if t.DefaultRequiresApproval != nil && *t.DefaultRequiresApproval {
		a.ToolRules = tool.SetApproval(a.ToolRules, t.Name, true)
	}
	return t, schema.AttachTool(txn, a.ID, toolID)
}

// SetToolApproval turns the agent's approval requirement for a tool on or
// off (its requires_approval rule) and returns the agent as committed.
func (s *Agents) SetToolApproval(ctx context.Context, agentID, toolName string, on bool) (*letta.AgentState, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if err := letta.CheckChars("tool_name", toolName, letta.MaxToolNameChars); err != nil {
		return nil, err
	}
	var st letta.AgentState
	err := s.c.invoke(ctx, schema.AgentActor(agentID), opSetToolApproval, toolApproval{toolName, on}, &st)
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// toolApproval is the payload of opSetToolApproval.
type toolApproval struct {
	Tool string `json:"tool"`
	On   bool   `json:"on"`
}

func setToolApproval(_ *core, call *actor.Call, a *schema.Agent, p toolApproval) ([]byte, error) {
	a.ToolRules = tool.SetApproval(a.ToolRules, p.Tool, p.On)
	a.UpdatedAt = call.Now
	call.SetState(a)
	return renderCommitted(call.Txn, a)
}
