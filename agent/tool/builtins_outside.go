package tool

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"

	"github.com/kelpie/kelpie/schema"
)

// Outside is what the built-in tools that run outside a step's
// transaction use (run_code, fetch_webpage, the multi-agent tools): they
// run code, reach the network or run other agents' turns, none of which
// may happen inside an actor's transaction. Their calls are Deferred like
// a custom tool's, so they share its at-most-once guarantee. A nil field
// answers its tools' calls with an error saying what is missing.
type Outside struct {
	Runner Runner    // runs run_code's Python, in the sandbox
	Web    *Fetcher  // fetches pages for fetch_webpage
	Search *Searcher // searches the web for web_search
	Agents Agents    // runs other agents' turns for the multi-agent tools
}

// Call is one call of a tool that runs outside a step.
type Call struct {
	AgentID string // the calling agent
	CallID  string // the model's id of the call
	// Env is the agent's tool environment (its variables and secrets).
	Env map[string]string
	// Prelude is CodePrelude as the call was made.
	Prelude string
}

// defineOutside makes a built-in tool that runs outside a step, with
// typed arguments as define has them; bad arguments are an error result.
func defineOutside[A any](name, toolType, description, parameters string, fn func(ctx context.Context, x *Outside, c Call, args A) Outcome) *Tool {
	t := builtin(name, toolType, description, parameters)
	t.exec = func(ctx context.Context, x *Outside, c Call, raw map[string]json.RawMessage) Outcome {
		var args A
		if err := decodeArgs(raw, reflect.ValueOf(&args).Elem()); err != nil {
			var ce *callError
			if errors.As(err, &ce) {
				return Failed("%s", ce.msg)
			}
			return Failed("%v", err)
		}
		return fn(ctx, x, c, args)
	}
	return t
}

// Stored is the tool as a deferred call records it: the stored custom
// tool, or the built-in tool as the API shows it.
func (t *Tool) Stored() schema.Tool {
	if t.Custom != nil {
		return *t.Custom
	}
	return schema.Tool{Tool: t.Letta()}
}

// OutsideBuiltin returns the built-in tool a deferred call's recorded
// tool is, if it is one that runs outside a step; else nil (a custom or
// MCP tool).
func OutsideBuiltin(rec *schema.Tool) *Tool {
	i := slices.IndexFunc(builtins, func(t *Tool) bool { return t.exec != nil && t.builtinID == rec.ID })
	if i < 0 {
		return nil
	}
	return builtins[i]
}

// RunOutside runs a call of a built-in tool that runs outside a step
// (OutsideBuiltin). Whatever happens, it returns an outcome the model can
// read.
func (t *Tool) RunOutside(ctx context.Context, x *Outside, c Call, args json.RawMessage) Outcome {
	raw := map[string]json.RawMessage{}
	if len(args) > 0 {
		if err := json.Unmarshal(args, &raw); err != nil {
			return Failed("the arguments of %s are not a JSON object: %v", t.Name, err)
		}
	}
	if x == nil {
		x = &Outside{}
	}
	return t.exec(ctx, x, c, raw)
}
