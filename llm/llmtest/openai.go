package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

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
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []oaToolCall    `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
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

var toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// oaContent reads a message's content: a string, null, or text parts.
func oaContent(raw json.RawMessage) (text string, present bool, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
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

// decodeOpenAI decodes and validates a chat-completions request body. It
// returns the decoded request with Rejected set if OpenAI would answer 400.
func decodeOpenAI(body []byte) (Request, *oaRequest) {
	req := Request{API: OpenAI, Body: json.RawMessage(body)}
	reject := func(format string, args ...any) (Request, *oaRequest) {
		req.Rejected = fmt.Sprintf(format, args...)
		return req, nil
	}
	unknown, err := unknownFields(body, oaFields)
	if err != nil {
		return reject("We could not parse the JSON body of your request: %v", err)
	}
	if len(unknown) > 0 {
		return reject("Unrecognized request argument supplied: %s", strings.Join(unknown, ", "))
	}
	var in oaRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return reject("Invalid type in request body: %v", err)
	}
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
	for _, t := range in.Tools {
		req.Tools = append(req.Tools, llm.Tool{Name: t.Function.Name, Description: t.Function.Description, Parameters: t.Function.Parameters})
	}
	var system []string
	for _, m := range in.Messages {
		text, _, _ := oaContent(m.Content)
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
	if len(in.ToolChoice) > 0 && string(in.ToolChoice) != "null" {
		var s string
		if json.Unmarshal(in.ToolChoice, &s) == nil {
			req.ToolChoice = s
		} else {
			var named struct {
				Type     string `json:"type"`
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			}
			if err := json.Unmarshal(in.ToolChoice, &named); err != nil || named.Type != "function" || named.Function.Name == "" {
				return reject("Invalid value for 'tool_choice'")
			}
			req.ToolChoice = named.Function.Name
		}
	}

	// Validation, in roughly the order OpenAI checks.
	if in.Model == "" {
		return reject("you must provide a model parameter")
	}
	if len(in.Messages) == 0 {
		return reject("[] is too short - 'messages'")
	}
	if in.StreamOptions != nil && !req.Stream {
		return reject("The 'stream_options' parameter is only allowed when 'stream' is enabled.")
	}
	if in.MaxTokens != nil && *in.MaxTokens < 1 {
		return reject("Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got %d instead.", *in.MaxTokens)
	}
	if in.MaxCompletionTokens != nil && *in.MaxCompletionTokens < 1 {
		return reject("Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1, but got %d instead.", *in.MaxCompletionTokens)
	}
	if in.N != nil && *in.N != 1 {
		return reject("llmtest supports only n=1")
	}
	names := map[string]bool{}
	for i, t := range in.Tools {
		if t.Type != "function" {
			return reject("Invalid value: '%s'. Supported values are: 'function' and 'custom'. (tools[%d].type)", t.Type, i)
		}
		if !toolNameRE.MatchString(t.Function.Name) {
			return reject("Invalid 'tools[%d].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", i)
		}
		if names[t.Function.Name] {
			return reject("Invalid 'tools': duplicate function name %q", t.Function.Name)
		}
		names[t.Function.Name] = true
		if p := bytes.TrimSpace(t.Function.Parameters); len(p) > 0 {
			var obj map[string]any
			if json.Unmarshal(p, &obj) != nil || obj == nil {
				return reject("Invalid schema for function '%s': schema must be a JSON Schema of 'type: \"object\"'", t.Function.Name)
			}
			if typ, ok := obj["type"]; ok && typ != "object" {
				return reject("Invalid schema for function '%s': schema must be a JSON Schema of 'type: \"object\"', got 'type: \"%v\"'.", t.Function.Name, typ)
			}
		}
	}
	if req.ToolChoice != "" {
		if len(in.Tools) == 0 {
			return reject("Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.")
		}
		switch req.ToolChoice {
		case "none", "auto", "required":
		default:
			var s string
			if json.Unmarshal(in.ToolChoice, &s) == nil {
				return reject("Invalid value: '%s'. Supported values are: 'none', 'auto', and 'required'.", s)
			}
			if !names[req.ToolChoice] {
				return reject("Invalid value for 'tool_choice': function %q is not among the tools", req.ToolChoice)
			}
		}
	}
	var pending []string // tool_call ids awaiting tool messages
	afterCalls := false  // the previous messages are an assistant's tool calls and their results
	for i, m := range in.Messages {
		_, present, err := oaContent(m.Content)
		if err != nil {
			return reject("Invalid 'messages[%d].content': %v", i, err)
		}
		if m.Role != "tool" && len(pending) > 0 {
			return reject("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: %s", strings.Join(pending, ", "))
		}
		switch m.Role {
		case "system", "developer", "user":
			if !present {
				return reject("Invalid value for 'content': expected a string, got null. (messages[%d].content)", i)
			}
			afterCalls = false
		case "assistant":
			if !present && len(m.ToolCalls) == 0 {
				return reject("Invalid value for 'content': expected a string, got null. (messages[%d].content)", i)
			}
			afterCalls = len(m.ToolCalls) > 0
			for j, tc := range m.ToolCalls {
				if tc.ID == "" {
					return reject("Missing required parameter: 'messages[%d].tool_calls[%d].id'.", i, j)
				}
				if tc.Type != "function" {
					return reject("Missing required parameter: 'messages[%d].tool_calls[%d].type'.", i, j)
				}
				if tc.Function.Name == "" {
					return reject("Missing required parameter: 'messages[%d].tool_calls[%d].function.name'.", i, j)
				}
				pending = append(pending, tc.ID)
			}
		case "tool":
			if !afterCalls {
				return reject("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages[%d])", i)
			}
			if m.ToolCallID == "" {
				return reject("Missing required parameter: 'messages[%d].tool_call_id'.", i)
			}
			if !present {
				return reject("Invalid value for 'content': expected a string, got null. (messages[%d].content)", i)
			}
			k := indexOf(pending, m.ToolCallID)
			if k < 0 {
				return reject("Invalid parameter: 'tool_call_id' of '%s' not found in 'tool_calls' of previous message. (messages[%d])", m.ToolCallID, i)
			}
			pending = append(pending[:k], pending[k+1:]...)
		default:
			return reject("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'. (messages[%d].role)", m.Role, i)
		}
	}
	if len(pending) > 0 {
		return reject("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: %s", strings.Join(pending, ", "))
	}
	return req, &in
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func openAIError(w http.ResponseWriter, status int, typ, code, msg string) {
	var c any
	if code != "" {
		c = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
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

func (s *Server) serveOpenAI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req Request
	defer func() { s.served(req, start) }()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	req, _ = decodeOpenAI(body)
	req.Method, req.Path, req.Header, req.APIKey = r.Method, r.URL.Path, r.Header.Clone(), apiKey(r.Header)
	if req.Rejected == "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		req.Rejected = "Content-Type must be application/json"
	}
	rep, ok := s.record(req)
	if !ok {
		s.t.Logf("llmtest: rejected OpenAI request: %s", req.Rejected)
		openAIError(w, http.StatusBadRequest, "invalid_request_error", "", req.Rejected)
		return
	}
	rep = s.normalize(rep, "call_")
	if !s.wait(r.Context(), rep.Delay) {
		return
	}
	if rep.Status >= 400 && !(rep.MidStream && req.Stream) {
		setRetryAfter(w, rep.RetryAfter)
		typ, code, msg := openAIErrorFor(rep)
		openAIError(w, rep.Status, typ, code, msg)
		return
	}
	id := fmt.Sprintf("chatcmpl-llmtest%d", s.nextID())
	created := time.Now().Unix()
	u := usage(rep, body)
	usageJSON := map[string]any{"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens, "total_tokens": u.PromptTokens + u.CompletionTokens}

	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil, "annotations": []any{}}
		if rep.Text != "" || len(rep.ToolCalls) == 0 {
			msg["content"] = rep.Text
		}
		if rep.Reasoning != "" {
			msg["reasoning_content"] = rep.Reasoning
		}
		if len(rep.ToolCalls) > 0 {
			var calls []any
			for _, c := range rep.ToolCalls {
				calls = append(calls, map[string]any{"id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": c.Arguments}})
			}
			msg["tool_calls"] = calls
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{
				"index": 0, "message": msg, "logprobs": nil, "finish_reason": openAIFinish(rep.StopReason),
			}},
			"usage":              usageJSON,
			"service_tier":       "default",
			"system_fingerprint": "fp_llmtest",
		})
		return
	}

	e := newSSE(s, w, r, rep.ChunkDelay)
	chunk := func(delta map[string]any, finish any) map[string]any {
		c := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"system_fingerprint": "fp_llmtest",
			"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
		if req.StreamUsage {
			c["usage"] = nil
		}
		return c
	}
	if !e.send("", chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil)) {
		return
	}
	for _, part := range chunks(rep.Reasoning, rep.ChunkSize) {
		if !e.send("", chunk(map[string]any{"reasoning_content": part}, nil)) {
			return
		}
	}
	for _, part := range chunks(rep.Text, rep.ChunkSize) {
		if !e.send("", chunk(map[string]any{"content": part}, nil)) {
			return
		}
	}
	if rep.Status >= 400 { // MidStream
		typ, code, msg := openAIErrorFor(rep)
		var c any
		if code != "" {
			c = code
		}
		e.send("", map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
		return
	}
	for i, c := range rep.ToolCalls {
		first := map[string]any{"index": i, "id": c.ID, "type": "function", "function": map[string]any{"name": c.Name, "arguments": ""}}
		if !e.send("", chunk(map[string]any{"tool_calls": []any{first}}, nil)) {
			return
		}
		for _, part := range chunks(c.Arguments, rep.ChunkSize) {
			frag := map[string]any{"index": i, "function": map[string]any{"arguments": part}}
			if !e.send("", chunk(map[string]any{"tool_calls": []any{frag}}, nil)) {
				return
			}
		}
	}
	if !e.send("", chunk(map[string]any{}, openAIFinish(rep.StopReason))) {
		return
	}
	if req.StreamUsage {
		if !e.send("", map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"system_fingerprint": "fp_llmtest", "choices": []any{}, "usage": usageJSON,
		}) {
			return
		}
	}
	e.send("", "[DONE]")
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
