package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/kelpie/kelpie/llm"
)

// A chat-completions request is encoded here, by appending its wire format
// to a buffer, rather than by the SDK from its parameter types (reflection
// over union types, each tool's schema decoded into a map and encoded
// again: about a tenth of the CPU of a whole turn) or by encoding/json
// from types of the wire format (reflection, and every tool's schema
// checked twice: a third of the rest). It is posted by openAIChat, and the
// response is decoded here too (openAICompletion).

// openAIToolCall is a tool call of an assistant message, as sent and as
// answered.
type openAIToolCall struct {
	ID       string             `json:"id"`
	Type     string             `json:"type"` // function
	Function openAIFunctionCall `json:"function"`
}

type openAIFunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// toolImagesIntro introduces the images tool results returned: a tool
// message holds text only, so they follow the results as a user message.
const toolImagesIntro = "Images returned by the tool calls above:"

// emptySchema is the parameters of a tool that declares none.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// requestBody encodes req as a chat-completions request, streamed or not.
func (p *openAIProvider) requestBody(req llm.Request, stream bool) ([]byte, error) {
	size := 256
	for _, m := range req.Messages {
		size += len(m.Content) + 64
	}
	for _, t := range req.Tools {
		size += len(t.Description) + len(t.Parameters) + 96
	}
	b := make([]byte, 0, size+size/8)
	b = append(b, `{"model":`...)
	b = appendJSONString(b, req.Model)
	b = append(b, `,"messages":[`...)
	var toolImages []llm.Image // of the tool results just added
	for i, m := range req.Messages {
		if m.Role != llm.RoleTool && len(toolImages) > 0 {
			b = appendOpenAIUserMessage(append(b, ','), toolImagesIntro, toolImages)
			toolImages = nil
		}
		if i > 0 {
			b = append(b, ',')
		}
		switch m.Role {
		case llm.RoleSystem:
			b = append(b, `{"role":"system","content":`...)
			b = append(appendJSONString(b, m.Content), '}')
		case llm.RoleUser:
			b = appendOpenAIUserMessage(b, m.Content, m.Images)
		case llm.RoleAssistant:
			b = appendOpenAIAssistantMessage(b, m)
		case llm.RoleTool:
			b = append(b, `{"role":"tool","content":`...)
			b = appendJSONString(b, m.Content)
			if m.ToolCallID != "" {
				b = append(b, `,"tool_call_id":`...)
				b = appendJSONString(b, m.ToolCallID)
			}
			b = append(b, '}')
			toolImages = append(toolImages, m.Images...)
		default:
			return nil, fmt.Errorf("message with unknown role %q", m.Role)
		}
	}
	if len(toolImages) > 0 {
		b = appendOpenAIUserMessage(append(b, ','), toolImagesIntro, toolImages)
	}
	b = append(b, ']')
	for i, t := range req.Tools {
		params, err := schemaObject(t.Parameters)
		if err != nil {
			return nil, fmt.Errorf("tool %q: %w", t.Name, err)
		}
		if i == 0 {
			b = append(b, `,"tools":[`...)
		} else {
			b = append(b, ',')
		}
		b = append(b, `{"type":"function","function":{"name":`...)
		b = appendJSONString(b, t.Name)
		if t.Description != "" {
			b = append(b, `,"description":`...)
			b = appendJSONString(b, t.Description)
		}
		b = append(b, `,"parameters":`...)
		b = append(append(b, params...), "}}"...)
	}
	if len(req.Tools) > 0 {
		b = append(b, ']')
		switch req.ToolChoice {
		case "", "auto":
		case "required", "none":
			b = append(b, `,"tool_choice":`...)
			b = appendJSONString(b, req.ToolChoice)
		default:
			b = append(b, `,"tool_choice":{"type":"function","function":{"name":`...)
			b = append(appendJSONString(b, req.ToolChoice), "}}"...)
		}
	}
	if req.MaxTokens > 0 {
		b = append(b, `,"`...)
		if p.maxTokensField == "max_tokens" {
			b = append(b, "max_tokens"...)
		} else {
			b = append(b, "max_completion_tokens"...)
		}
		b = strconv.AppendInt(append(b, `":`...), int64(req.MaxTokens), 10)
	}
	if stream {
		b = append(b, `,"stream":true`...)
		if p.streamUsage {
			b = append(b, `,"stream_options":{"include_usage":true}`...)
		}
	}
	return append(b, '}'), nil
}

// appendOpenAIAssistantMessage appends an assistant message: its content is
// left out only when it calls tools and says nothing.
func appendOpenAIAssistantMessage(b []byte, m llm.Message) []byte {
	b = append(b, `{"role":"assistant"`...)
	if m.Content != "" || len(m.ToolCalls) == 0 {
		b = append(b, `,"content":`...)
		b = appendJSONString(b, m.Content)
	}
	for i, tc := range m.ToolCalls {
		if i == 0 {
			b = append(b, `,"tool_calls":[`...)
		} else {
			b = append(b, ',')
		}
		args := tc.Arguments
		if strings.TrimSpace(args) == "" {
			args = "{}"
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, tc.ID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = appendJSONString(b, tc.Name)
		b = append(b, `,"arguments":`...)
		b = append(appendJSONString(b, args), "}}"...)
	}
	if len(m.ToolCalls) > 0 {
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendOpenAIUserMessage appends a user message: plain text, or content
// parts when it shows images (image_url parts, with data: URLs for inline
// images).
func appendOpenAIUserMessage(b []byte, text string, images []llm.Image) []byte {
	b = append(b, `{"role":"user","content":`...)
	if len(images) == 0 {
		return append(appendJSONString(b, text), '}')
	}
	b = append(b, '[')
	if text != "" {
		b = append(b, `{"type":"text","text":`...)
		b = append(appendJSONString(b, text), "},"...)
	}
	for i, im := range images {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":"image_url","image_url":{"url":`...)
		b = append(appendJSONString(b, im.DataURL()), "}}"...)
	}
	return append(b, "]}"...)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, and U+2028 and U+2029 are escaped, as encoding/json does; <, >
// and & are not (nothing here is embedded in HTML).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// schemaObject checks a tool's JSON Schema, which must be an object; an
// empty one is an object without properties.
func schemaObject(raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return emptySchema, nil
	}
	if trimmed[0] != '{' || !validSchemas.valid(trimmed) {
		return nil, fmt.Errorf("parameters are not a JSON object: %.100s", trimmed)
	}
	return trimmed, nil
}

// validSchemas remembers the tool schemas found valid JSON: every request
// of a turn sends the same few, and checking each again cost more than
// the rest of the request's tools.
var validSchemas = &schemaSet{known: map[string]struct{}{}}

// maxValidSchemas bounds validSchemas; past it, schemas are checked each
// time.
const maxValidSchemas = 4096

type schemaSet struct {
	mu    sync.RWMutex
	known map[string]struct{}
}

// valid reports whether s is valid JSON.
func (v *schemaSet) valid(s []byte) bool {
	v.mu.RLock()
	_, ok := v.known[string(s)]
	v.mu.RUnlock()
	if ok {
		return true
	}
	if !json.Valid(s) {
		return false
	}
	v.mu.Lock()
	if len(v.known) < maxValidSchemas {
		v.known[string(s)] = struct{}{}
	}
	v.mu.Unlock()
	return true
}
