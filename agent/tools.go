package agent

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

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
		if t.ID() == id {
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
	return toolsJSON(tools), err
}

// toolsJSON renders tools for an AgentState.
func toolsJSON(tools []*tool.Tool) []any {
	out := make([]any, len(tools))
	for i, t := range tools {
		out[i] = t.Letta()
	}
	return out
}
