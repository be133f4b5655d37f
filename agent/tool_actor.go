package agent

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Operations of the tool actor.
const (
	opUpsertTool = "upsert"
	opUpdateTool = "update"
	opDeleteTool = "delete"
)

// upsertTool is the payload of opUpsertTool.
type upsertTool struct {
	Req    letta.ToolCreate `json:"req"`
	Schema map[string]any   `json:"schema"`
	Name   string           `json:"name"`
}

var toolOps = map[string]func(call *actor.Call) ([]byte, error){
	opUpsertTool: upsertToolOp,
	opUpdateTool: updateToolOp,
	opDeleteTool: deleteToolOp,
}

// toolActor serialises operations on one custom tool. Like blockActor it
// keeps no state: the tool lives at its key.
type toolActor struct{}

func (toolActor) Decode(actor.ID, []byte) (any, error) { return nil, nil }
func (toolActor) Encode(any) ([]byte, error)           { return nil, nil }

func (toolActor) Invoke(_ context.Context, call *actor.Call) ([]byte, error) {
	truncateNow(call)
	fn, ok := toolOps[call.Op]
	if !ok {
		return nil, fmt.Errorf("tool actor: unknown operation %q", call.Op)
	}
	return fn(call)
}

// upsertToolOp creates tool call.ID.Key, or updates it when it is the
// tool of that name.
func upsertToolOp(call *actor.Call) ([]byte, error) {
	p, err := decodePayload[upsertTool](call)
	if err != nil {
		return nil, err
	}
	txn, id := call.Txn, call.ID.Key
	owner, err := schema.ToolIDByName(txn, p.Name)
	if err != nil {
		return nil, err
	}
	t, err := schema.GetTool(txn, id)
	created := letta.KindOf(err) == letta.KindNotFound
	switch {
	case err != nil && !created:
		return nil, err
	case owner != "" && owner != id, !created && owner == "":
		// Renamed or taken since the service looked: let it look again.
		return nil, &letta.Error{Kind: letta.KindContended, Message: fmt.Sprintf("tool name %q changed hands during the request; retry", p.Name)}
	}
	oldName := ""
	if created {
		t = &schema.Tool{Tool: letta.Tool{ID: id, ToolType: letta.ToolTypeCustom, Tags: []string{}, Metadata: map[string]any{},
			ReturnCharLimit: letta.DefaultReturnCharLimit, SourceType: new("python")}, CreatedAt: call.Now}
	} else {
		oldName = t.Name
	}
	r := p.Req
	t.Name, t.JSONSchema, t.SourceCode, t.UpdatedAt = p.Name, p.Schema, r.SourceCode, call.Now
	t.Description = r.Description
	if t.Description == nil {
		if d, ok := p.Schema["description"].(string); ok {
			t.Description = &d
		}
	}
	if len(r.Tags) > 0 {
		t.Tags = r.Tags
	}
	if r.ArgsJSONSchema != nil {
		t.ArgsJSONSchema = r.ArgsJSONSchema
	}
	if r.PipRequirements != nil {
		t.PipRequirements = r.PipRequirements
	}
	if r.NpmRequirements != nil {
		t.NpmRequirements = r.NpmRequirements
	}
	if r.ReturnCharLimit != nil {
		t.ReturnCharLimit = *r.ReturnCharLimit
	}
	if r.DefaultRequiresApproval != nil {
		t.DefaultRequiresApproval = r.DefaultRequiresApproval
	}
	if r.EnableParallelExecution != nil {
		t.EnableParallelExecution = *r.EnableParallelExecution
	}
	if err := schema.PutTool(txn, t, oldName, created); err != nil {
		return nil, err
	}
	return schema.Encode(t.Tool)
}

// updateToolOp applies a PATCH: fields given replace the stored ones. A
// new json_schema may rename the tool (its name must be free); new source
// must still define the tool's function, as Letta checks.
func updateToolOp(call *actor.Call) ([]byte, error) {
	u, err := decodePayload[letta.ToolUpdate](call)
	if err != nil {
		return nil, err
	}
	txn := call.Txn
	t, err := schema.GetTool(txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	oldName, mcpServer := t.Name, t.Metadata[schema.MCPMetadataKey]
	if u.JSONSchema != nil {
		t.JSONSchema = u.JSONSchema
		t.Name, _ = u.JSONSchema["name"].(string)
		if mcpServer != nil && t.Name != oldName {
			return nil, letta.Invalidf("tool %s is offered by an MCP server under the name %q, which cannot change", t.ID, oldName)
		}
		if owner, err := schema.ToolIDByName(txn, t.Name); err != nil {
			return nil, err
		} else if owner != "" && owner != t.ID {
			return nil, letta.Invalidf("Tool with name '%s' already exists in your organization", t.Name)
		}
	}
	if u.SourceCode != nil {
		if !strings.Contains(*u.SourceCode, "def "+t.Name) {
			return nil, letta.Invalidf("Tool name '%s' does not match the name in the JSON schema '%s' or in the source code", t.Name, t.Name)
		}
		t.SourceCode = u.SourceCode
	}
	if u.Description != nil {
		t.Description = u.Description
	}
	if u.Tags != nil {
		t.Tags = *u.Tags
	}
	if u.ArgsJSONSchema != nil {
		t.ArgsJSONSchema = u.ArgsJSONSchema
	}
	if u.PipRequirements != nil {
		t.PipRequirements = *u.PipRequirements
	}
	if u.NpmRequirements != nil {
		t.NpmRequirements = *u.NpmRequirements
	}
	if u.Metadata != nil {
		t.Metadata = maps.Clone(*u.Metadata)
		if mcpServer != nil {
			// Which server an MCP tool calls is its server's to say.
			if t.Metadata == nil {
				t.Metadata = map[string]any{}
			}
			t.Metadata[schema.MCPMetadataKey] = mcpServer
		}
	}
	if u.ReturnCharLimit != nil {
		t.ReturnCharLimit = *u.ReturnCharLimit
	}
	if u.DefaultRequiresApproval != nil {
		t.DefaultRequiresApproval = u.DefaultRequiresApproval
	}
	if u.EnableParallelExecution != nil {
		t.EnableParallelExecution = *u.EnableParallelExecution
	}
	t.UpdatedAt = call.Now
	if err := schema.PutTool(txn, t, oldName, false); err != nil {
		return nil, err
	}
	return schema.Encode(t.Tool)
}

func deleteToolOp(call *actor.Call) ([]byte, error) {
	t, err := schema.GetTool(call.Txn, call.ID.Key)
	if err != nil {
		return nil, err
	}
	return nil, schema.DeleteTool(call.Txn, t)
}
