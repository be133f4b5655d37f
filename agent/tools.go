package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm"
)

// Built-in tool names.
const (
	toolSendMessage          = "send_message"
	toolCoreMemoryAppend     = "core_memory_append"
	toolCoreMemoryReplace    = "core_memory_replace"
	toolMemoryInsert         = "memory_insert"
	toolMemoryReplace        = "memory_replace"
	toolConversationSearch   = "conversation_search"
	toolArchivalMemoryInsert = "archival_memory_insert"
	toolArchivalMemorySearch = "archival_memory_search"
)

// builtinTool is a tool the server runs, inside the step's invocation.
type builtinTool struct {
	name        string
	toolType    string // Letta's tool_type
	description string
	params      string // JSON Schema of the arguments
}

// The descriptions are Kelpie's own.
var builtinTools = []builtinTool{
	{toolSendMessage, "letta_core",
		"Send a message to the user. This is the only way the user sees what you say; it ends your turn.",
		`{"type":"object","properties":{"message":{"type":"string","description":"The message for the user, in plain text or Markdown."}},"required":["message"]}`},
	{toolCoreMemoryAppend, "letta_memory_core",
		"Add text to the end of one of your memory blocks, on a new line.",
		`{"type":"object","properties":{"label":{"type":"string","description":"Label of the memory block to edit."},"content":{"type":"string","description":"Text to add."}},"required":["label","content"]}`},
	{toolCoreMemoryReplace, "letta_memory_core",
		"Replace every occurrence of some text in one of your memory blocks. Replacing with an empty string deletes the text.",
		`{"type":"object","properties":{"label":{"type":"string","description":"Label of the memory block to edit."},"old_content":{"type":"string","description":"Text to replace; it must appear in the block exactly as given."},"new_content":{"type":"string","description":"Replacement text."}},"required":["label","old_content","new_content"]}`},
	{toolMemoryInsert, "letta_sleeptime_core",
		"Insert text into one of your memory blocks at a line position.",
		`{"type":"object","properties":{"label":{"type":"string","description":"Label of the memory block to edit."},"new_str":{"type":"string","description":"Text to insert; it may span several lines."},"insert_line":{"type":"integer","description":"Line number after which to insert: 0 inserts at the top, -1 (the default) at the end."}},"required":["label","new_str"]}`},
	{toolMemoryReplace, "letta_sleeptime_core",
		"Replace one exact passage of one of your memory blocks with new text. The passage must occur exactly once; include enough surrounding text to make it unique. Do not include line number prefixes.",
		`{"type":"object","properties":{"label":{"type":"string","description":"Label of the memory block to edit."},"old_str":{"type":"string","description":"The exact text to replace."},"new_str":{"type":"string","description":"The text to put in its place; empty to delete it."}},"required":["label","old_str","new_str"]}`},
	{toolConversationSearch, "letta_core",
		"Search your past messages (recall memory), including those no longer in your context, by words they contain. Newest and best matches come first.",
		`{"type":"object","properties":{"query":{"type":"string","description":"Words to look for."},"roles":{"type":"array","items":{"type":"string","enum":["user","assistant","tool"]},"description":"Only messages from these roles."},"limit":{"type":"integer","description":"Most results to return (default 10)."},"start_date":{"type":"string","description":"Only messages from this date on (YYYY-MM-DD or RFC 3339)."},"end_date":{"type":"string","description":"Only messages up to this date (YYYY-MM-DD or RFC 3339)."}},"required":["query"]}`},
	{toolArchivalMemoryInsert, "letta_core",
		"Save a passage to your archival memory: long-term storage outside your context that you can search later. Write it so it makes sense on its own.",
		`{"type":"object","properties":{"content":{"type":"string","description":"The passage to save."},"tags":{"type":"array","items":{"type":"string"},"description":"Optional tags to find it by."}},"required":["content"]}`},
	{toolArchivalMemorySearch, "letta_core",
		"Search your archival memory for passages containing the query's words.",
		`{"type":"object","properties":{"query":{"type":"string","description":"Words to look for."},"tags":{"type":"array","items":{"type":"string"},"description":"Only passages with these tags."},"tag_match_mode":{"type":"string","enum":["any","all"],"description":"Whether passages need any (default) or all of the tags."},"top_k":{"type":"integer","description":"Most results to return (default 10)."},"start_datetime":{"type":"string","description":"Only passages from this time on (YYYY-MM-DD or RFC 3339)."},"end_datetime":{"type":"string","description":"Only passages up to this time (YYYY-MM-DD or RFC 3339)."}},"required":["query"]}`},
}

func lookupBuiltin(name string) (builtinTool, bool) {
	for _, t := range builtinTools {
		if t.name == name {
			return t, true
		}
	}
	return builtinTool{}, false
}

// baseToolNames are the built-in tools an agent type gets by default.
func baseToolNames(agentType string) []string {
	switch agentType {
	case "memgpt_agent":
		return []string{toolSendMessage, toolConversationSearch, toolCoreMemoryAppend, toolCoreMemoryReplace, toolArchivalMemoryInsert, toolArchivalMemorySearch}
	case "memgpt_v2_agent":
		return []string{toolSendMessage, toolConversationSearch, toolMemoryInsert, toolMemoryReplace, toolArchivalMemoryInsert, toolArchivalMemorySearch}
	case "react_agent", "workflow_agent":
		return nil
	}
	return []string{toolConversationSearch, toolMemoryInsert, toolMemoryReplace, toolArchivalMemoryInsert, toolArchivalMemorySearch}
}

// agentToolNames are the built-in tools an agent is offered: its type's base
// tools (unless created with include_base_tools false) and the built-in
// tools it named.
func agentToolNames(rec *agentRecord) []string {
	var names []string
	if rec.IncludeBaseTools == nil || *rec.IncludeBaseTools {
		names = baseToolNames(rec.AgentType)
	}
	for _, n := range rec.ToolNames {
		if _, ok := lookupBuiltin(n); ok && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// ClientTool is a tool the client runs (Letta's ClientToolSchema).
type ClientTool struct {
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// toolsFor lists the tools offered to the model: the agent's built-in ones
// and the request's client tools, which take precedence on a name clash.
func toolsFor(rec *agentRecord, client []ClientTool) []llm.Tool {
	var out []llm.Tool
	clientNames := map[string]bool{}
	for _, c := range client {
		clientNames[c.Name] = true
	}
	for _, n := range agentToolNames(rec) {
		if clientNames[n] {
			continue
		}
		t, _ := lookupBuiltin(n)
		out = append(out, llm.Tool{Name: t.name, Description: t.description, Parameters: json.RawMessage(t.params)})
	}
	for _, c := range client {
		params := c.Parameters
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out = append(out, llm.Tool{Name: c.Name, Description: deref(c.Description), Parameters: params})
	}
	return out
}

// Tool is a tool as the API lists it (Letta's Tool), for the built-in
// tools.
type Tool struct {
	ID                      string         `json:"id"`
	ToolType                string         `json:"tool_type"`
	Description             *string        `json:"description"`
	SourceType              *string        `json:"source_type"`
	Name                    string         `json:"name"`
	Tags                    []string       `json:"tags"`
	SourceCode              *string        `json:"source_code"`
	JSONSchema              map[string]any `json:"json_schema"`
	ArgsJSONSchema          any            `json:"args_json_schema"`
	ReturnCharLimit         int            `json:"return_char_limit"`
	PipRequirements         any            `json:"pip_requirements"`
	NpmRequirements         any            `json:"npm_requirements"`
	DefaultRequiresApproval *bool          `json:"default_requires_approval"`
	EnableParallelExecution bool           `json:"enable_parallel_execution"`
	CreatedByID             *string        `json:"created_by_id"`
	LastUpdatedByID         *string        `json:"last_updated_by_id"`
	Metadata                map[string]any `json:"metadata_"`
	ProjectID               *string        `json:"project_id"`
}

// builtinToolID is the fixed id of a built-in tool.
func builtinToolID(name string) string { return derivedID("tool", "builtin", name) }

func (t builtinTool) render() Tool {
	var params map[string]any
	if err := json.Unmarshal([]byte(t.params), &params); err != nil {
		// The schemas are constants of this package: a bad one is a bug.
		panic(fmt.Sprintf("agent: built-in tool %s has an invalid parameters schema: %v", t.name, err))
	}
	return Tool{
		ID:              builtinToolID(t.name),
		ToolType:        t.toolType,
		Description:     ptr(t.description),
		SourceType:      ptr("python"),
		Name:            t.name,
		Tags:            []string{t.toolType},
		JSONSchema:      map[string]any{"name": t.name, "description": t.description, "parameters": params},
		ReturnCharLimit: 50_000,
		Metadata:        map[string]any{},
	}
}

// BuiltinTools lists every built-in tool.
func BuiltinTools() []Tool {
	out := make([]Tool, len(builtinTools))
	for i, t := range builtinTools {
		out[i] = t.render()
	}
	return out
}

// ---- execution -----------------------------------------------------------------

// errTool is a tool failure reported to the model as an error result; any
// other error aborts the step.
type errTool struct{ msg string }

func (e *errTool) Error() string { return e.msg }

func toolErrorf(format string, args ...any) error {
	return &errTool{msg: fmt.Sprintf(format, args...)}
}

// toolCallEnv is what a built-in tool sees.
type toolCallEnv struct {
	call  *actor.Call
	rec   *agentRecord
	newID func(prefix string) (string, error)
}

// MaxToolResultChars bounds a tool result as stored and shown to the model.
const MaxToolResultChars = 50_000

// runBuiltin runs a built-in tool. It returns the result text and whether
// the tool succeeded; err is a fault that must abort the step.
func runBuiltin(env toolCallEnv, tc storedToolCall) (result string, ok bool, err error) {
	if !slices.Contains(agentToolNames(env.rec), tc.Name) {
		return fmt.Sprintf("Error: there is no tool named %q. Use one of the tools you were given.", tc.Name), false, nil
	}
	args := map[string]json.RawMessage{}
	if strings.TrimSpace(tc.Arguments) != "" {
		if err := json.Unmarshal([]byte(tc.Arguments), &args); err != nil {
			return fmt.Sprintf("Error: the arguments of %s are not a JSON object: %v", tc.Name, err), false, nil
		}
	}
	result, err = dispatchBuiltin(env, tc.Name, argReader(args))
	var te *errTool
	if errors.As(err, &te) {
		return "Error: " + te.msg, false, nil
	}
	if err != nil {
		return "", false, err
	}
	if utf8.RuneCountInString(result) > MaxToolResultChars {
		result = string([]rune(result)[:MaxToolResultChars]) + "\n[result truncated]"
	}
	return result, true, nil
}

// argReader reads typed arguments, reporting bad ones as tool errors.
type argReader map[string]json.RawMessage

func (a argReader) str(name string, required bool) (string, error) {
	v, ok := a[name]
	if !ok || string(v) == "null" {
		if required {
			return "", toolErrorf("missing required argument %q", name)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", toolErrorf("argument %q must be a string", name)
	}
	return s, nil
}

func (a argReader) integer(name string, def int) (int, error) {
	v, ok := a[name]
	if !ok || string(v) == "null" {
		return def, nil
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || f != float64(int(f)) {
		return 0, toolErrorf("argument %q must be an integer", name)
	}
	return int(f), nil
}

func (a argReader) strings(name string) ([]string, error) {
	v, ok := a[name]
	if !ok || string(v) == "null" {
		return nil, nil
	}
	var ss []string
	if err := json.Unmarshal(v, &ss); err != nil {
		return nil, toolErrorf("argument %q must be a list of strings", name)
	}
	return ss, nil
}

func (a argReader) date(name string, endOfDay bool) (*time.Time, error) {
	s, err := a.str(name, false)
	if err != nil || s == "" {
		return nil, err
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return &t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		if endOfDay {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return &t, nil
	}
	return nil, toolErrorf("argument %q: %q is not a date (YYYY-MM-DD) or an RFC 3339 time", name, s)
}

func dispatchBuiltin(env toolCallEnv, name string, a argReader) (string, error) {
	switch name {
	case toolSendMessage:
		if _, err := a.str("message", true); err != nil {
			return "", err
		}
		return "Sent message successfully.", nil
	case toolCoreMemoryAppend:
		label, err := a.str("label", true)
		if err != nil {
			return "", err
		}
		content, err := a.str("content", true)
		if err != nil {
			return "", err
		}
		return editBlock(env, label, func(v string) (string, error) {
			if v == "" {
				return content, nil
			}
			return v + "\n" + content, nil
		})
	case toolCoreMemoryReplace:
		label, err := a.str("label", true)
		if err != nil {
			return "", err
		}
		old, err := a.str("old_content", true)
		if err != nil {
			return "", err
		}
		repl, err := a.str("new_content", false)
		if err != nil {
			return "", err
		}
		return editBlock(env, label, func(v string) (string, error) {
			if old == "" || !strings.Contains(v, old) {
				return "", toolErrorf("the text to replace does not occur in memory block %q", label)
			}
			return strings.ReplaceAll(v, old, repl), nil
		})
	case toolMemoryInsert:
		label, err := a.str("label", true)
		if err != nil {
			return "", err
		}
		text, err := a.str("new_str", true)
		if err != nil {
			return "", err
		}
		at, err := a.integer("insert_line", -1)
		if err != nil {
			return "", err
		}
		return editBlock(env, label, func(v string) (string, error) {
			var lines []string
			if v != "" {
				lines = strings.Split(v, "\n")
			}
			if at == -1 {
				at = len(lines)
			}
			if at < 0 || at > len(lines) {
				return "", toolErrorf("insert_line %d is out of range: memory block %q has %d lines (use 0 to %d, or -1 for the end)", at, label, len(lines), len(lines))
			}
			lines = slices.Insert(lines, at, strings.Split(text, "\n")...)
			return strings.Join(lines, "\n"), nil
		})
	case toolMemoryReplace:
		label, err := a.str("label", true)
		if err != nil {
			return "", err
		}
		old, err := a.str("old_str", true)
		if err != nil {
			return "", err
		}
		repl, err := a.str("new_str", false)
		if err != nil {
			return "", err
		}
		return editBlock(env, label, func(v string) (string, error) {
			switch n := strings.Count(v, old); {
			case old == "" || n == 0:
				return "", toolErrorf("old_str does not occur in memory block %q; copy it exactly as it appears", label)
			case n > 1:
				return "", toolErrorf("old_str occurs %d times in memory block %q; include more surrounding text so that it occurs once", n, label)
			}
			return strings.Replace(v, old, repl, 1), nil
		})
	case toolConversationSearch:
		return conversationSearch(env, a)
	case toolArchivalMemoryInsert:
		content, err := a.str("content", true)
		if err != nil {
			return "", err
		}
		tags, err := a.strings("tags")
		if err != nil {
			return "", err
		}
		if strings.TrimSpace(content) == "" {
			return "", toolErrorf("content must not be empty")
		}
		if utf8.RuneCountInString(content) > MaxPassageChars {
			return "", toolErrorf("content is over the limit of %d characters", MaxPassageChars)
		}
		if err := checkTags("tags", tags); err != nil {
			return "", toolErrorf("%v", err)
		}
		id, err := env.newID("passage")
		if err != nil {
			return "", err
		}
		if _, err := insertPassage(env.call, env.rec.ID, passagePayload{ID: id, Text: content, Tags: tags}); err != nil {
			return "", err
		}
		return "Saved to archival memory.", nil
	case toolArchivalMemorySearch:
		query, err := a.str("query", true)
		if err != nil {
			return "", err
		}
		tags, err := a.strings("tags")
		if err != nil {
			return "", err
		}
		mode, err := a.str("tag_match_mode", false)
		if err != nil {
			return "", err
		}
		topK, err := a.integer("top_k", DefaultArchivalTopK)
		if err != nil {
			return "", err
		}
		if topK < 1 || topK > MaxArchivalSearchTopK {
			return "", toolErrorf("top_k must be from 1 to %d", MaxArchivalSearchTopK)
		}
		start, err := a.date("start_datetime", false)
		if err != nil {
			return "", err
		}
		end, err := a.date("end_datetime", true)
		if err != nil {
			return "", err
		}
		ps, err := allPassages(env.call.Txn, env.rec.ID)
		if err != nil {
			return "", err
		}
		res := searchPassages(ps, ArchivalSearch{Query: query, Tags: tags, TagMatchAll: mode == "all", TopK: topK, Start: start, End: end, TimezoneName: env.rec.Timezone})
		data, err := marshal(res)
		return string(data), err
	}
	return "", toolErrorf("tool %s is not implemented", name)
}

// editBlock changes the value of the agent's block with label.
func editBlock(env toolCallEnv, label string, edit func(string) (string, error)) (string, error) {
	blocks, err := agentBlocks(env.call.Txn, env.rec.ID)
	if err != nil {
		return "", err
	}
	for _, ab := range blocks {
		b := ab.block
		if b.Label != label {
			continue
		}
		if b.ReadOnly {
			return "", toolErrorf("memory block %q is read-only", label)
		}
		v, err := edit(b.Value)
		if err != nil {
			return "", err
		}
		if err := applyBlockUpdate(env.call.Txn, b, BlockUpdate{Value: &v}, env.call.Now); err != nil {
			if KindOf(err) != 0 {
				return "", toolErrorf("%v", err)
			}
			return "", err
		}
		return fmt.Sprintf("Memory block %q updated; it now holds %d of its %d characters.", label, utf8.RuneCountInString(v), b.Limit), nil
	}
	labels := make([]string, len(blocks))
	for i, ab := range blocks {
		labels[i] = ab.block.Label
	}
	return "", toolErrorf("there is no memory block labelled %q (you have: %s)", label, strings.Join(labels, ", "))
}

// maxSearchScan bounds how many messages conversation_search reads.
const maxSearchScan = 10_000

type searchHit struct {
	Timestamp string `json:"timestamp"`
	Role      string `json:"role"`
	Content   string `json:"content"`
}

func conversationSearch(env toolCallEnv, a argReader) (string, error) {
	query, err := a.str("query", true)
	if err != nil {
		return "", err
	}
	roles, err := a.strings("roles")
	if err != nil {
		return "", err
	}
	limit, err := a.integer("limit", 10)
	if err != nil {
		return "", err
	}
	if limit < 1 || limit > 100 {
		return "", toolErrorf("limit must be from 1 to 100")
	}
	start, err := a.date("start_date", false)
	if err != nil {
		return "", err
	}
	end, err := a.date("end_date", true)
	if err != nil {
		return "", err
	}
	loc, lerr := time.LoadLocation(env.rec.Timezone)
	if lerr != nil {
		loc = time.UTC
	}
	words := strings.Fields(strings.ToLower(query))
	type hit struct {
		m     *messageRecord
		score int
	}
	var hits []hit
	scanned := 0
	err = scanEach(env.call.Txn, kv.PrefixRange(msgPrefix(env.rec.ID)), true, func(key []byte) (bool, error) {
		scanned++
		data, err := env.call.Txn.Get(key)
		if err != nil {
			return false, err
		}
		m, err := decodeMessage(data)
		if err != nil {
			return false, err
		}
		text := messageSearchText(m)
		if text == "" || len(roles) > 0 && !slices.Contains(roles, m.Role) ||
			start != nil && m.CreatedAt.Before(*start) || end != nil && m.CreatedAt.After(*end) {
			return scanned < maxSearchScan, nil
		}
		lower := strings.ToLower(text)
		score := 0
		for _, w := range words {
			if strings.Contains(lower, w) {
				score++
			}
		}
		if score > 0 || len(words) == 0 {
			hits = append(hits, hit{m, score})
		}
		return scanned < maxSearchScan, nil
	})
	if err != nil {
		return "", err
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].score > hits[j].score })
	out := []searchHit{}
	for _, h := range hits {
		if len(out) == limit {
			break
		}
		text := messageSearchText(h.m)
		if n := utf8.RuneCountInString(text); n > 2000 {
			text = string([]rune(text)[:2000]) + "…"
		}
		out = append(out, searchHit{Timestamp: h.m.CreatedAt.In(loc).Format("2006-01-02 03:04:05 PM MST-0700"), Role: h.m.Role, Content: text})
	}
	data, err := marshal(map[string]any{"results": out, "count": len(out)})
	return string(data), err
}

// messageSearchText is the text of a message that searches look at.
func messageSearchText(m *messageRecord) string {
	text := m.Text
	for _, tc := range m.ToolCalls {
		if tc.Name == toolSendMessage {
			var args struct {
				Message string `json:"message"`
			}
			if json.Unmarshal([]byte(tc.Arguments), &args) == nil {
				text = strings.TrimSpace(text + "\n" + args.Message)
			}
		}
	}
	return text
}

// AgentTools lists the built-in tools an agent is offered.
func (s *Service) AgentTools(ctx context.Context, agentID string) ([]Tool, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	out := []Tool{}
	err := s.read(ctx, func(txn kv.Txn) error {
		out = out[:0] // read may run this again
		rec, err := readAgent(txn, agentID)
		if err != nil {
			return err
		}
		for _, n := range agentToolNames(rec) {
			t, _ := lookupBuiltin(n)
			out = append(out, t.render())
		}
		return nil
	})
	return out, err
}

// Model is a model as GET /v1/models lists it (Letta's Model: an llm_config
// with the model's handle and names).
type Model struct {
	Handle       string `json:"handle"`
	Name         string `json:"name"`
	DisplayName  string `json:"display_name"`
	ProviderType string `json:"provider_type"`
	ProviderName string `json:"provider_name"`
	ModelType    string `json:"model_type"`
	LLMConfig
	MaxContextWindow int `json:"max_context_window"`
}

// Models lists the models the configured providers serve (see ListModels)
// in Letta's shape.
func (s *Service) Models(ctx context.Context) []Model {
	out := []Model{}
	for _, mi := range s.ListModels(ctx) {
		provider, name := mi.Provider, mi.Name
		if provider == "" || name == "" {
			provider, name, _ = strings.Cut(mi.Handle, "/")
		}
		var window *int
		if mi.ContextWindow > 0 {
			window = ptr(min(mi.ContextWindow, MaxContextWindow))
		}
		cfg, err := llmConfigFor(mi.Handle, window)
		if err != nil {
			cw := DefaultContextWindow
			if window != nil {
				cw = *window
			}
			cfg = LLMConfig{Model: name, ModelEndpointType: provider, ProviderName: ptr(provider),
				ProviderCategory: ptr("base"), ContextWindow: cw, Handle: ptr(mi.Handle), Temperature: 1.0}
		}
		out = append(out, Model{
			Handle: mi.Handle, Name: name, DisplayName: name, ProviderType: provider, ProviderName: provider,
			ModelType: "llm", LLMConfig: cfg, MaxContextWindow: cfg.ContextWindow,
		})
	}
	return out
}
