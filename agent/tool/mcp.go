package tool

import (
	"context"
	"encoding/json"
	"maps"
	"strings"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// MCPClient talks to MCP servers. Each method connects, does its work and
// disconnects (a stdio server is started for it and stopped after), so a
// server that died or restarted since is simply reached again. package
// mcpclient has the one Kelpie serves with.
type MCPClient interface {
	// ListTools lists the tools a server offers.
	ListTools(ctx context.Context, s *schema.MCPServer) ([]MCPTool, error)
	// Call calls one tool with args (a JSON object). Whatever the server
	// does (fails, hangs, dies, floods), Call returns an Outcome the model
	// can read, within the client's time limits.
	Call(ctx context.Context, s *schema.MCPServer, name string, args json.RawMessage) Outcome
	// Check refuses a server config the client will not use (a stdio
	// server where they are disabled, a URL it may not reach), with a
	// message for the API client.
	Check(s *schema.MCPServer) error
}

// MCPTool is a tool as an MCP server lists it.
type MCPTool struct {
	Name        string
	Description string
	InputSchema map[string]any
}

// MCPJSONSchema is the json_schema Kelpie stores for an MCP tool, derived
// from its input schema as Letta derives it (generate_tool_schema_for_mcp):
// an object with properties and required, every object closed
// (additionalProperties false unless given), $refs into $defs inlined.
// Unlike Letta it adds no request_heartbeat argument: Kelpie's loop does
// not use one, and a server whose schema is closed would refuse it.
func MCPJSONSchema(t MCPTool) map[string]any {
	params, _ := deepCopy(t.InputSchema).(map[string]any)
	if params == nil {
		params = map[string]any{}
	}
	if _, ok := params["type"]; !ok {
		params["type"] = "object"
	}
	if _, ok := params["properties"].(map[string]any); !ok {
		params["properties"] = map[string]any{}
	}
	if _, ok := params["required"]; !ok {
		params["required"] = []any{}
	}
	defs, _ := params["$defs"].(map[string]any)
	closeObjects(params)
	props := params["properties"].(map[string]any)
	for name, p := range props {
		props[name] = inlineRefs(p, defs, 0)
	}
	return map[string]any{"name": t.Name, "description": t.Description, "parameters": params}
}

// maxRefDepth bounds $ref inlining, against recursive definitions.
const maxRefDepth = 10

// closeObjects marks every object schema under node closed
// (additionalProperties false) unless it says otherwise.
func closeObjects(node any) {
	switch n := node.(type) {
	case map[string]any:
		if n["type"] == "object" {
			if _, ok := n["additionalProperties"]; !ok {
				n["additionalProperties"] = false
			}
		}
		for _, v := range n {
			closeObjects(v)
		}
	case []any:
		for _, v := range n {
			closeObjects(v)
		}
	}
}

// inlineRefs replaces each {"$ref": "#/$defs/X"} under node by X's
// definition (merged under the node's own keys).
func inlineRefs(node any, defs map[string]any, depth int) any {
	n, ok := node.(map[string]any)
	if !ok || depth > maxRefDepth {
		return node
	}
	out := maps.Clone(n)
	if ref, ok := out["$ref"].(string); ok && strings.HasPrefix(ref, "#/$defs/") {
		if def, ok := defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any); ok {
			delete(out, "$ref")
			for k, v := range deepCopy(def).(map[string]any) {
				if _, set := out[k]; !set {
					out[k] = v
				}
			}
			return inlineRefs(out, defs, depth+1)
		}
	}
	if props, ok := out["properties"].(map[string]any); ok {
		np := make(map[string]any, len(props))
		for k, v := range props {
			np[k] = inlineRefs(v, defs, depth+1)
		}
		out["properties"] = np
	}
	if items, ok := out["items"]; ok {
		out["items"] = inlineRefs(items, defs, depth+1)
	}
	if alts, ok := out["anyOf"].([]any); ok {
		na := make([]any, len(alts))
		for i, v := range alts {
			na[i] = inlineRefs(v, defs, depth+1)
		}
		out["anyOf"] = na
	}
	return out
}

// deepCopy copies a decoded JSON value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// CallMCP runs a call of an MCP tool: it reads the tool's server (with
// read, a snapshot of the store) and calls the tool there. Like
// MCPClient.Call it never fails: every problem is an Outcome for the model.
func CallMCP(ctx context.Context, c MCPClient, read func(context.Context, func(kv.Txn) error) error, t *schema.Tool, args json.RawMessage) Outcome {
	if c == nil {
		return Failed("MCP tools cannot run on this server: it was started without an MCP client")
	}
	var s *schema.MCPServer
	err := read(ctx, func(txn kv.Txn) (err error) {
		s, err = schema.GetMCPServer(txn, schema.MCPServerOf(t))
		return err
	})
	if err != nil {
		return Failed("the MCP server of %s could not be read: %v", t.Name, err)
	}
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	return c.Call(ctx, s, t.Name, args)
}
