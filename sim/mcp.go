package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/schema"
)

// The simulated MCP server. The workload registers it once
// (createMCPServerOp), which stores its one tool, simMCPTool; some agents
// are given that tool and the scripted model calls it with a fresh key. The
// loop calls an MCP tool, like a custom tool, outside the step's
// transaction after the step commits, so at-most-once must hold for it
// too. The server records every call of every key (its ledger, held to the
// histories by checkTools as the sandbox's is), and the MCP faults of the
// profile make a call fail as a real server fails: it disconnects during
// the call (after running it: its answer is lost), it hangs until the
// client's call limit, or it answers with an error result. A process
// crash may also hit during a call.

// Names of the simulated server and its tool.
const (
	simMCPServer = "sim_mcp"
	simMCPTool   = "sim_lookup"
)

// MCP faults, drawn on each call of the server's tool (the key is its key).
const (
	// MCPDisconnect makes the server go away during a call it ran.
	MCPDisconnect FaultKind = "mcp_disconnect"
	// MCPHang makes the server never answer: the client's call limit (or
	// the turn's cancellation) ends the call.
	MCPHang FaultKind = "mcp_hang"
	// MCPError makes the server answer with an error result.
	MCPError FaultKind = "mcp_error"
)

// simMCPCallLimit is the client's limit on one call, in simulated time.
const simMCPCallLimit = 50 * time.Millisecond

// simMCPSchema is the tool's input schema, as the server lists it.
var simMCPSchema = map[string]any{"type": "object", "required": []any{"key"},
	"properties": map[string]any{"key": map[string]any{"type": "string", "description": "The key to look up."}}}

// mcpClient is one incarnation's MCP client, reaching the run's one
// simulated server (whatever its registered config says).
type mcpClient struct {
	l   *ledger
	sys *system
	inc *incarnation
}

func (mcpClient) Check(*schema.MCPServer) error { return nil }

func (mcpClient) ListTools(context.Context, *schema.MCPServer) ([]tool.MCPTool, error) {
	return []tool.MCPTool{{Name: simMCPTool, Description: "Look a key up.", InputSchema: simMCPSchema}}, nil
}

// Call runs one call of the tool: it counts the key's call, then fails it
// as a fault says or answers "found KEY".
func (c mcpClient) Call(ctx context.Context, srv *schema.MCPServer, name string, raw json.RawMessage) tool.Outcome {
	var args struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(raw, &args); err != nil || name != simMCPTool {
		return tool.Failed("%s(%s): the simulated MCP server offers only %s(key)", name, raw, simMCPTool)
	}
	s := c.sys
	inj, key := s.inj, []byte(args.Key)
	c.l.ran(args.Key)
	s.rec.event("mcp call %s(%q)", name, args.Key)
	if inj.fire(ProcessCrash, "", key) {
		s.crash(c.inc, "process_crash: during an MCP call")
	}
	out := tool.Outcome{Result: "found " + args.Key, OK: true}
	switch {
	case inj.fire(MCPDisconnect, "", key):
		out = tool.Failed("the MCP server %s disconnected during the call", srv.Name)
	case inj.fire(MCPHang, "", key):
		select {
		case <-ctx.Done():
		case <-s.clock.After(simMCPCallLimit):
		}
		out = tool.Failed("the MCP server %s did not answer within %s", srv.Name, simMCPCallLimit)
	case inj.fire(MCPError, "", key):
		out = tool.Outcome{Result: "lookup of " + args.Key + " failed: simulated server error"}
	}
	c.l.gave(args.Key, out.Result)
	return out
}

// mcpSetupOp registers the simulated server (POST /v1/mcp-servers), then
// (addTool) stores its tool (POST /v1/tools/mcp/servers/{name}/{tool}):
// a registration stores the tools too, but one whose listing failed
// stores none and still answers 200. Servers are not modelled; what the
// ops tell the clients is that agents may now be given the tool. A name
// already taken means an earlier attempt registered the server.
type mcpSetupOp struct{ addTool bool }

func (mcpSetupOp) traits() traits { return traits{} }

func (o mcpSetupOp) generate(_ *client, op *opRecord) {
	if o.addTool {
		op.set("POST", "/v1/tools/mcp/servers/"+simMCPServer+"/"+simMCPTool, nil)
		return
	}
	op.set("POST", "/v1/mcp-servers", map[string]any{"server_name": simMCPServer,
		"config": map[string]any{"mcp_server_type": "stdio", "command": "sim-mcp", "args": []string{}}})
}

func (o mcpSetupOp) parse(op *opRecord) error {
	var r struct {
		Server string `json:"server_name"`
		Tool   string `json:"name"`
	}
	if err := json.Unmarshal(op.Resp, &r); err != nil {
		return err
	}
	got, want := r.Server, simMCPServer
	if o.addTool {
		got, want = r.Tool, simMCPTool
	}
	if got != want {
		return fmt.Errorf("%s %s answered %q, not %s", op.Method, op.Path, got, want)
	}
	return nil
}

func (o mcpSetupOp) learn(w *world, op, _ *opRecord) {
	switch {
	case o.addTool && op.Out == okOutcome:
		w.mcpReady = true
	case !o.addTool && (op.Out == okOutcome || op.Status == 409):
		w.mcpServer = true
	}
}

func (mcpSetupOp) model(*modelBuilder, *opRecord, modelResult) {}

// mcpTaken reports whether op is a registration of the simulated server
// refused because an earlier one registered it.
func mcpTaken(op *opRecord) bool { return op.Status == 409 && op.Kind == mcpSetupOp{} }
