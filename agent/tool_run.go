package agent

import (
	"context"
	"time"

	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// RunSource runs Python source once, as POST /v1/tools/run does: nothing
// is stored. The function called is name, or the one the schema names.
func (s *Tools) RunSource(ctx context.Context, req letta.ToolRunFromSource) (*letta.ToolReturnMessage, error) {
	if err := checkToolCreate(letta.ToolCreate{SourceCode: req.SourceCode, SourceType: req.SourceType}); err != nil {
		return nil, err
	}
	if s.c.tools == nil {
		return nil, errNoRunner
	}
	name := ""
	switch {
	case req.Name != nil:
		name = *req.Name
	case req.JSONSchema != nil:
		name, _ = req.JSONSchema["name"].(string)
	default:
		js, err := s.derive(ctx, *req.SourceCode)
		if err != nil {
			return nil, err
		}
		name, _ = js["name"].(string)
	}
	args, err := schema.Encode(nonNilMap(req.Args))
	if err != nil {
		return nil, err
	}
	out := s.c.tools.Run(ctx, tool.Job{Source: *req.SourceCode, Name: name, Args: args, Env: req.EnvVars})
	return renderToolReturn(s.c.clock.Now(), name, out), nil
}

// errNoRunner answers a run on a server without a tool runner.
var errNoRunner = &letta.Error{Kind: letta.KindUnavailable, Message: "custom tools cannot run on this server: it was started without a tool sandbox"}

// ToolExecutionResult is what running an agent's tool answers (Letta's
// ToolExecutionResult).
type ToolExecutionResult struct {
	Status     string   `json:"status"`
	FuncReturn any      `json:"func_return"`
	AgentState any      `json:"agent_state"`
	Stdout     []string `json:"stdout"`
	Stderr     []string `json:"stderr"`
}

// RunForAgent runs one of an agent's custom tools by name, outside any
// turn: nothing is stored.
func (s *Tools) RunForAgent(ctx context.Context, agentID, name string, args map[string]any) (*ToolExecutionResult, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	var found *tool.Tool
	var env map[string]string
	prelude := ""
	err := s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return err
		}
		env = a.ToolEnv
		tools, err := offeredTools(txn, a)
		found = tool.Find(tools, name)
		if found != nil {
			prelude = tool.CodePrelude(found, tools)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, letta.NotFoundf("Tool '%s' not found or not attached to agent '%s'", letta.Clip(name), agentID)
	}
	if !found.Deferred() {
		return nil, letta.Invalidf("tool %s is built in: it runs in an agent's turn, not on its own", name)
	}
	data, err := schema.Encode(nonNilMap(args))
	if err != nil {
		return nil, err
	}
	var out tool.Outcome
	if found.Custom == nil {
		return s.runOutside(ctx, tool.Call{AgentID: agentID, Env: env, Prelude: prelude}, found, data)
	}
	if schema.MCPServerOf(found.Custom) != "" {
		out = tool.CallMCP(ctx, s.c.mcp, s.c.read, found.Custom, data)
	} else {
		if s.c.tools == nil {
			return nil, errNoRunner
		}
		source := ""
		if found.Custom.SourceCode != nil {
			source = *found.Custom.SourceCode
		}
		out = s.c.tools.Run(ctx, tool.Job{Source: source, Name: name, Args: data, Env: env})
	}
	return executionResult(out, found.Custom.ReturnCharLimit), nil
}

// runOutside runs one of an agent's built-in tools that run outside a
// step (run_code, fetch_webpage, the multi-agent tools), as its turn
// would but with nothing stored.
func (s *Tools) runOutside(ctx context.Context, c tool.Call, t *tool.Tool, args []byte) (*ToolExecutionResult, error) {
	var err error
	if c.CallID, err = s.c.newID("call"); err != nil {
		return nil, err
	}
	x := &tool.Outside{Runner: s.c.tools, Web: s.c.web, Search: s.c.search, Agents: agentMessenger{s.c}}
	out := t.RunOutside(ctx, x, c, args)
	return executionResult(out, tool.MaxResultChars), nil
}

// executionResult renders a run's outcome, cut to the tool's limit.
func executionResult(out tool.Outcome, limit int) *ToolExecutionResult {
	return &ToolExecutionResult{Status: tool.Status(out.OK), FuncReturn: tool.Truncate(out.Result, limit),
		Stdout: message.Lines(out.Stdout), Stderr: message.Lines(out.Stderr)}
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// renderToolReturn renders the outcome of a run from source as Letta answers it.
func renderToolReturn(now time.Time, name string, out tool.Outcome) *letta.ToolReturnMessage {
	status := tool.Status(out.OK)
	m := &letta.ToolReturnMessage{
		MessageBase: letta.MessageBase{ID: "null", Date: letta.MessageDate{Time: now.UTC()}, Name: &name, MessageType: letta.TypeToolReturn},
		ToolReturn:  out.Result, Status: status, ToolCallID: "null", Stdout: message.Lines(out.Stdout), Stderr: message.Lines(out.Stderr),
	}
	m.ToolReturns = []letta.ToolReturn{{Type: "tool", ToolReturn: m.ToolReturn, Status: status, ToolCallID: "null", Stdout: m.Stdout, Stderr: m.Stderr}}
	return m
}
