package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/kelpie/kelpie/llm"
)

// OpenAI chat-completions wire types (the parts the double reads).
type oaRequest struct {
	Model               string          `json:"model"`
	Messages            []oaMessage     `json:"messages"`
	Tools               []oaTool        `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stream              *bool           `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	N *int `json:"n"`
}

type oaMessage struct {
	Role       string        `json:"role"`
	Content    oaMessageText `json:"content"`
	ToolCalls  []oaToolCall  `json:"tool_calls"`
	ToolCallID string        `json:"tool_call_id"`
}

// oaMessageText is a message's content, read by oaContent as it is
// decoded.
type oaMessageText struct {
	text    string
	present bool
	err     error // why the content cannot be read, reported in order by oaCheckMessages
}

// UnmarshalJSONFrom reads the content as parseBody decodes the body: a
// string, the usual content, as the token it is, unquoted once.
func (c *oaMessageText) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		c.text, c.present = tok.String(), true
		return nil
	}
	raw, err := dec.ReadValue()
	if err != nil {
		return err
	}
	return c.UnmarshalJSON(raw)
}

// UnmarshalJSON reads the content as encoding/json decodes the body, when
// parseBody diagnoses a body it could not decode.
func (c *oaMessageText) UnmarshalJSON(raw []byte) error {
	c.text, c.present, c.err = oaContent(raw)
	return nil
}

type oaToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type oaTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// oaFields are the request fields OpenAI knows; it rejects others.
var oaFields = map[string]bool{
	"model": true, "messages": true, "audio": true, "frequency_penalty": true, "function_call": true,
	"functions": true, "logit_bias": true, "logprobs": true, "max_completion_tokens": true,
	"max_tokens": true, "metadata": true, "modalities": true, "n": true, "parallel_tool_calls": true,
	"prediction": true, "presence_penalty": true, "prompt_cache_key": true, "prompt_cache_retention": true,
	"reasoning_effort": true, "response_format": true, "safety_identifier": true, "seed": true,
	"service_tier": true, "stop": true, "store": true, "stream": true, "stream_options": true,
	"temperature": true, "tool_choice": true, "tools": true, "top_logprobs": true, "top_p": true,
	"user": true, "verbosity": true, "web_search_options": true,
}

var (
	// oaMessageMemo and oaToolMemo remember the messages and tools
	// decoded.
	oaMessageMemo memo[oaMessage]
	oaToolMemo    memo[oaTool]
	// oaDecodeOptions decode a request body's messages and tools through
	// them.
	oaDecodeOptions = jsonv2.JoinOptions(decodeOptions,
		jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(memoized(&oaMessageMemo), memoized(&oaToolMemo))))
)

// oaContent reads a message's content: a string, null, or text parts.
func oaContent(raw json.RawMessage) (text string, present bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	if s, ok := jsonString(raw); ok {
		return s, true, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := unmarshal(raw, &parts); err != nil {
		return "", true, fmt.Errorf("content must be a string or an array of content parts")
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "" {
			return "", true, fmt.Errorf("content part without type")
		}
		if p.Type == "text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n"), true, nil
}

// openAIBodyWording is how OpenAI words a request body it cannot parse.
var openAIBodyWording = bodyWording{
	notObject: "We could not parse the JSON body of your request: %v",
	unknown:   "Unrecognized request argument supplied: %s",
	badType:   "Invalid type in request body: %v",
}

// decodeOpenAI decodes and validates a chat-completions request body. It
// returns the decoded request with Rejected set if OpenAI would answer 400.
// The checks it makes return that rejection, in OpenAI's words, or "":
// strings rather than errors, since they are wire text, not Go errors.
func decodeOpenAI(body []byte) Request {
	req := Request{API: OpenAI, Body: json.RawMessage(body)}
	in, _ := oaScratch.Get().(*oaRequest)
	if in == nil {
		in = new(oaRequest)
	}
	defer oaScratch.Put(in)
	*in = oaRequest{Messages: in.Messages[:0], Tools: in.Tools[:0]}
	if req.Rejected = parseBody(body, oaFields, openAIBodyWording, in, oaDecodeOptions); req.Rejected != "" {
		return req
	}
	oaFill(&req, in)
	if req.ToolChoice, req.Rejected = oaToolChoice(in.ToolChoice); req.Rejected != "" {
		return req
	}
	req.Rejected = oaValidate(in, req.ToolChoice)
	return req
}

// oaScratch holds parsed bodies, whose slices the next bodies are decoded
// into (the decoder reuses a slice's room) instead of growing new ones:
// a parsed body is read by decodeOpenAI alone.
var oaScratch sync.Pool

// oaFill fills req from the parsed body, all but the tool choice.
func oaFill(req *Request, in *oaRequest) {
	req.Model = in.Model
	req.Stream = in.Stream != nil && *in.Stream
	if in.StreamOptions != nil {
		req.StreamUsage = in.StreamOptions.IncludeUsage
	}
	if in.MaxTokens != nil {
		req.MaxTokens, req.MaxTokensField = *in.MaxTokens, "max_tokens"
	}
	if in.MaxCompletionTokens != nil {
		req.MaxTokens, req.MaxTokensField = *in.MaxCompletionTokens, "max_completion_tokens"
	}
	if len(in.Tools) > 0 {
		req.Tools = make([]llm.Tool, 0, len(in.Tools))
	}
	for _, t := range in.Tools {
		// The parameters are copied: the decoded tool is shared (oaToolMemo).
		req.Tools = append(req.Tools, llm.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: bytes.Clone(t.Function.Parameters)})
	}
	if len(in.Messages) > 0 {
		req.Messages = make([]Message, 0, len(in.Messages))
	}
	var system []string
	for _, m := range in.Messages {
		text := m.Content.text
		msg := Message{Role: m.Role, Content: text, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
		}
		if m.Role == "system" || m.Role == "developer" {
			system = append(system, text)
		}
		req.Messages = append(req.Messages, msg)
	}
	req.System = strings.Join(system, "\n\n")
}

// oaToolChoice reads tool_choice: a mode such as "auto", or a named
// function. It returns the mode or the function's name ("" if none was
// sent), or why OpenAI refuses it.
func oaToolChoice(raw json.RawMessage) (choice, rejection string) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", ""
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		return mode, ""
	}
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := unmarshal(raw, &named); err != nil || named.Type != "function" || named.Function.Name == "" {
		return "", "Invalid value for 'tool_choice'"
	}
	return named.Function.Name, ""
}

// oaValidate returns why OpenAI would refuse a parsed request, checking
// in roughly the order OpenAI checks, or "".
func oaValidate(in *oaRequest, toolChoice string) string {
	if r := oaCheckParameters(in); r != "" {
		return r
	}
	names, r := oaCheckTools(in.Tools)
	if r != "" {
		return r
	}
	if r := oaCheckToolChoice(toolChoice, in, names); r != "" {
		return r
	}
	return oaCheckMessages(in.Messages)
}

// oaCheckParameters checks the request's scalar parameters.
func oaCheckParameters(in *oaRequest) string {
	if in.Model == "" {
		return "you must provide a model parameter"
	}
	if len(in.Messages) == 0 {
		return "[] is too short - 'messages'"
	}
	if in.StreamOptions != nil && (in.Stream == nil || !*in.Stream) {
		return "The 'stream_options' parameter is only allowed when 'stream' is enabled."
	}
	if in.MaxTokens != nil && *in.MaxTokens < 1 {
		return oaBelowMinimum("max_tokens", *in.MaxTokens)
	}
	if in.MaxCompletionTokens != nil && *in.MaxCompletionTokens < 1 {
		return oaBelowMinimum("max_completion_tokens", *in.MaxCompletionTokens)
	}
	if in.N != nil && *in.N != 1 {
		return "llmtest supports only n=1"
	}
	return ""
}

func oaBelowMinimum(field string, got int) string {
	return fmt.Sprintf("Invalid '%s': integer below minimum value. Expected a value >= 1, but got %d instead.", field, got)
}

// oaCheckTools checks the tool definitions and returns their names.
func oaCheckTools(tools []oaTool) (names map[string]bool, rejection string) {
	names = map[string]bool{}
	for i, t := range tools {
		if t.Type != "function" {
			return nil, fmt.Sprintf("Invalid value: '%s'. Supported values are: 'function' and 'custom'. (tools[%d].type)", t.Type, i)
		}
		if !toolName(t.Function.Name) {
			return nil, fmt.Sprintf("Invalid 'tools[%d].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", i)
		}
		if names[t.Function.Name] {
			return nil, fmt.Sprintf("Invalid 'tools': duplicate function name %q", t.Function.Name)
		}
		names[t.Function.Name] = true
		if r := oaCheckSchema(t.Function.Name, t.Function.Parameters); r != "" {
			return nil, r
		}
	}
	return names, ""
}

// oaSchemas are the tool parameters oaCheckSchema accepted.
var oaSchemas accepted

// oaCheckSchema checks a function's parameters, if any, are an object's
// JSON Schema.
func oaCheckSchema(name string, params json.RawMessage) string {
	return oaSchemas.check(bytes.TrimSpace(params), func(p []byte) string {
		if len(p) == 0 {
			return ""
		}
		schema, ok := jsonMembers(p)
		if !ok {
			return fmt.Sprintf("Invalid schema for function '%s': schema must be a JSON Schema of 'type: \"object\"'", name)
		}
		if raw, ok := schema["type"]; ok {
			if typ, _ := jsonString(raw); typ != "object" {
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					return fmt.Sprintf("Invalid schema for function '%s': %v", name, err)
				}
				return fmt.Sprintf("Invalid schema for function '%s': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"%v\"'.", name, v)
			}
		}
		return ""
	})
}

// oaCheckToolChoice checks the tool choice against the tools.
func oaCheckToolChoice(choice string, in *oaRequest, names map[string]bool) string {
	if choice == "" {
		return ""
	}
	if len(in.Tools) == 0 {
		return "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
	}
	switch choice {
	case "none", "auto", "required":
		return ""
	}
	var mode string
	if json.Unmarshal(in.ToolChoice, &mode) == nil {
		return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'none', 'auto', and 'required'.", mode)
	}
	if !names[choice] {
		return fmt.Sprintf("Invalid value for 'tool_choice': function %q is not among the tools", choice)
	}
	return ""
}

// oaCheckMessages checks the conversation: each message's role and
// content, and that every tool call of an assistant is answered by a tool
// message before the next other message.
func oaCheckMessages(msgs []oaMessage) string {
	var calls oaCallTracker
	for i, m := range msgs {
		if r := calls.check(i, m); r != "" {
			return r
		}
	}
	if len(calls.pending) > 0 {
		return oaUnanswered(calls.pending)
	}
	return ""
}

// oaCallTracker follows an assistant's tool calls through the tool
// messages that answer them.
type oaCallTracker struct {
	pending    []string // tool_call ids awaiting tool messages
	afterCalls bool     // the previous messages are an assistant's tool calls and their results
}

// check checks message i.
func (c *oaCallTracker) check(i int, m oaMessage) string {
	present := m.Content.present
	if m.Content.err != nil {
		return fmt.Sprintf("Invalid 'messages[%d].content': %v", i, m.Content.err)
	}
	if m.Role != "tool" && len(c.pending) > 0 {
		return oaUnanswered(c.pending)
	}
	switch m.Role {
	case "system", "developer", "user":
		if !present {
			return oaNullContent(i)
		}
		c.afterCalls = false
	case "assistant":
		if !present && len(m.ToolCalls) == 0 {
			return oaNullContent(i)
		}
		c.afterCalls = len(m.ToolCalls) > 0
		return c.called(i, m.ToolCalls)
	case "tool":
		return c.answered(i, m, present)
	default:
		return fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'. (messages[%d].role)", m.Role, i)
	}
	return ""
}

// called checks the tool calls of assistant message i and awaits their
// answers.
func (c *oaCallTracker) called(i int, calls []oaToolCall) string {
	for j, tc := range calls {
		if tc.ID == "" {
			return fmt.Sprintf("Missing required parameter: 'messages[%d].tool_calls[%d].id'.", i, j)
		}
		if tc.Type != "function" {
			return fmt.Sprintf("Missing required parameter: 'messages[%d].tool_calls[%d].type'.", i, j)
		}
		if tc.Function.Name == "" {
			return fmt.Sprintf("Missing required parameter: 'messages[%d].tool_calls[%d].function.name'.", i, j)
		}
		c.pending = append(c.pending, tc.ID)
	}
	return ""
}

// answered checks tool message i, which must answer an awaited call.
func (c *oaCallTracker) answered(i int, m oaMessage, present bool) string {
	if !c.afterCalls {
		return fmt.Sprintf("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages[%d])", i)
	}
	if m.ToolCallID == "" {
		return fmt.Sprintf("Missing required parameter: 'messages[%d].tool_call_id'.", i)
	}
	if !present {
		return oaNullContent(i)
	}
	k := slices.Index(c.pending, m.ToolCallID)
	if k < 0 {
		return fmt.Sprintf("Invalid parameter: 'tool_call_id' of '%s' not found in 'tool_calls' of previous message. (messages[%d])", m.ToolCallID, i)
	}
	c.pending = slices.Delete(c.pending, k, k+1)
	return ""
}

func oaNullContent(i int) string {
	return fmt.Sprintf("Invalid value for 'content': expected a string, got null. (messages[%d].content)", i)
}

func oaUnanswered(pending []string) string {
	return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " + strings.Join(pending, ", ")
}

// openAIWire is the chat-completions wire format.
type openAIWire struct{}

func (openAIWire) vendor() string                  { return "OpenAI" }
func (openAIWire) toolIDPrefix() string            { return "call_" }
func (openAIWire) decode(body []byte) Request      { return decodeOpenAI(body) }
func (openAIWire) checkHeaders(http.Header) string { return "" }

func (openAIWire) reject(w http.ResponseWriter, why string) {
	openAIError(w, http.StatusBadRequest, "invalid_request_error", "", why)
}

func (openAIWire) fail(w http.ResponseWriter, rep Reply) {
	typ, code, msg := openAIErrorFor(rep)
	openAIError(w, rep.Status, typ, code, msg)
}

func (openAIWire) answer(s *Server, w http.ResponseWriter, r *http.Request, req Request, rep Reply, body []byte) {
	c := oaCompletion{
		id:          fmt.Sprintf("chatcmpl-llmtest%d", s.nextID()),
		created:     s.clock().Now().Unix(),
		model:       req.Model,
		usage:       openAIUsage(usage(rep, body)),
		streamUsage: req.StreamUsage,
	}
	if !req.Stream {
		writeJSON(w, http.StatusOK, c.completion(rep))
		return
	}
	c.stream(newSSE(s, w, r, rep.ChunkDelay), rep)
}

func openAIError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, openAIErrorBody(typ, code, msg))
}

// openAIErrorBody is OpenAI's error object, of a response or a stream
// event; code is null if "".
func openAIErrorBody(typ, code, msg string) map[string]any {
	var c any
	if code != "" {
		c = code
	}
	return map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}}
}

func openAIErrorFor(rep Reply) (typ, code, msg string) {
	typ, code, msg = "server_error", "", "The server had an error while processing your request."
	switch {
	case rep.Status == http.StatusTooManyRequests:
		typ, code, msg = "requests", "rate_limit_exceeded", "Rate limit reached for requests."
	case rep.Status == http.StatusUnauthorized:
		typ, code, msg = "invalid_request_error", "invalid_api_key", "Incorrect API key provided."
	case rep.Status == http.StatusNotFound:
		typ, code, msg = "invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."
	case rep.Status < 500:
		typ, code, msg = "invalid_request_error", "", "Invalid request."
	}
	if rep.ErrorCode != "" {
		code = rep.ErrorCode
	}
	if rep.ErrorMessage != "" {
		msg = rep.ErrorMessage
	}
	return typ, code, msg
}

func openAIFinish(r llm.StopReason) string {
	switch r {
	case llm.StopEndTurn:
		return "stop"
	case llm.StopToolCalls:
		return "tool_calls"
	case llm.StopMaxTokens:
		return "length"
	}
	return string(r)
}

// The unstreamed answer's JSON. Their fields are in the order of their
// names, as encoding/json writes a map's keys, and are encoded without a
// map's sorting and boxing.
type (
	oaUsageJSON struct {
		CompletionTokens int `json:"completion_tokens"`
		PromptTokens     int `json:"prompt_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	oaCompletionJSON struct {
		Choices           [1]oaChoiceJSON `json:"choices"`
		Created           int64           `json:"created"`
		ID                string          `json:"id"`
		Model             string          `json:"model"`
		Object            string          `json:"object"`
		ServiceTier       string          `json:"service_tier"`
		SystemFingerprint string          `json:"system_fingerprint"`
		Usage             oaUsageJSON     `json:"usage"`
	}
	oaChoiceJSON struct {
		FinishReason string        `json:"finish_reason"`
		Index        int           `json:"index"`
		Logprobs     *struct{}     `json:"logprobs"` // null
		Message      oaMessageJSON `json:"message"`
	}
	oaMessageJSON struct {
		Annotations      []struct{}       `json:"annotations"`
		Content          *string          `json:"content"`
		ReasoningContent string           `json:"reasoning_content,omitempty"`
		Refusal          *string          `json:"refusal"` // null
		Role             string           `json:"role"`
		ToolCalls        []oaToolCallJSON `json:"tool_calls,omitempty"`
	}
	oaToolCallJSON struct {
		Function struct {
			Arguments string `json:"arguments"`
			Name      string `json:"name"`
		} `json:"function"`
		ID   string `json:"id"`
		Type string `json:"type"`
	}
)

func openAIUsage(u llm.Usage) oaUsageJSON {
	return oaUsageJSON{CompletionTokens: u.CompletionTokens, PromptTokens: u.PromptTokens, TotalTokens: u.PromptTokens + u.CompletionTokens}
}

// oaCompletion is one answer in chat-completions format.
type oaCompletion struct {
	id          string
	created     int64
	model       string
	usage       oaUsageJSON
	streamUsage bool // stream_options.include_usage
}

// completion is the unstreamed answer.
func (c oaCompletion) completion(rep Reply) oaCompletionJSON {
	return oaCompletionJSON{
		Choices: [1]oaChoiceJSON{{FinishReason: openAIFinish(rep.StopReason), Message: openAIMessage(rep)}},
		Created: c.created, ID: c.id, Model: c.model, Object: "chat.completion",
		ServiceTier: "default", SystemFingerprint: "fp_llmtest", Usage: c.usage,
	}
}

// openAIMessage is the assistant message of an unstreamed answer.
func openAIMessage(rep Reply) oaMessageJSON {
	msg := oaMessageJSON{Annotations: []struct{}{}, ReasoningContent: rep.Reasoning, Role: "assistant"}
	if rep.Text != "" || len(rep.ToolCalls) == 0 {
		msg.Content = &rep.Text
	}
	for _, c := range rep.ToolCalls {
		call := oaToolCallJSON{ID: c.ID, Type: "function"}
		call.Function.Arguments, call.Function.Name = c.Arguments, c.Name
		msg.ToolCalls = append(msg.ToolCalls, call)
	}
	return msg
}

// stream sends the answer as chunks: the role, the reasoning, the text,
// then a mid-stream error, or else the tool calls, the finish reason, the
// usage if asked for, and [DONE].
func (c oaCompletion) stream(e *sse, rep Reply) {
	if !e.send("", c.chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil)) {
		return
	}
	if !c.sendText(e, "reasoning_content", rep.Reasoning, rep.ChunkSize) || !c.sendText(e, "content", rep.Text, rep.ChunkSize) {
		return
	}
	if rep.Status >= 400 { // MidStream
		e.send("", openAIErrorBody(openAIErrorFor(rep)))
		return
	}
	if !c.sendToolCalls(e, rep.ToolCalls, rep.ChunkSize) {
		return
	}
	if !e.send("", c.chunk(map[string]any{}, openAIFinish(rep.StopReason))) {
		return
	}
	if c.streamUsage && !e.send("", c.usageChunk()) {
		return
	}
	e.send("", "[DONE]")
}

// chunk is a chat.completion.chunk of one choice.
func (c oaCompletion) chunk(delta map[string]any, finish any) map[string]any {
	ch := map[string]any{
		"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model,
		"system_fingerprint": "fp_llmtest",
		"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
	}
	if c.streamUsage {
		ch["usage"] = nil
	}
	return ch
}

// usageChunk is the last chunk when usage is asked for: no choices.
func (c oaCompletion) usageChunk() map[string]any {
	return map[string]any{
		"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model,
		"system_fingerprint": "fp_llmtest", "choices": []any{}, "usage": c.usage,
	}
}

// sendText sends text in chunks of size characters as the delta field key.
func (c oaCompletion) sendText(e *sse, key, text string, size int) bool {
	for _, part := range chunks(text, size) {
		if !e.send("", c.chunk(map[string]any{key: part}, nil)) {
			return false
		}
	}
	return true
}

// sendToolCalls sends each tool call: its id and name, then its arguments
// in pieces of size bytes.
func (c oaCompletion) sendToolCalls(e *sse, calls []llm.ToolCall, size int) bool {
	for i, tc := range calls {
		first := map[string]any{"index": i, "id": tc.ID, "type": "function", "function": map[string]any{"name": tc.Name, "arguments": ""}}
		if !e.send("", c.chunk(map[string]any{"tool_calls": []any{first}}, nil)) {
			return false
		}
		for _, part := range chunks(tc.Arguments, size) {
			frag := map[string]any{"index": i, "function": map[string]any{"arguments": part}}
			if !e.send("", c.chunk(map[string]any{"tool_calls": []any{frag}}, nil)) {
				return false
			}
		}
	}
	return true
}

func (s *Server) serveOpenAIModels(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.modelsCalls[OpenAI]++
	fail := s.modelsFail
	models := append([]Model(nil), s.models[OpenAI]...)
	s.mu.Unlock()
	if fail != 0 {
		openAIError(w, fail, "server_error", "", "model listing failed")
		return
	}
	data := []any{}
	for _, m := range models {
		o := map[string]any{"id": m.ID, "object": "model", "created": 1700000000, "owned_by": "llmtest"}
		if m.ContextWindow > 0 {
			o["max_model_len"] = m.ContextWindow // as vLLM reports it
		}
		data = append(data, o)
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}
