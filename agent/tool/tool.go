// Package tool is what an agent can call: the registry of built-in tools,
// each one row (its name, Letta's tool type, its description, the JSON
// Schema of its arguments and the function that runs it with typed
// arguments), the custom tools (Python source, run by a Runner in a
// sandbox), and the choice of tools an agent is offered.
//
// Guarantees:
//   - A tool runs inside the turn step's transaction (Env.Txn): its effects
//     (a memory edit, a new passage) commit with the call and its result, or
//     not at all, so a crash never leaves a call without its effect or an
//     effect without its call.
//   - A tool never runs twice for one call: the step that runs it commits
//     its result, and a repeated request is answered from storage.
//   - Whatever a model sends, a call ends in a result: bad arguments, an
//     unknown tool or a refused edit is an error result the model can read
//     (ok false), never a failed step. Only a storage fault fails the step.
//   - Results are at most MaxResultChars characters (a custom tool's, its
//     return_char_limit).
//   - A custom tool never runs in a transaction: its call is Deferred, run
//     after the step commits and answered by a later commit (see package
//     loop), so a crash while it runs leaves a call the next turn answers
//     as interrupted, never one run twice. So do the built-in tools that
//     run code (run_code, in the Runner's sandbox), fetch pages
//     (fetch_webpage, off internal addresses and within limits) or message
//     other agents (bounded in depth and fan-out; each message keyed by
//     its call, so that it is sent at most once).
package tool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

// MaxResultChars bounds a tool result as stored and shown to the model.
const MaxResultChars = 50_000

// Tool is one tool: what the model is told of it and how it runs.
type Tool struct {
	Name        string
	Type        string // Letta's tool_type
	Description string
	Parameters  json.RawMessage // JSON Schema of the arguments object
	// run runs the tool with the call's arguments (a JSON object). An
	// error made by Errorf is reported to the model; any other error is a
	// fault that fails the step. nil for a custom tool.
	run func(env *Env, args map[string]json.RawMessage) (string, error)
	// exec runs a built-in tool that runs outside a step (after it
	// commits, like a custom tool); nil for the others.
	exec func(ctx context.Context, x *Outside, c Call, args map[string]json.RawMessage) Outcome
	// Custom is the stored custom tool this is; nil for a built-in one.
	Custom *schema.Tool
	// builtinID is a built-in tool's id, derived from its name.
	builtinID string
	// lettaJSON is a built-in tool's Letta(), encoded once: it is most of
	// the JSON of every agent offered the tool.
	lettaJSON []byte
}

// ID is the tool's id as the API shows it.
func (t *Tool) ID() string {
	if t.Custom != nil {
		return t.Custom.ID
	}
	return t.builtinID
}

// Deferred reports whether calls of the tool run outside the step's
// transaction: a custom tool's (in the sandbox or on its MCP server), and
// the built-in tools that run code, fetch pages or message other agents.
func (t *Tool) Deferred() bool { return t.Custom != nil || t.exec != nil }

// FromCustom is the tool a stored custom tool offers.
func FromCustom(c *schema.Tool) *Tool {
	desc := ""
	if c.Description != nil {
		desc = *c.Description
	}
	params, err := json.Marshal(c.JSONSchema["parameters"])
	if err != nil || string(params) == "null" {
		params = []byte(`{"type":"object","properties":{}}`)
	}
	return &Tool{Name: c.Name, Type: c.ToolType, Description: desc, Parameters: params, Custom: c}
}

// Env is what a tool acts on: the agent, in the transaction of the step
// that calls it.
type Env struct {
	Txn   kv.Txn
	Agent *schema.Agent
	// Tools are the tools the agent is offered (Offered).
	Tools []*Tool
	Now   time.Time
	// NewID names what the tool creates; it is derived from the call, so a
	// retried step names the same things.
	NewID func(prefix string) string
	// Embedded are the embeddings of the calls' texts (EmbeddingText),
	// computed before the transaction; NoVector says why one is missing.
	Embedded map[string]*memory.Embedded
	NoVector string
}

// noVector says why a text of the step has no embedding.
func (env *Env) noVector() string {
	if env.NoVector != "" {
		return env.NoVector
	}
	return "it was not computed for this call: passages are ranked by matching words only"
}

// callError is a tool failure reported to the model as its result.
type callError struct{ msg string }

func (e *callError) Error() string { return e.msg }

// Errorf returns an error that a tool reports to the model, as "Error: ...".
func Errorf(format string, args ...any) error {
	return &callError{msg: fmt.Sprintf(format, args...)}
}

// Run runs a call of one of the agent's tools. It returns the result and
// whether the tool succeeded; err is a fault that must fail the step.
func Run(env *Env, call schema.ToolCall) (result string, ok bool, err error) {
	t := Find(env.Tools, call.Name)
	if t == nil {
		return fmt.Sprintf("Error: there is no tool named %q. Use one of the tools you were given.", call.Name), false, nil
	}
	args := map[string]json.RawMessage{}
	if strings.TrimSpace(call.Arguments) != "" {
		if err := json.Unmarshal([]byte(call.Arguments), &args); err != nil {
			return fmt.Sprintf("Error: the arguments of %s are not a JSON object: %v", call.Name, err), false, nil
		}
	}
	if t.Deferred() {
		return "", false, fmt.Errorf("tool %s runs outside a step, after it commits", t.Name)
	}
	result, err = t.run(env, args)
	var ce *callError
	if errors.As(err, &ce) {
		return "Error: " + ce.msg, false, nil
	}
	if err != nil {
		return "", false, err
	}
	if utf8.RuneCountInString(result) > MaxResultChars {
		result = string([]rune(result)[:MaxResultChars]) + "\n[result truncated]"
	}
	return result, true, nil
}

// Lookup returns the built-in tool called name.
func Lookup(name string) (*Tool, bool) {
	i := slices.IndexFunc(builtins, func(t *Tool) bool { return t.Name == name })
	if i < 0 {
		return nil, false
	}
	return builtins[i], true
}

// Builtins lists every built-in tool.
func Builtins() []*Tool { return slices.Clone(builtins) }

// baseTools are the built-in tools an agent type gets by default.
func baseTools(agentType string) []string {
	switch agentType {
	case "memgpt_agent":
		return []string{sendMessage.Name, conversationSearch.Name, coreMemoryAppend.Name, coreMemoryReplace.Name, archivalMemoryInsert.Name, archivalMemorySearch.Name}
	case "memgpt_v2_agent":
		return []string{sendMessage.Name, conversationSearch.Name, memoryInsert.Name, memoryReplace.Name, archivalMemoryInsert.Name, archivalMemorySearch.Name}
	case "react_agent", "workflow_agent":
		return nil
	}
	return []string{conversationSearch.Name, memoryInsert.Name, memoryReplace.Name, archivalMemoryInsert.Name, archivalMemorySearch.Name}
}

// AgentTools are the tools an agent is offered: its type's base tools
// (unless created with include_base_tools false) and the built-in tools it
// named.
func AgentTools(a *schema.Agent) []*Tool {
	var names []string
	if a.IncludeBaseTools == nil || *a.IncludeBaseTools {
		names = baseTools(a.AgentType)
	}
	for _, n := range a.ToolNames {
		if _, ok := Lookup(n); ok && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	out := make([]*Tool, len(names))
	for i, n := range names {
		out[i], _ = Lookup(n)
	}
	return out
}

// Offered are the tools an agent is offered: its built-in tools
// (AgentTools), then the custom tools attached to it.
func Offered(a *schema.Agent, custom []*schema.Tool) []*Tool {
	out := AgentTools(a)
	for _, c := range custom {
		if Find(out, c.Name) == nil {
			out = append(out, FromCustom(c))
		}
	}
	return out
}

// Find returns the tool called name among tools, or nil.
func Find(tools []*Tool, name string) *Tool {
	i := slices.IndexFunc(tools, func(t *Tool) bool { return t.Name == name })
	if i < 0 {
		return nil
	}
	return tools[i]
}

// Schemas lists the tools offered to the model: the agent's and the
// request's client tools, which take precedence on a name clash.
func Schemas(tools []*Tool, client []letta.ClientTool) []llm.Tool {
	var out []llm.Tool
	for _, t := range tools {
		if !slices.ContainsFunc(client, func(c letta.ClientTool) bool { return c.Name == t.Name }) {
			out = append(out, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.Parameters})
		}
	}
	for _, c := range client {
		params := c.Parameters
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		desc := ""
		if c.Description != nil {
			desc = *c.Description
		}
		out = append(out, llm.Tool{Name: c.Name, Description: desc, Parameters: params})
	}
	return out
}

// LettaJSON is the encoding of Letta() (schema.Encode's).
func (t *Tool) LettaJSON() ([]byte, error) {
	if t.Custom != nil {
		return schema.Encode(t.Custom.Tool)
	}
	return t.lettaJSON, nil
}

// Letta renders the tool as the API lists it.
func (t *Tool) Letta() letta.Tool {
	if t.Custom != nil {
		return t.Custom.Tool
	}
	return letta.Tool{
		ID:              t.builtinID,
		ToolType:        t.Type,
		Description:     new(t.Description),
		SourceType:      new("python"),
		Name:            t.Name,
		Tags:            []string{t.Type},
		JSONSchema:      map[string]any{"name": t.Name, "description": t.Description, "parameters": t.Parameters},
		ReturnCharLimit: MaxResultChars,
		Metadata:        map[string]any{},
	}
}
