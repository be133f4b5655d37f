package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/kelpie/kelpie/llm"
)

// Anthropic Messages wire types (the parts the double reads).
type anRequest struct {
	Model      string          `json:"model"`
	MaxTokens  *int            `json:"max_tokens"`
	Messages   []anMessage     `json:"messages"`
	System     json.RawMessage `json:"system"`
	Tools      []anTool        `json:"tools"`
	ToolChoice *anToolChoice   `json:"tool_choice"`
	Stream     *bool           `json:"stream"`
}

type anToolChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
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
	// anMessageMemo, anToolMemo and anContentMemo remember the messages,
	// tools and message contents (blocks) decoded.
	anMessageMemo memo[anMessage]
	anToolMemo    memo[anTool]
	anContentMemo memo[[]anBlock]
	// anDecodeOptions decode a request body's messages and tools through
	// them.
	anDecodeOptions = jsonv2.JoinOptions(decodeOptions,
		jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(memoized(&anMessageMemo), memoized(&anToolMemo))))
)

// anNotAList is Anthropic's own wording (pydantic's) for content that is
// neither a string nor a list of blocks; rejections quote it as it is,
// capital letter included, as the real API does.
const anNotAList = "Input should be a valid list"

// anBlocks reads a message's content: a string or an array of blocks. It
// returns why Anthropic refuses the content, or "".
func anBlocks(raw json.RawMessage) (blocks []anBlock, problem string) {
	raw = bytes.TrimSpace(raw)
	if s, ok := jsonString(raw); ok {
		return []anBlock{{Type: "text", Text: &s}}, ""
	}
	blocks, ok := anContentMemo.get(raw, func(raw []byte) ([]anBlock, bool) {
		var blocks []anBlock
		return blocks, unmarshal(raw, &blocks) == nil && blocks != nil
	})
	if !ok {
		return nil, anNotAList
	}
	return blocks, ""
}

// anText reads text content: a string or an array of text blocks (and of
// blocks of the other types given, which add no text). It returns why
// Anthropic refuses the content, or "".
func anText(raw json.RawMessage, others ...string) (text, problem string) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", ""
	}
	blocks, problem := anBlocks(raw)
	if problem != "" {
		return "", problem
	}
	var texts []string
	for _, b := range blocks {
		if slices.Contains(others, b.Type) {
			continue
		}
		if b.Type != "text" || b.Text == nil {
			return "", "expected text blocks"
		}
		texts = append(texts, *b.Text)
	}
	return strings.Join(texts, "\n"), ""
}

// anthropicBodyWording is how Anthropic words a request body it cannot
// parse.
var anthropicBodyWording = bodyWording{
	notObject: "There was an issue with your request body: %v",
	unknown:   "%s: Extra inputs are not permitted",
	badType:   "invalid request body: %v",
}

// decodeAnthropic decodes and validates a Messages request body. It returns
// the decoded request with Rejected set if Anthropic would answer 400. The
// checks it makes return that rejection, in Anthropic's words, or "":
// strings rather than errors, since they are wire text, not Go errors.
func decodeAnthropic(body []byte) Request {
	req := Request{API: Anthropic, Body: json.RawMessage(body)}
	var in anRequest
	if req.Rejected = parseBody(body, anFields, anthropicBodyWording, &in, anDecodeOptions); req.Rejected != "" {
		return req
	}
	anFill(&req, &in)
	system, problem := anText(in.System)
	if problem != "" {
		req.Rejected = "system: " + problem
		return req
	}
	req.System = system
	var blocks [][]anBlock
	if req.Messages, blocks, req.Rejected = anMessages(in.Messages); req.Rejected != "" {
		return req
	}
	req.Rejected = anValidate(&in, blocks)
	return req
}

// anFill fills req from the parsed body, all but the system prompt and
// the messages.
func anFill(req *Request, in *anRequest) {
	req.Model = in.Model
	req.Stream = in.Stream != nil && *in.Stream
	if in.MaxTokens != nil {
		req.MaxTokens, req.MaxTokensField = *in.MaxTokens, "max_tokens"
	}
	for _, t := range in.Tools {
		// The schema is copied: the decoded tool is shared (anToolMemo).
		req.Tools = append(req.Tools, llm.Tool{Name: t.Name, Description: t.Description, Parameters: bytes.Clone(t.InputSchema)})
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
}

// anMessages decodes the messages and returns them with each one's
// blocks, or the messages before the first that Anthropic cannot read and
// why.
func anMessages(in []anMessage) (msgs []Message, blocks [][]anBlock, rejection string) {
	blocks = make([][]anBlock, len(in))
	for i, m := range in {
		msg, bs, r := anDecodeMessage(i, m)
		if r != "" {
			return msgs, nil, r
		}
		blocks[i] = bs
		msgs = append(msgs, msg)
	}
	return msgs, blocks, ""
}

// anDecodeMessage decodes message i.
func anDecodeMessage(i int, m anMessage) (Message, []anBlock, string) {
	blocks, problem := anBlocks(m.Content)
	if problem != "" {
		return Message{}, nil, fmt.Sprintf("messages.%d.content: %s", i, problem)
	}
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
			// A tool result may also show images and documents.
			content, problem := anText(b.Content, "image", "document", "search_result")
			if problem != "" {
				return Message{}, nil, fmt.Sprintf("messages.%d.content: tool_result content: %s", i, problem)
			}
			msg.ToolResults = append(msg.ToolResults, ToolResult{ToolCallID: b.ToolUseID, Content: content, IsError: b.IsError})
		}
	}
	msg.Content = strings.Join(texts, "\n")
	return msg, blocks, ""
}

// anValidate returns why Anthropic would refuse a parsed request whose
// messages have the blocks given, or "".
func anValidate(in *anRequest, blocks [][]anBlock) string {
	if r := anCheckParameters(in); r != "" {
		return r
	}
	names, r := anCheckTools(in.Tools)
	if r != "" {
		return r
	}
	if r := anCheckToolChoice(in.ToolChoice, len(in.Tools), names); r != "" {
		return r
	}
	return anCheckConversation(in.Messages, blocks)
}

// anCheckParameters checks the required parameters.
func anCheckParameters(in *anRequest) string {
	switch {
	case in.Model == "":
		return "model: Field required"
	case in.MaxTokens == nil:
		return "max_tokens: Field required"
	case *in.MaxTokens < 1:
		return "max_tokens: Input should be greater than or equal to 1"
	case len(in.Messages) == 0:
		return "messages: at least one message is required"
	}
	return ""
}

// anCheckTools checks the custom tools' definitions and returns their
// names.
func anCheckTools(tools []anTool) (names map[string]bool, rejection string) {
	names = map[string]bool{}
	for i, t := range tools {
		if t.Type != "" && t.Type != "custom" {
			continue // a server tool; not checked
		}
		if !toolName(t.Name) {
			return nil, fmt.Sprintf("tools.%d.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i)
		}
		if names[t.Name] {
			return nil, "tools: Tool names must be unique."
		}
		names[t.Name] = true
		if r := anSchemas.check(t.InputSchema, func(schema []byte) string { return anCheckSchema(i, schema) }); r != "" {
			return nil, r
		}
	}
	return names, ""
}

// anSchemas are the input schemas anCheckSchema accepted.
var anSchemas accepted

// anCheckSchema checks the input schema of custom tool i.
func anCheckSchema(i int, schema []byte) string {
	members, ok := jsonMembers(schema)
	if !ok {
		return fmt.Sprintf("tools.%d.custom.input_schema: Field required", i)
	}
	if typ, ok := jsonString(members["type"]); !ok || typ != "object" {
		return fmt.Sprintf("tools.%d.custom.input_schema.type: Input should be 'object'", i)
	}
	return ""
}

// anCheckToolChoice checks the tool choice, if any, against the tools.
func anCheckToolChoice(tc *anToolChoice, tools int, names map[string]bool) string {
	if tc == nil {
		return ""
	}
	switch tc.Type {
	case "auto", "none":
	case "any":
		if tools == 0 {
			return "tool_choice.any: tool_choice may only be specified while providing tools."
		}
	case "tool":
		if !names[tc.Name] {
			return fmt.Sprintf("tool_choice.tool: tool %q not found in tools", tc.Name)
		}
	default:
		return fmt.Sprintf("tool_choice: Input tag '%s' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'", tc.Type)
	}
	return ""
}

// anCheckConversation checks the messages: their roles alternate from the
// user's, their blocks are valid, and the tool uses of each assistant
// message are answered, all of them, by the next message's tool results.
func anCheckConversation(msgs []anMessage, blocks [][]anBlock) string {
	var prevToolUses []string
	for i, m := range msgs {
		if r := anCheckRole(i, msgs); r != "" {
			return r
		}
		toolUses, results, r := anCheckContent(i, m.Role, blocks[i], i == len(msgs)-1)
		if r != "" {
			return r
		}
		if r := anCheckResults(i, prevToolUses, results); r != "" {
			return r
		}
		prevToolUses = toolUses
	}
	if len(prevToolUses) > 0 {
		return anUnanswered(len(msgs)-1, prevToolUses)
	}
	return ""
}

// anCheckRole checks the role of message i.
func anCheckRole(i int, msgs []anMessage) string {
	role := msgs[i].Role
	switch role {
	case "user", "assistant":
	default:
		return fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
	}
	if i == 0 && role != "user" {
		return "messages: first message must use the \"user\" role"
	}
	if i > 0 && msgs[i-1].Role == role {
		return fmt.Sprintf("messages: roles must alternate between \"user\" and \"assistant\", but found multiple %q roles in a row", role)
	}
	return ""
}

// anCheckContent checks the blocks of message i, the last one if last, and
// returns the ids of its tool uses and of the tool uses its tool results
// answer.
func anCheckContent(i int, role string, blocks []anBlock, last bool) (toolUses, results []string, rejection string) {
	prefill := last && role == "assistant" // may be empty
	if len(blocks) == 0 && !prefill {
		return nil, nil, fmt.Sprintf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
	}
	seenOther := false // a block other than tool_result came before
	for j, b := range blocks {
		var r string
		switch b.Type {
		case "text":
			r = anCheckText(b, i, j, prefill && len(blocks) == 1)
			seenOther = true
		case "tool_use":
			r = anCheckToolUse(b, i, j, role)
			toolUses = append(toolUses, b.ID)
			seenOther = true
		case "tool_result":
			r = anCheckToolResult(b, i, j, role, seenOther)
			results = append(results, b.ToolUseID)
		case "image", "document", "thinking", "redacted_thinking", "search_result":
			seenOther = true
		default:
			r = fmt.Sprintf("messages.%d.content.%d: Input tag '%s' found using 'type' does not match any of the expected tags", i, j, b.Type)
		}
		if r != "" {
			return nil, nil, r
		}
	}
	if prefill && len(blocks) > 0 {
		if b := blocks[len(blocks)-1]; b.Type == "text" && b.Text != nil && *b.Text != strings.TrimRight(*b.Text, " \t\r\n") {
			return nil, nil, "messages: final assistant content cannot end with trailing whitespace"
		}
	}
	return toolUses, results, ""
}

// anCheckText checks text block j of message i; mayBeEmpty allows the
// empty text of a prefill that is only that block.
func anCheckText(b anBlock, i, j int, mayBeEmpty bool) string {
	if b.Text == nil {
		return fmt.Sprintf("messages.%d.content.%d.text: Field required", i, j)
	}
	if strings.TrimSpace(*b.Text) == "" && !(mayBeEmpty && *b.Text == "") {
		return "messages: text content blocks must contain non-whitespace text"
	}
	return ""
}

// anCheckToolUse checks tool_use block j of message i.
func anCheckToolUse(b anBlock, i, j int, role string) string {
	if role != "assistant" {
		return fmt.Sprintf("messages.%d.content.%d: tool_use blocks may only appear in assistant messages", i, j)
	}
	if b.ID == "" || !idChars(b.ID) {
		return fmt.Sprintf("messages.%d.content.%d.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'", i, j)
	}
	if b.Name == "" {
		return fmt.Sprintf("messages.%d.content.%d.tool_use.name: Field required", i, j)
	}
	if !jsonObject(b.Input) {
		return fmt.Sprintf("messages.%d.content.%d.tool_use.input: Input should be a valid dictionary", i, j)
	}
	return ""
}

// anCheckToolResult checks tool_result block j of message i, which must
// come before any other block.
func anCheckToolResult(b anBlock, i, j int, role string, afterOther bool) string {
	if role != "user" {
		return fmt.Sprintf("messages.%d.content.%d: tool_result blocks may only appear in user messages", i, j)
	}
	if afterOther {
		return fmt.Sprintf("messages.%d: tool_result blocks must come first in the content array, before any other content", i)
	}
	if b.ToolUseID == "" {
		return fmt.Sprintf("messages.%d.content.%d.tool_result.tool_use_id: Field required", i, j)
	}
	return ""
}

// anCheckResults checks that the tool results of message i answer the
// tool uses of the message before, and all of them.
func anCheckResults(i int, prevToolUses, results []string) string {
	for _, id := range results {
		if !slices.Contains(prevToolUses, id) {
			return fmt.Sprintf("messages.%d.content: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", i, id)
		}
	}
	var missing []string
	for _, id := range prevToolUses {
		if !slices.Contains(results, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return anUnanswered(i-1, missing)
	}
	return ""
}

// anUnanswered rejects message i for tool uses the next message does not
// answer.
func anUnanswered(i int, ids []string) string {
	return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i, strings.Join(ids, ", "))
}

func anthropicError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("request-id", "req_llmtest")
	body := anthropicErrorBody(typ, msg)
	body["request_id"] = "req_llmtest"
	writeJSON(w, status, body)
}

// anthropicErrorBody is Anthropic's error object, as a stream event sends
// it; a response adds its request_id.
func anthropicErrorBody(typ, msg string) map[string]any {
	return map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}
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

// anthropicWire is the Messages wire format.
type anthropicWire struct{}

func (anthropicWire) vendor() string             { return "Anthropic" }
func (anthropicWire) toolIDPrefix() string       { return "toolu_llmtest" }
func (anthropicWire) decode(body []byte) Request { return decodeAnthropic(body) }

func (anthropicWire) checkHeaders(h http.Header) string {
	if h.Get("anthropic-version") == "" {
		return "anthropic-version: header is required"
	}
	return ""
}

func (anthropicWire) reject(w http.ResponseWriter, why string) {
	anthropicError(w, http.StatusBadRequest, "invalid_request_error", why)
}

func (anthropicWire) fail(w http.ResponseWriter, rep Reply) {
	typ, msg := anthropicErrorFor(rep)
	anthropicError(w, rep.Status, typ, msg)
}

func (anthropicWire) answer(s *Server, w http.ResponseWriter, r *http.Request, req Request, rep Reply, body []byte) {
	a := anAnswer{id: fmt.Sprintf("msg_llmtest%d", s.nextID()), model: req.Model, usage: usage(rep, body)}
	if !req.Stream {
		writeJSON(w, http.StatusOK, a.message(rep, anToolInputs(s.t, rep.ToolCalls)))
		return
	}
	a.stream(newSSE(s, w, r, rep.ChunkDelay), rep)
}

// anToolInputs returns the scripted tool calls' arguments as the JSON an
// unstreamed tool_use block's input must be, failing the test for
// arguments that are not JSON.
func anToolInputs(t Reporter, calls []llm.ToolCall) []json.RawMessage {
	inputs := make([]json.RawMessage, len(calls))
	for i, c := range calls {
		inputs[i] = json.RawMessage(c.Arguments)
		if !json.Valid(inputs[i]) {
			t.Errorf("llmtest: scripted tool call %q has arguments that are not JSON, which Anthropic cannot send unstreamed: %s", c.Name, c.Arguments)
			inputs[i] = json.RawMessage("{}")
		}
	}
	return inputs
}

// anAnswer is one answer in Messages format.
type anAnswer struct {
	id    string
	model string
	usage llm.Usage
}

func (a anAnswer) usageJSON(out int) map[string]any {
	return map[string]any{
		"input_tokens": a.usage.PromptTokens, "output_tokens": out,
		"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "service_tier": "standard",
	}
}

// message is the unstreamed answer, whose tool_use blocks have inputs.
func (a anAnswer) message(rep Reply, inputs []json.RawMessage) map[string]any {
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
	return map[string]any{
		"id": a.id, "type": "message", "role": "assistant", "model": a.model, "content": content,
		"stop_reason": anthropicStop(rep.StopReason), "stop_sequence": nil, "usage": a.usageJSON(a.usage.CompletionTokens),
	}
}

// stream sends the answer as events: message_start, a block each for the
// reasoning and the text, then a mid-stream error, or else a block for each
// tool call, message_delta and message_stop.
func (a anAnswer) stream(e *sse, rep Reply) {
	if !e.send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": a.id, "type": "message", "role": "assistant", "model": a.model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": a.usageJSON(1),
	}}) {
		return
	}
	b := anBlockWriter{e: e}
	if rep.Reasoning != "" && !b.block(anThinking(rep.Reasoning, rep.ChunkSize)) {
		return
	}
	if rep.Text != "" {
		start, deltas := anTextBlock(rep.Text, rep.ChunkSize)
		if rep.Status >= 400 { // MidStream: the text, then an error event
			if !b.open(start, deltas) {
				return
			}
		} else if !b.block(start, deltas) {
			return
		}
	}
	if rep.Status >= 400 {
		e.send("error", anthropicErrorBody(anthropicErrorFor(rep)))
		return
	}
	for _, c := range rep.ToolCalls {
		if !b.block(anToolUseBlock(c, rep.ChunkSize)) {
			return
		}
	}
	if !e.send("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": anthropicStop(rep.StopReason), "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": a.usage.CompletionTokens},
	}) {
		return
	}
	e.send("message_stop", map[string]any{"type": "message_stop"})
}

// anBlockWriter sends the content blocks of a stream, numbering them.
type anBlockWriter struct {
	e     *sse
	index int
}

// block sends a whole block: its start, a ping after the first block's
// start, its deltas and its stop.
func (b *anBlockWriter) block(start map[string]any, deltas []map[string]any) bool {
	if !b.e.send("content_block_start", map[string]any{"type": "content_block_start", "index": b.index, "content_block": start}) {
		return false
	}
	if b.index == 0 && !b.e.send("ping", map[string]any{"type": "ping"}) {
		return false
	}
	if !b.deltas(deltas) {
		return false
	}
	ok := b.e.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": b.index})
	b.index++
	return ok
}

// open sends a block's start and deltas but neither a ping nor its stop:
// a block a mid-stream error cuts short.
func (b *anBlockWriter) open(start map[string]any, deltas []map[string]any) bool {
	if !b.e.send("content_block_start", map[string]any{"type": "content_block_start", "index": b.index, "content_block": start}) {
		return false
	}
	return b.deltas(deltas)
}

func (b *anBlockWriter) deltas(deltas []map[string]any) bool {
	for _, d := range deltas {
		if !b.e.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": b.index, "delta": d}) {
			return false
		}
	}
	return true
}

// anThinking is a thinking block's start and deltas: the reasoning in
// pieces of size characters, then its signature.
func anThinking(reasoning string, size int) (start map[string]any, deltas []map[string]any) {
	for _, part := range chunks(reasoning, size) {
		deltas = append(deltas, map[string]any{"type": "thinking_delta", "thinking": part})
	}
	deltas = append(deltas, map[string]any{"type": "signature_delta", "signature": "sig_llmtest"})
	return map[string]any{"type": "thinking", "thinking": "", "signature": ""}, deltas
}

// anTextBlock is a text block's start and deltas: the text in pieces of
// size characters.
func anTextBlock(text string, size int) (start map[string]any, deltas []map[string]any) {
	for _, part := range chunks(text, size) {
		deltas = append(deltas, map[string]any{"type": "text_delta", "text": part})
	}
	return map[string]any{"type": "text", "text": ""}, deltas
}

// anToolUseBlock is a tool_use block's start and deltas: an empty partial
// JSON, then the arguments in pieces of size bytes.
func anToolUseBlock(c llm.ToolCall, size int) (start map[string]any, deltas []map[string]any) {
	deltas = []map[string]any{{"type": "input_json_delta", "partial_json": ""}}
	for _, part := range chunks(c.Arguments, size) {
		deltas = append(deltas, map[string]any{"type": "input_json_delta", "partial_json": part})
	}
	return map[string]any{"type": "tool_use", "id": c.ID, "name": c.Name, "input": map[string]any{}}, deltas
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
