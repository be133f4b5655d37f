package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Tools is the surface of tools: the built-in ones, which always exist,
// and custom ones made from Python source, stored and shared by agents.
type Tools struct{ c *core }

// DefaultToolListLimit is Letta's default page size for tools.
const DefaultToolListLimit = 50

// toolNamePattern is what a tool's name may be: a function name the model
// providers accept.
var toolNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Upsert creates a tool from Python source, or updates the tool of the
// same name, as Letta's POST and PUT /v1/tools both do. The JSON schema is
// the one given, or derived from the source.
func (s *Tools) Upsert(ctx context.Context, req letta.ToolCreate) (*letta.Tool, error) {
	if err := checkToolCreate(req); err != nil {
		return nil, err
	}
	js := req.JSONSchema
	if js == nil {
		var err error
		if js, err = s.derive(ctx, *req.SourceCode); err != nil {
			return nil, err
		}
	}
	name, err := schemaName(js)
	if err != nil {
		return nil, err
	}
	if _, builtin := tool.Lookup(name); builtin {
		return nil, letta.Invalidf("Tool name '%s' is the name of a built-in tool; choose another function name", name)
	}
	p := upsertTool{Req: req, Schema: js, Name: name}
	// A concurrent create of the same name may win between the lookup and
	// the commit: the op then refuses, and the next attempt updates it.
	for attempt := 0; ; attempt++ {
		var id string
		err := s.c.read(ctx, func(txn kv.Txn) (err error) {
			id, err = schema.ToolIDByName(txn, name)
			return err
		})
		if err != nil {
			return nil, err
		}
		if id == "" {
			if id, err = s.c.newID("tool"); err != nil {
				return nil, err
			}
		}
		var out letta.Tool
		err = s.c.invoke(ctx, schema.ToolActor(id), opUpsertTool, p, &out)
		if letta.KindOf(err) == letta.KindContended && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &out, nil
	}
}

// derive asks the runner for the schema of source.
func (s *Tools) derive(ctx context.Context, source string) (map[string]any, error) {
	if s.c.tools == nil {
		return nil, &letta.Error{Kind: letta.KindUnavailable, Message: "this server cannot derive a tool's JSON schema from Python source (no tool runner is configured): send json_schema with the tool"}
	}
	js, err := s.c.tools.Derive(ctx, source)
	var de *tool.DeriveError
	if errors.As(err, &de) {
		return nil, letta.Invalidf("%s", de.Error())
	}
	return js, err
}

func checkToolCreate(req letta.ToolCreate) error {
	if req.SourceCode == nil {
		return letta.Invalidf("source_code is required")
	}
	if err := letta.CheckChars("source_code", *req.SourceCode, letta.MaxSourceCodeChars); err != nil {
		return err
	}
	if req.SourceType != nil && *req.SourceType != "python" {
		return letta.Invalidf("source_type %q: Kelpie runs Python tools only", letta.Clip(*req.SourceType))
	}
	return checkToolFields(req.Description, req.Tags, req.ReturnCharLimit)
}

func checkToolFields(description *string, tags []string, limit *int) error {
	if description != nil {
		if err := letta.CheckChars("description", *description, letta.MaxDescriptionChars); err != nil {
			return err
		}
	}
	if err := letta.CheckTags("tags", tags); err != nil {
		return err
	}
	if limit != nil && (*limit < 1 || *limit > letta.MaxReturnCharLimit) {
		return letta.Invalidf("return_char_limit %d is out of range: want 1 to %d", *limit, letta.MaxReturnCharLimit)
	}
	return nil
}

// schemaName returns the function name a tool's JSON schema gives.
func schemaName(js map[string]any) (string, error) {
	name, _ := js["name"].(string)
	if name == "" {
		return "", letta.Invalidf("json_schema has no name")
	}
	if len(name) > letta.MaxToolNameChars || !toolNamePattern.MatchString(name) {
		return "", letta.Invalidf("Tool name %q is not a valid function name (letters, digits and underscores, at most %d characters)", letta.Clip(name), letta.MaxToolNameChars)
	}
	if p, ok := js["parameters"]; ok && p != nil {
		if m, ok := p.(map[string]any); !ok || m["type"] != "object" {
			return "", letta.Invalidf("json_schema.parameters must be a JSON Schema object (type object)")
		}
	}
	return name, nil
}

// Get returns a tool, built-in or custom.
func (s *Tools) Get(ctx context.Context, id string) (*letta.Tool, error) {
	if err := letta.CheckID("tool_id", "tool", id); err != nil {
		return nil, err
	}
	if t := builtinByID(id); t != nil {
		lt := t.Letta()
		return &lt, nil
	}
	var out *letta.Tool
	err := s.c.read(ctx, func(txn kv.Txn) error {
		t, err := schema.GetTool(txn, id)
		if err == nil {
			out = &t.Tool
		}
		return err
	})
	return out, err
}

// builtinByID returns the built-in tool with id, or nil.
func builtinByID(id string) *tool.Tool {
	for _, t := range tool.Builtins() {
		if t.Letta().ID == id {
			return t
		}
	}
	return nil
}

// Update applies a PATCH to a custom tool.
func (s *Tools) Update(ctx context.Context, id string, u letta.ToolUpdate) (*letta.Tool, error) {
	if err := s.checkCustom(id); err != nil {
		return nil, err
	}
	var tags []string
	if u.Tags != nil {
		tags = *u.Tags
	}
	if err := checkToolFields(u.Description, tags, u.ReturnCharLimit); err != nil {
		return nil, err
	}
	if u.SourceCode != nil {
		if err := letta.CheckChars("source_code", *u.SourceCode, letta.MaxSourceCodeChars); err != nil {
			return nil, err
		}
	}
	if u.Metadata != nil {
		if err := letta.CheckMetadata(*u.Metadata); err != nil {
			return nil, err
		}
	}
	if u.JSONSchema != nil {
		name, err := schemaName(u.JSONSchema)
		if err != nil {
			return nil, err
		}
		if _, builtin := tool.Lookup(name); builtin {
			return nil, letta.Invalidf("Tool name '%s' is the name of a built-in tool", name)
		}
	}
	var out letta.Tool
	if err := s.c.invoke(ctx, schema.ToolActor(id), opUpdateTool, u, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Delete detaches a custom tool from every agent and deletes it.
func (s *Tools) Delete(ctx context.Context, id string) error {
	if err := s.checkCustom(id); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.ToolActor(id), opDeleteTool, nil, nil)
}

// checkCustom validates the id of a tool to change: built-in tools are
// part of the server and do not change.
func (s *Tools) checkCustom(id string) error {
	if err := letta.CheckID("tool_id", "tool", id); err != nil {
		return err
	}
	if t := builtinByID(id); t != nil {
		return letta.Invalidf("tool %s (%s) is built in to Kelpie and cannot be changed or deleted", id, t.Name)
	}
	return nil
}

// ToolFilter narrows a listing or count of tools.
type ToolFilter struct {
	Names        []string // any of these names
	IDs          []string // any of these ids
	Search       string   // a case-insensitive part of the name
	Types        []string // any of these tool types
	ExcludeTypes []string
	OnlyLetta    bool // only built-in (letta_*) tools
	ExcludeLetta bool
}

func (f ToolFilter) match(t *letta.Tool) bool {
	builtin := strings.HasPrefix(t.ToolType, "letta_")
	switch {
	case len(f.Names) > 0 && !slices.Contains(f.Names, t.Name),
		len(f.IDs) > 0 && !slices.Contains(f.IDs, t.ID),
		f.Search != "" && !strings.Contains(strings.ToLower(t.Name), strings.ToLower(f.Search)),
		len(f.Types) > 0 && !slices.Contains(f.Types, t.ToolType),
		slices.Contains(f.ExcludeTypes, t.ToolType),
		f.OnlyLetta && !builtin, f.ExcludeLetta && builtin:
		return false
	}
	return true
}

// listedTool is a tool with the key that orders it in listings: by
// creation time, built-in tools first (they exist before any custom one).
type listedTool struct {
	key  string
	tool letta.Tool
}

func listed(t *tool.Tool) listedTool {
	created := time.Unix(0, 0)
	if t.Custom != nil {
		created = t.Custom.CreatedAt
	}
	lt := t.Letta()
	return listedTool{string(schema.IndexKey("", created, lt.ID)), lt}
}

// allTools lists every tool, built-in and custom, in creation order.
func allTools(txn kv.Txn) ([]listedTool, error) {
	var out []listedTool
	for _, t := range tool.Builtins() {
		out = append(out, listed(t))
	}
	err := kv.ScanEach(txn, kv.PrefixRange([]byte(schema.ToolIndex.Prefix)), false, func(e kv.KeyValue) (bool, error) {
		t, err := schema.GetTool(txn, schema.LastPart(e.Key))
		if err != nil {
			return false, schema.Dangling(err, "index entry %q", e.Key)
		}
		out = append(out, listed(tool.FromCustom(t)))
		return true, nil
	})
	slices.SortFunc(out, func(x, y listedTool) int { return strings.Compare(x.key, y.key) })
	return out, err
}

// pageOfTools applies a page (cursors by tool id) to tools in creation
// order; an unknown cursor is ignored, as Letta does.
func pageOfTools(tools []listedTool, p letta.Page) []letta.Tool {
	if p.Order == letta.Desc {
		tools = slices.Clone(tools)
		slices.Reverse(tools)
	}
	keys := make([]string, len(tools))
	byKey := map[string]letta.Tool{}
	cursors := map[string]string{}
	for i, t := range tools {
		keys[i] = t.key
		byKey[t.key] = t.tool
		cursors[t.tool.ID] = t.key
	}
	page := letta.Page{Before: cursors[p.Before], After: cursors[p.After], Limit: p.Limit, Order: p.Order}
	out := []letta.Tool{}
	for _, k := range pageOfIDs(keys, page) {
		out = append(out, byKey[k])
	}
	return out
}

// List lists tools by creation time (built-in ones first), one page.
func (s *Tools) List(ctx context.Context, f ToolFilter, p letta.Page) ([]letta.Tool, error) {
	p, err := checkPage(p, DefaultToolListLimit)
	if err != nil {
		return nil, err
	}
	var out []letta.Tool
	err = s.c.read(ctx, func(txn kv.Txn) error {
		all, err := allTools(txn)
		out = pageOfTools(filterTools(all, f), p)
		return err
	})
	return out, err
}

func filterTools(all []listedTool, f ToolFilter) []listedTool {
	return slices.DeleteFunc(all, func(t listedTool) bool { return !f.match(&t.tool) })
}

// Count counts the tools a listing with f would return.
func (s *Tools) Count(ctx context.Context, f ToolFilter) (int, error) {
	var n int
	err := s.c.read(ctx, func(txn kv.Txn) error {
		all, err := allTools(txn)
		n = len(filterTools(all, f))
		return err
	})
	return n, err
}

// All lists every built-in tool: what add-base-tools answers.
func (s *Tools) All(context.Context) []letta.Tool {
	out := []letta.Tool{}
	for _, t := range tool.Builtins() {
		out = append(out, t.Letta())
	}
	return out
}

// ForAgent lists the tools an agent is offered, one page.
func (s *Tools) ForAgent(ctx context.Context, agentID string, p letta.Page) ([]letta.Tool, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultToolListLimit)
	if err != nil {
		return nil, err
	}
	var out []letta.Tool
	err = s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return err
		}
		tools, err := offeredTools(txn, a)
		if err != nil {
			return err
		}
		ls := make([]listedTool, len(tools))
		for i, t := range tools {
			ls[i] = listed(t)
		}
		slices.SortFunc(ls, func(x, y listedTool) int { return strings.Compare(x.key, y.key) })
		out = pageOfTools(ls, p)
		return nil
	})
	return out, err
}

// offeredTools are the tools agent a is offered.
func offeredTools(txn kv.Txn, a *schema.Agent) ([]*tool.Tool, error) {
	custom, err := schema.AgentCustomTools(txn, a.ID)
	if err != nil {
		return nil, err
	}
	return tool.Offered(a, custom), nil
}

// agentToolsJSON renders an agent's tools for its AgentState.
func agentToolsJSON(txn kv.Txn, a *schema.Agent) ([]any, error) {
	tools, err := offeredTools(txn, a)
	out := make([]any, len(tools))
	for i, t := range tools {
		out[i] = t.Letta()
	}
	return out, err
}

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
	oldName := t.Name
	if u.JSONSchema != nil {
		t.JSONSchema = u.JSONSchema
		t.Name, _ = u.JSONSchema["name"].(string)
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
	err := s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return err
		}
		tools, err := offeredTools(txn, a)
		found = tool.Find(tools, name)
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
	if s.c.tools == nil {
		return nil, errNoRunner
	}
	data, err := schema.Encode(nonNilMap(args))
	if err != nil {
		return nil, err
	}
	source := ""
	if found.Custom.SourceCode != nil {
		source = *found.Custom.SourceCode
	}
	out := s.c.tools.Run(ctx, tool.Job{Source: source, Name: name, Args: data})
	res := &ToolExecutionResult{Status: "success", FuncReturn: tool.Truncate(out.Result, found.Custom.ReturnCharLimit),
		Stdout: message.Lines(out.Stdout), Stderr: message.Lines(out.Stderr)}
	if !out.OK {
		res.Status = "error"
	}
	return res, nil
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// renderToolReturn renders the outcome of a run from source as Letta answers it.
func renderToolReturn(now time.Time, name string, out tool.Outcome) *letta.ToolReturnMessage {
	status := "success"
	if !out.OK {
		status = "error"
	}
	m := &letta.ToolReturnMessage{
		MessageBase: letta.MessageBase{ID: "null", Date: letta.MessageDate{Time: now.UTC()}, Name: &name, MessageType: letta.TypeToolReturn},
		ToolReturn:  out.Result, Status: status, ToolCallID: "null", Stdout: message.Lines(out.Stdout), Stderr: message.Lines(out.Stderr),
	}
	m.ToolReturns = []letta.ToolReturn{{Type: "tool", ToolReturn: m.ToolReturn, Status: status, ToolCallID: "null", Stdout: m.Stdout, Stderr: m.Stderr}}
	return m
}
