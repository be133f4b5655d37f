package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kelpie/kelpie/llm"
)

// Anthropic Messages wire types (the parts the double reads).
type anRequest struct {
	Model      string          `json:"model"`
	MaxTokens  *int            `json:"max_tokens"`
	Messages   []anMessage     `json:"messages"`
	System     json.RawMessage `json:"system"`
	Tools      []anTool        `json:"tools"`
	ToolChoice *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
	Stream *bool `json:"stream"`
}

type anMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

type anTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// anFields are the request fields Anthropic knows; it rejects others.
var anFields = map[string]bool{
	"model": true, "messages": true, "max_tokens": true, "system": true, "tools": true,
	"tool_choice": true, "stream": true, "temperature": true, "top_p": true, "top_k": true,
	"stop_sequences": true, "metadata": true, "thinking": true, "service_tier": true,
	"container": true, "mcp_servers": true, "context_management": true, "output_config": true,
	"inference_geo": true, "cache_control": true, "speed": true, "diagnostics": true,
}

var (
	anToolIDRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	anToolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
)

// anBlocks reads a message's content: a string or an array of blocks.
func anBlocks(raw json.RawMessage) ([]anBlock, error) {
	raw = bytes.TrimSpace(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []anBlock{{Type: "text", Text: &s}}, nil
	}
	var blocks []anBlock
	if err := json.Unmarshal(raw, &blocks); err != nil || blocks == nil {
		return nil, fmt.Errorf("Input should be a valid list")
	}
	return blocks, nil
}

// anText reads text content: a string or an array of text blocks.
func anText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	blocks, err := anBlocks(raw)
	if err != nil {
		return "", err
	}
	var texts []string
	for _, b := range blocks {
		if b.Type != "text" || b.Text == nil {
			return "", fmt.Errorf("expected text blocks")
		}
		texts = append(texts, *b.Text)
	}
	return strings.Join(texts, "\n"), nil
}

// decodeAnthropic decodes and validates a Messages request body.
func decodeAnthropic(body []byte) Request {
	req := Request{API: Anthropic, Body: json.RawMessage(body)}
	reject := func(format string, args ...any) Request {
		req.Rejected = fmt.Sprintf(format, args...)
		return req
	}
	unknown, err := unknownFields(body, anFields)
	if err != nil {
		return reject("There was an issue with your request body: %v", err)
	}
	if len(unknown) > 0 {
		return reject("%s: Extra inputs are not permitted", strings.Join(unknown, ", "))
	}
	var in anRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return reject("invalid request body: %v", err)
	}
	req.Model = in.Model
	req.Stream = in.Stream != nil && *in.Stream
	if in.MaxTokens != nil {
		req.MaxTokens, req.MaxTokensField = *in.MaxTokens, "max_tokens"
	}
	for _, t := range in.Tools {
		req.Tools = append(req.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: t.InputSchema})
	}
	if in.ToolChoice != nil {
		switch in.ToolChoice.Type {
		case "any":
			req.ToolChoice = "required"
		case "tool":
			req.ToolChoice = in.ToolChoice.Name
		default:
			req.ToolChoice = in.ToolChoice.Type
		}
	}
	sys, err := anText(in.System)
	if err != nil {
		return reject("system: %v", err)
	}
	req.System = sys

	// Decode messages, validating blocks on the way.
	decoded := make([][]anBlock, len(in.Messages))
	for i, m := range in.Messages {
		blocks, err := anBlocks(m.Content)
		if err != nil {
			return reject("messages.%d.content: %v", i, err)
		}
		decoded[i] = blocks
		msg := Message{Role: m.Role}
		var texts []string
		for _, b := range blocks {
			switch b.Type {
			case "text":
				if b.Text != nil {
					texts = append(texts, *b.Text)
				}
			case "tool_use":
				msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(b.Input)})
			case "tool_result":
				content, err := anText(b.Content)
				if err != nil {
					return reject("messages.%d.content: tool_result content: %v", i, err)
				}
				msg.ToolResults = append(msg.ToolResults, ToolResult{ToolCallID: b.ToolUseID, Content: content, IsError: b.IsError})
			}
		}
		msg.Content = strings.Join(texts, "\n")
		req.Messages = append(req.Messages, msg)
	}

	if in.Model == "" {
		return reject("model: Field required")
	}
	if in.MaxTokens == nil {
		return reject("max_tokens: Field required")
	}
	if *in.MaxTokens < 1 {
		return reject("max_tokens: Input should be greater than or equal to 1")
	}
	if len(in.Messages) == 0 {
		return reject("messages: at least one message is required")
	}
	names := map[string]bool{}
	for i, t := range in.Tools {
		if t.Type != "" && t.Type != "custom" {
			continue // a server tool; not checked
		}
		if !anToolNameRE.MatchString(t.Name) {
			return reject("tools.%d.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i)
		}
		if names[t.Name] {
			return reject("tools: Tool names must be unique.")
		}
		names[t.Name] = true
		var schema map[string]any
		if json.Unmarshal(t.InputSchema, &schema) != nil || schema == nil {
			return reject("tools.%d.custom.input_schema: Field required", i)
		}
		if schema["type"] != "object" {
			return reject("tools.%d.custom.input_schema.type: Input should be 'object'", i)
		}
	}
	if tc := in.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "none":
		case "any":
			if len(in.Tools) == 0 {
				return reject("tool_choice.any: tool_choice may only be specified while providing tools.")
			}
		case "tool":
			if !names[tc.Name] {
				return reject("tool_choice.tool: tool %q not found in tools", tc.Name)
			}
		default:
			return reject("tool_choice: Input tag '%s' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'", tc.Type)
		}
	}
	var prevToolUses []string
	for i, m := range in.Messages {
		blocks := decoded[i]
		last := i == len(in.Messages)-1
		switch m.Role {
		case "user", "assistant":
		default:
			return reject("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		if i == 0 && m.Role != "user" {
			return reject("messages: first message must use the \"user\" role")
		}
		if i > 0 && in.Messages[i-1].Role == m.Role {
			return reject("messages: roles must alternate between \"user\" and \"assistant\", but found multiple %q roles in a row", m.Role)
		}
		if len(blocks) == 0 && !(last && m.Role == "assistant") {
			return reject("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
		}
		var toolUses, results []string
		seenOther := false
		for j, b := range blocks {
			switch b.Type {
			case "text":
				if b.Text == nil {
					return reject("messages.%d.content.%d.text: Field required", i, j)
				}
				if strings.TrimSpace(*b.Text) == "" && !(last && m.Role == "assistant" && len(blocks) == 1 && *b.Text == "") {
					return reject("messages: text content blocks must contain non-whitespace text")
				}
				seenOther = true
			case "tool_use":
				if m.Role != "assistant" {
					return reject("messages.%d.content.%d: tool_use blocks may only appear in assistant messages", i, j)
				}
				if !anToolIDRE.MatchString(b.ID) {
					return reject("messages.%d.content.%d.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'", i, j)
				}
				if b.Name == "" {
					return reject("messages.%d.content.%d.tool_use.name: Field required", i, j)
				}
				var obj map[string]any
				if json.Unmarshal(b.Input, &obj) != nil || obj == nil {
					return reject("messages.%d.content.%d.tool_use.input: Input should be a valid dictionary", i, j)
				}
				toolUses = append(toolUses, b.ID)
				seenOther = true
			case "tool_result":
				if m.Role != "user" {
					return reject("messages.%d.content.%d: tool_result blocks may only appear in user messages", i, j)
				}
				if seenOther {
					return reject("messages.%d: tool_result blocks must come first in the content array, before any other content", i)
				}
				if b.ToolUseID == "" {
					return reject("messages.%d.content.%d.tool_result.tool_use_id: Field required", i, j)
				}
				results = append(results, b.ToolUseID)
			case "image", "document", "thinking", "redacted_thinking", "search_result":
				seenOther = true
			default:
				return reject("messages.%d.content.%d: Input tag '%s' found using 'type' does not match any of the expected tags", i, j, b.Type)
			}
		}
		if last && m.Role == "assistant" && len(blocks) > 0 {
			if b := blocks[len(blocks)-1]; b.Type == "text" && b.Text != nil && *b.Text != strings.TrimRight(*b.Text, " \t\r\n") {
				return reject("messages: final assistant content cannot end with trailing whitespace")
			}
		}
		// Tool results must answer the previous message's tool uses, and
		// all of them.
		for _, id := range results {
			if indexOf(prevToolUses, id) < 0 {
				return reject("messages.%d.content: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, id)
			}
		}
		var missing []string
		for _, id := range prevToolUses {
			if indexOf(results, id) < 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return reject("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i-1, strings.Join(missing, ", "))
		}
		prevToolUses = toolUses
	}
	if len(prevToolUses) > 0 {
		return reject("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", len(in.Messages)-1, strings.Join(prevToolUses, ", "))
	}
	return req
}

func anthropicError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("request-id", "req_llmtest")
	writeJSON(w, status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}, "request_id": "req_llmtest"})
}

func anthropicErrorFor(rep Reply) (typ, msg string) {
	switch rep.Status {
	case 400:
		typ, msg = "invalid_request_error", "Invalid request."
	case 401:
		typ, msg = "authentication_error", "invalid x-api-key"
	case 403:
		typ, msg = "permission_error", "Your API key does not have permission to use the specified resource."
	case 404:
		typ, msg = "not_found_error", "The requested resource could not be found."
	case 413:
		typ, msg = "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case 429:
		typ, msg = "rate_limit_error", "Number of requests has exceeded your rate limit."
	case 504:
		typ, msg = "timeout_error", "Request timed out."
	case 529:
		typ, msg = "overloaded_error", "Overloaded"
	default:
		typ, msg = "api_error", "Internal server error"
		if rep.Status < 500 {
			typ, msg = "invalid_request_error", "Invalid request."
		}
	}
	if rep.ErrorCode != "" {
		typ = rep.ErrorCode
	}
	if rep.ErrorMessage != "" {
		msg = rep.ErrorMessage
	}
	return typ, msg
}

func anthropicStop(r llm.StopReason) string {
	switch r {
	case llm.StopEndTurn:
		return "end_turn"
	case llm.StopToolCalls:
		return "tool_use"
	case llm.StopMaxTokens:
		return "max_tokens"
	}
	return string(r)
}

func (s *Server) serveAnthropic(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req Request
	defer func() { s.served(req, start) }()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req = decodeAnthropic(body)
	req.Method, req.Path, req.Header, req.APIKey = r.Method, r.URL.Path, r.Header.Clone(), apiKey(r.Header)
	if req.Rejected == "" && r.Header.Get("anthropic-version") == "" {
		req.Rejected = "anthropic-version: header is required"
	}
	if req.Rejected == "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		req.Rejected = "Content-Type must be application/json"
	}
	rep, ok := s.record(req)
	if !ok {
		s.t.Logf("llmtest: rejected Anthropic request: %s", req.Rejected)
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", req.Rejected)
		return
	}
	rep = s.normalize(rep, "toolu_llmtest")
	if !s.wait(r.Context(), rep.Delay) {
		return
	}
	if rep.Status >= 400 && !(rep.MidStream && req.Stream) {
		setRetryAfter(w, rep.RetryAfter)
		typ, msg := anthropicErrorFor(rep)
		anthropicError(w, rep.Status, typ, msg)
		return
	}
	id := fmt.Sprintf("msg_llmtest%d", s.nextID())
	u := usage(rep, body)
	usageJSON := func(out int) map[string]any {
		return map[string]any{
			"input_tokens": u.PromptTokens, "output_tokens": out,
			"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "service_tier": "standard",
		}
	}
	inputs := make([]json.RawMessage, len(rep.ToolCalls))
	for i, c := range rep.ToolCalls {
		inputs[i] = json.RawMessage(c.Arguments)
		if !req.Stream && !json.Valid(inputs[i]) {
			s.t.Errorf("llmtest: scripted tool call %q has arguments that are not JSON, which Anthropic cannot send unstreamed: %s", c.Name, c.Arguments)
			inputs[i] = json.RawMessage("{}")
		}
	}

	if !req.Stream {
		content := []any{}
		if rep.Reasoning != "" {
			content = append(content, map[string]any{"type": "thinking", "thinking": rep.Reasoning, "signature": "sig_llmtest"})
		}
		if rep.Text != "" {
			content = append(content, map[string]any{"type": "text", "text": rep.Text})
		}
		for i, c := range rep.ToolCalls {
			content = append(content, map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": inputs[i]})
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": content,
			"stop_reason": anthropicStop(rep.StopReason), "stop_sequence": nil, "usage": usageJSON(u.CompletionTokens),
		})
		return
	}

	e := newSSE(s, w, r, rep.ChunkDelay)
	if !e.send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": req.Model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": usageJSON(1),
	}}) {
		return
	}
	index := 0
	block := func(start map[string]any, deltas []map[string]any) bool {
		if !e.send("content_block_start", map[string]any{"type": "content_block_start", "index": index, "content_block": start}) {
			return false
		}
		if index == 0 && !e.send("ping", map[string]any{"type": "ping"}) {
			return false
		}
		for _, d := range deltas {
			if !e.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": d}) {
				return false
			}
		}
		ok := e.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
		index++
		return ok
	}
	if rep.Reasoning != "" {
		var ds []map[string]any
		for _, part := range chunks(rep.Reasoning, rep.ChunkSize) {
			ds = append(ds, map[string]any{"type": "thinking_delta", "thinking": part})
		}
		ds = append(ds, map[string]any{"type": "signature_delta", "signature": "sig_llmtest"})
		if !block(map[string]any{"type": "thinking", "thinking": "", "signature": ""}, ds) {
			return
		}
	}
	if rep.Text != "" {
		var ds []map[string]any
		for _, part := range chunks(rep.Text, rep.ChunkSize) {
			ds = append(ds, map[string]any{"type": "text_delta", "text": part})
		}
		if rep.Status >= 400 { // MidStream: the text, then an error event
			if !e.send("content_block_start", map[string]any{"type": "content_block_start", "index": index, "content_block": map[string]any{"type": "text", "text": ""}}) {
				return
			}
			for _, d := range ds {
				if !e.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": d}) {
					return
				}
			}
		} else if !block(map[string]any{"type": "text", "text": ""}, ds) {
			return
		}
	}
	if rep.Status >= 400 {
		typ, msg := anthropicErrorFor(rep)
		e.send("error", map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
		return
	}
	for _, c := range rep.ToolCalls {
		ds := []map[string]any{{"type": "input_json_delta", "partial_json": ""}}
		for _, part := range chunks(c.Arguments, rep.ChunkSize) {
			ds = append(ds, map[string]any{"type": "input_json_delta", "partial_json": part})
		}
		if !block(map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": map[string]any{}}, ds) {
			return
		}
	}
	if !e.send("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": anthropicStop(rep.StopReason), "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": u.CompletionTokens},
	}) {
		return
	}
	e.send("message_stop", map[string]any{"type": "message_stop"})
}

func (s *Server) serveAnthropicModels(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.modelsCalls[Anthropic]++
	fail := s.modelsFail
	models := append([]Model(nil), s.models[Anthropic]...)
	s.mu.Unlock()
	if fail != 0 {
		typ, msg := anthropicErrorFor(Reply{Status: fail})
		anthropicError(w, fail, typ, msg)
		return
	}
	// Pagination by after_id and limit, as the real API pages.
	q := r.URL.Query()
	limit := 20
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l > 0 {
		limit = min(l, 1000)
	}
	start := 0
	if after := q.Get("after_id"); after != "" {
		for i, m := range models {
			if m.ID == after {
				start = i + 1
			}
		}
	}
	end := min(start+limit, len(models))
	data := []any{}
	for _, m := range models[start:end] {
		o := map[string]any{"type": "model", "id": m.ID, "display_name": m.ID, "created_at": "2025-01-01T00:00:00Z"}
		if m.ContextWindow > 0 {
			o["max_input_tokens"] = m.ContextWindow
		}
		data = append(data, o)
	}
	var first, last any
	if end > start {
		first, last = models[start].ID, models[end-1].ID
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data, "has_more": end < len(models), "first_id": first, "last_id": last})
}
