package agent

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Operations of the MCP server actor.
const (
	opCreateMCPServer = "create"
	opUpdateMCPServer = "update"
	opDeleteMCPServer = "delete"
	opSyncMCPTools    = "sync"
)

// syncMCPTools is the payload of opSyncMCPTools: the tools the server
// listed, each with the id it takes if it is new.
type syncMCPTools struct {
	Tools []syncedTool `json:"tools"`
	// Prune deletes the server's tools it no longer lists (a refresh);
	// without it only the listed tools are written (adding one tool).
	Prune bool `json:"prune"`
}

type syncedTool struct {
	ID          string         `json:"id"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	JSONSchema  map[string]any `json:"json_schema"`
}

// syncOutcome is what opSyncMCPTools answers.
type syncOutcome struct {
	letta.MCPResyncResult
	Tools   []letta.Tool `json:"tools"`   // the listed tools as stored
	Skipped []string     `json:"skipped"` // why a listed tool was not stored
}

var mcpOps = map[string]func(call *actor.Call) ([]byte, error){
	opCreateMCPServer: createMCPServerOp,
	opUpdateMCPServer: updateMCPServerOp,
	opDeleteMCPServer: deleteMCPServerOp,
	opSyncMCPTools:    syncMCPToolsOp,
}

// mcpServerActor serialises writes to one MCP server and its tools. Like
// toolActor it keeps no state.
type mcpServerActor struct{}

func (mcpServerActor) Decode(actor.ID, []byte) (any, error) { return nil, nil }
func (mcpServerActor) Encode(any) ([]byte, error)           { return nil, nil }

func (mcpServerActor) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	truncateNow(call)
	fn, ok := mcpOps[call.Op]
	if !ok {
		return nil, fmt.Errorf("mcp server actor: unknown operation %q", call.Op)
	}
	return fn(call)
}

// takenName refuses a server name another server has.
func takenName(call *actor.Call, name string) error {
	owner, err := schema.MCPServerIDByName(call.Txn, name)
	if err != nil {
		return err
	}
	if owner != "" && owner != call.ID.Key {
		return letta.Conflictf("MCP server with name '%s' already exists", name)
	}
	return nil
}

// createMCPServerOp stores a new server (the payload, checked by the
// service) under the actor's id.
func createMCPServerOp(call *actor.Call) ([]byte, error) {
	s, err := decodePayload[schema.MCPServer](call)
	if err != nil {
		return nil, err
	}
	if err := takenName(call, s.Name); err != nil {
		return nil, err
	}
	s.ID, s.CreatedAt, s.UpdatedAt = call.ID.Key, call.Now, call.Now
	if err := schema.PutMCPServer(call.Txn, &s, ""); err != nil {
		return nil, err
	}
	return schema.Encode(s)
}

// updateMCPServerOp replaces the server's config with the payload (merged
// by the service from the stored one); a rename also renames the server in
// its tools' tags and metadata.
func updateMCPServerOp(call *actor.Call) ([]byte, error) {
	s, err := decodePayload[schema.MCPServer](call)
	if err != nil {
		return nil, err
	}
	old, err := schema.GetMCPServer(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	if err := takenName(call, s.Name); err != nil {
		return nil, err
	}
	s.ID, s.CreatedAt, s.UpdatedAt = old.ID, old.CreatedAt, call.Now
	if err := schema.PutMCPServer(call.Txn, &s, old.Name); err != nil {
		return nil, err
	}
	if s.Name != old.Name {
		ids, err := schema.MCPServerToolIDs(call.Txn, s.ID)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			t, err := schema.GetTool(call.Txn, id)
			if err != nil {
				return nil, schema.Dangling(err, "mapping of mcp server %s", s.ID)
			}
			t.UpdatedAt = call.Now
			if err := schema.PutMCPTool(call.Txn, &s, t, t.Name, false); err != nil {
				return nil, err
			}
		}
	}
	return schema.Encode(s)
}

func deleteMCPServerOp(call *actor.Call) ([]byte, error) {
	s, err := schema.GetMCPServer(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	return nil, schema.DeleteMCPServer(call.Txn, s)
}

// mcpToolNamePattern is what an MCP tool's name may be to be stored: a
// function name the model providers accept (OpenAI's rule).
var mcpToolNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// syncMCPToolsOp stores the tools a server listed, as Letta's resync does:
// a new name is added (taking over another server's tool of that name, as
// Letta's upsert by name does, but never a custom or built-in tool's
// name), a changed schema updated, and with Prune a tool no longer listed
// deleted.
func syncMCPToolsOp(call *actor.Call) ([]byte, error) {
	p, err := decodePayload[syncMCPTools](call)
	if err != nil {
		return nil, err
	}
	txn := call.Txn
	s, err := schema.GetMCPServer(txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	ids, err := schema.MCPServerToolIDs(txn, s.ID)
	if err != nil {
		return nil, err
	}
	mine := map[string]*schema.Tool{}
	for _, id := range ids {
		t, err := schema.GetTool(txn, id)
		if err != nil {
			return nil, schema.Dangling(err, "mapping of mcp server %s", s.ID)
		}
		mine[t.Name] = t
	}
	out := syncOutcome{MCPResyncResult: letta.MCPResyncResult{Deleted: []string{}, Updated: []string{}, Added: []string{}}}
	for _, l := range p.Tools {
		t, why, err := syncOne(call, s, mine[l.Name], l)
		switch {
		case err != nil:
			return nil, err
		case why != "":
			out.Skipped = append(out.Skipped, why)
			continue
		case mine[l.Name] == nil:
			out.Added = append(out.Added, l.Name)
		case t != nil:
			out.Updated = append(out.Updated, l.Name)
		}
		if t == nil {
			t = mine[l.Name]
		}
		out.Tools = append(out.Tools, t.Tool)
	}
	if p.Prune {
		for _, name := range slices.Sorted(maps.Keys(mine)) {
			if slices.ContainsFunc(p.Tools, func(l syncedTool) bool { return l.Name == name }) {
				continue
			}
			if err := schema.DeleteTool(txn, mine[name]); err != nil {
				return nil, err
			}
			out.Deleted = append(out.Deleted, name)
		}
	}
	return schema.Encode(out)
}

// syncOne stores one listed tool: it returns the tool written (nil when
// the stored one is current), or why it was skipped.
func syncOne(call *actor.Call, s *schema.MCPServer, have *schema.Tool, l syncedTool) (*schema.Tool, string, error) {
	if have != nil {
		if reflect.DeepEqual(have.JSONSchema, l.JSONSchema) {
			return nil, "", nil
		}
		have.JSONSchema, have.Description, have.UpdatedAt = l.JSONSchema, &l.Description, call.Now
		return have, "", schema.PutMCPTool(call.Txn, s, have, have.Name, false)
	}
	if !mcpToolNamePattern.MatchString(l.Name) {
		return nil, fmt.Sprintf("%q is not a name a model can call (letters, digits, _ and -, at most 64)", l.Name), nil
	}
	if _, builtin := tool.Lookup(l.Name); builtin {
		return nil, fmt.Sprintf("%q is the name of a built-in tool", l.Name), nil
	}
	owner, err := schema.ToolIDByName(call.Txn, l.Name)
	if err != nil {
		return nil, "", err
	}
	if owner != "" {
		t, err := schema.GetTool(call.Txn, owner)
		if err != nil {
			return nil, "", err
		}
		if schema.MCPServerOf(t) == "" {
			return nil, fmt.Sprintf("%q is the name of custom tool %s", l.Name, owner), nil
		}
		t.JSONSchema, t.Description, t.UpdatedAt = l.JSONSchema, &l.Description, call.Now
		return t, "", schema.PutMCPTool(call.Txn, s, t, t.Name, false)
	}
	t := &schema.Tool{Tool: letta.Tool{ID: l.ID, Name: l.Name, Description: &l.Description, SourceType: new("python"),
		JSONSchema: l.JSONSchema, ReturnCharLimit: letta.DefaultReturnCharLimit}, CreatedAt: call.Now, UpdatedAt: call.Now}
	return t, "", schema.PutMCPTool(call.Txn, s, t, "", true)
}
