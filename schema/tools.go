package schema

import (
	"errors"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// ToolNamespace is the actor namespace that serialises operations on one
// custom tool.
const ToolNamespace = "tools"

// ToolActor is the actor that serialises operations on a custom tool.
func ToolActor(toolID string) actor.ID { return actor.ID{Namespace: ToolNamespace, Key: toolID} }

// ToolKey is where a custom tool's record is.
func ToolKey(toolID string) []byte { return []byte(Tools.Prefix + toolID) }

// ToolNameKey names the tool that has a name.
func ToolNameKey(name string) []byte { return []byte(ToolNames.Prefix + name) }

// AgentToolKey and ToolAgentKey record that a custom tool is attached to
// an agent, from each side; AgentToolsOf and ToolAgentsOf prefix every one
// of an agent's or a tool's.
func AgentToolKey(agentID, toolID string) []byte { return join(AgentTools, agentID, toolID) }
func AgentToolsOf(agentID string) []byte         { return join(AgentTools, agentID, "") }
func ToolAgentKey(toolID, agentID string) []byte { return join(ToolAgents, toolID, agentID) }
func ToolAgentsOf(toolID string) []byte          { return join(ToolAgents, toolID, "") }

// ToolNotFound is the error for a missing tool, with Letta's message.
func ToolNotFound(toolID string) error {
	return letta.NotFoundf("Tool with id %s not found.", toolID)
}

// GetTool returns a custom tool, or a not-found error.
func GetTool(txn kv.Txn, toolID string) (*Tool, error) {
	return get[Tool](txn, ToolKey(toolID), "tool "+toolID, ToolNotFound(toolID))
}

// ToolIDByName returns the id of the custom tool called name, or "".
func ToolIDByName(txn kv.Txn, name string) (string, error) {
	v, err := txn.Get(ToolNameKey(name))
	if errors.Is(err, kv.ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// PutTool writes a tool's record and moves its name entry from oldName
// ("" for a new tool) to its name; a new tool (created) also gets its index
// entry.
func PutTool(txn kv.Txn, t *Tool, oldName string, created bool) error {
	if err := put(txn, ToolKey(t.ID), t); err != nil {
		return err
	}
	if oldName != "" && oldName != t.Name {
		if err := txn.Delete(ToolNameKey(oldName)); err != nil {
			return err
		}
	}
	if err := txn.Set(ToolNameKey(t.Name), []byte(t.ID)); err != nil {
		return err
	}
	if created {
		return txn.Set(IndexKey(ToolIndex.Prefix, t.CreatedAt, t.ID), nil)
	}
	return nil
}

// DeleteTool detaches a tool from every agent and deletes it with its name
// and index entries (and, for an MCP tool, its mapping entry).
func DeleteTool(txn kv.Txn, t *Tool) error {
	if sid := MCPServerOf(t); sid != "" {
		if err := txn.Delete(MCPServerToolKey(sid, t.ID)); err != nil {
			return err
		}
	}
	err := deleteEach(txn, ToolAgentsOf(t.ID), func(p kv.KeyValue) error {
		return txn.Delete(AgentToolKey(LastPart(p.Key), t.ID))
	})
	if err != nil {
		return err
	}
	for _, k := range [][]byte{IndexKey(ToolIndex.Prefix, t.CreatedAt, t.ID), ToolNameKey(t.Name), ToolKey(t.ID)} {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// AttachTool attaches an existing custom tool to an agent (both sides);
// DetachTool undoes it. Both are idempotent.
func AttachTool(txn kv.Txn, agentID, toolID string) error {
	if err := txn.Set(AgentToolKey(agentID, toolID), nil); err != nil {
		return err
	}
	return txn.Set(ToolAgentKey(toolID, agentID), nil)
}

func DetachTool(txn kv.Txn, agentID, toolID string) error {
	if err := txn.Delete(AgentToolKey(agentID, toolID)); err != nil {
		return err
	}
	return txn.Delete(ToolAgentKey(toolID, agentID))
}

// AgentCustomTools returns the custom tools attached to an agent, in id
// order.
func AgentCustomTools(txn kv.Txn, agentID string) ([]*Tool, error) {
	links, err := txn.Scan(kv.PrefixRange(AgentToolsOf(agentID)), 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]*Tool, 0, len(links))
	for _, l := range links {
		t, err := GetTool(txn, LastPart(l.Key))
		if err != nil {
			return nil, Dangling(err, "attachment %q", l.Key)
		}
		out = append(out, t)
	}
	return out, nil
}
