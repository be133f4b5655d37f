package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/llm"
)

// Spec: a chat-completions request is encoded as OpenAI's wire format
// says: every role's shape, content parts for images (a tool's images
// after its results, as a user message), "{}" for empty arguments, an
// assistant message's content left out only when it calls tools and says
// nothing, tool schemas as given (an empty one an object without
// properties), tool_choice, the configured max-tokens field, and usage
// asked for in a stream.
func TestOpenAIRequestBody(t *testing.T) {
	req := llm.Request{
		Model: "m",
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "sys <b>"},
			{Role: llm.RoleUser, Content: "look", Images: []llm.Image{{URL: "https://x/a.png"}}},
			{Role: llm.RoleUser, Images: []llm.Image{{MediaType: "image/png", Data: "AAAA"}}},
			{Role: llm.RoleAssistant, Content: "Checking.", ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: " "}}},
			{Role: llm.RoleTool, ToolCallID: "c1", Content: "r1", Images: []llm.Image{{URL: "https://x/b.png"}}},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c2", Name: "g", Arguments: `{"a":1}`}}},
			{Role: llm.RoleTool, ToolCallID: "c2", Content: ""},
			{Role: llm.RoleAssistant},
			{Role: llm.RoleUser, Content: ""},
		},
		Tools: []llm.Tool{
			{Name: "f", Description: "does f", Parameters: json.RawMessage(` {"type":"object","properties":{"a":{"type":"integer"}}} `)},
			{Name: "g", Parameters: json.RawMessage(`null`)},
			{Name: "h"},
		},
		ToolChoice: "f",
		MaxTokens:  99,
	}
	want := `{
		"model": "m",
		"messages": [
			{"role": "system", "content": "sys <b>"},
			{"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]},
			{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
			{"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
			{"role": "tool", "content": "r1", "tool_call_id": "c1"},
			{"role": "user", "content": [{"type": "text", "text": "Images returned by the tool calls above:"}, {"type": "image_url", "image_url": {"url": "https://x/b.png"}}]},
			{"role": "assistant", "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{\"a\":1}"}}]},
			{"role": "tool", "content": "", "tool_call_id": "c2"},
			{"role": "assistant", "content": ""},
			{"role": "user", "content": ""}
		],
		"tools": [
			{"type": "function", "function": {"name": "f", "description": "does f", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
			{"type": "function", "function": {"name": "g", "parameters": {"type": "object", "properties": {}}}},
			{"type": "function", "function": {"name": "h", "parameters": {"type": "object", "properties": {}}}}
		],
		"tool_choice": {"type": "function", "function": {"name": "f"}},
		"max_tokens": 99
	}`
	p := &openAIProvider{maxTokensField: "max_tokens", streamUsage: true}
	checkBody(t, p, req, false, want)

	// Streamed, with the other max-tokens field and a plain choice.
	req.Messages = req.Messages[:1]
	req.Tools = req.Tools[2:]
	req.ToolChoice = "required"
	p.maxTokensField = "max_completion_tokens"
	checkBody(t, p, req, true, `{
		"model": "m",
		"messages": [{"role": "system", "content": "sys <b>"}],
		"tools": [{"type": "function", "function": {"name": "h", "parameters": {"type": "object", "properties": {}}}}],
		"tool_choice": "required",
		"max_completion_tokens": 99,
		"stream": true,
		"stream_options": {"include_usage": true}
	}`)

	// No tools: no choice; no usage asked for when the server rejects it.
	req.Tools = nil
	p.streamUsage = false
	req.MaxTokens = 0
	checkBody(t, p, req, true, `{"model": "m", "messages": [{"role": "system", "content": "sys <b>"}], "stream": true}`)

	for _, bad := range []string{`[1]`, `{"type":`, `"object"`} {
		req.Tools = []llm.Tool{{Name: "x", Parameters: json.RawMessage(bad)}}
		if body, err := p.requestBody(req, false); err == nil {
			t.Errorf("parameters %s: sent %s", bad, body)
		}
	}
}

func checkBody(t *testing.T, p *openAIProvider, req llm.Request, stream bool, want string) {
	t.Helper()
	body, err := p.requestBody(req, stream)
	if err != nil {
		t.Fatal(err)
	}
	var got, exp any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &exp); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("sent %s\nwant %s", body, want)
	}
}

// Spec: a chat.completion is read as the SDK read it: the first choice's
// text (its refusal when it has none), reasoning from reasoning_content
// or reasoning, function calls only, usage and the stop reason; a field
// of an unexpected type is left empty, and a body that is not JSON is a
// model error.
func TestOpenAICompletionBody(t *testing.T) {
	p := &openAIProvider{name: "openai"}
	resp, err := p.completion(context.Background(), []byte(`{"choices":[{"finish_reason":"tool_calls","message":{
		"content":null,"refusal":"no","reasoning_content":"","reasoning":"because",
		"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"custom","function":{"name":"g"}}]}}],
		"usage":{"prompt_tokens":12,"completion_tokens":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.Response{Content: "no", Reasoning: "because", StopReason: llm.StopToolCalls,
		ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: "{}"}}, Usage: llm.Usage{PromptTokens: 12, CompletionTokens: 3}}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("got %+v\nwant %+v", resp, want)
	}

	// A server's odd types: content parts, a reasoning object, a numeric
	// finish reason. What is a string is still read.
	resp, err = p.completion(context.Background(), []byte(`{"choices":[{"finish_reason":7,"message":{
		"content":[{"type":"text","text":"x"}],"reasoning":{"summary":"s"},"reasoning_content":"r"}}],"usage":{"prompt_tokens":"many"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (&llm.Response{Reasoning: "r", StopReason: llm.StopEndTurn}); !reflect.DeepEqual(resp, want) {
		t.Errorf("got %+v\nwant %+v", resp, want)
	}

	for _, bad := range []string{`{"choices":[]}`, `not json`, `{"choices":[{"message":`} {
		var le *llm.Error
		if _, err := p.completion(context.Background(), []byte(bad)); !errors.As(err, &le) {
			t.Errorf("%s: got %v, want an llm.Error", bad, err)
		}
	}
}

// BenchmarkOpenAIRequestBody encodes a turn's request as an agent's sends
// it: a long system prompt, a dozen tools and a history of 40 messages.
func BenchmarkOpenAIRequestBody(b *testing.B) {
	req := llm.Request{Model: "gpt-4o-mini", MaxTokens: 4096}
	req.Messages = append(req.Messages, llm.Message{Role: llm.RoleSystem, Content: strings.Repeat("You are a helpful agent with memory.\n<memory_blocks>\n", 80)})
	for i := range 20 {
		req.Messages = append(req.Messages,
			llm.Message{Role: llm.RoleUser, Content: fmt.Sprintf("Please remember this, token-%d: my favourite colour is teal.", i)},
			llm.Message{Role: llm.RoleAssistant, Content: "I will remember that your favourite colour is teal, as you asked."})
	}
	for i := range 12 {
		req.Tools = append(req.Tools, llm.Tool{Name: fmt.Sprintf("tool_%d", i), Description: strings.Repeat("Does a thing with memory. ", 8),
			Parameters: json.RawMessage(`{"type":"object","properties":{"label":{"type":"string","description":"Section of the memory to be edited, identified by its label."},"new_str":{"type":"string","description":"The text to write."}},"required":["label","new_str"]}`)})
	}
	p := &openAIProvider{maxTokensField: "max_tokens"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.requestBody(req, false); err != nil {
			b.Fatal(err)
		}
	}
}

// Spec: a string is sent as the JSON string encoding/json would send:
// whatever its bytes (control characters, quotes, invalid UTF-8, line
// separators), it decodes to what encoding/json's encoding decodes to.
func TestAppendJSONString(t *testing.T) {
	cases := []string{"", "plain", `q"uote\back`, "tab\tnl\nret\rnul\x00bell\x07\x1f", "<b>&</b>", "bad\xffutf8\xc3", "sep\u2028par\u2029", "émoji 🦭", "\x7f"}
	for i := range 256 {
		cases = append(cases, string([]byte{byte(i), 'a', byte(255 - i)}))
	}
	for _, s := range cases {
		enc := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, enc, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%q encoded as %s decodes to %q, want %q", s, enc, got, want)
		}
	}
}

// Spec: a tool's parameters are sent as they are when they are a JSON
// object, the first time and when known valid since; an empty one is an
// object without properties, and anything else is refused, each time.
func TestSchemaObject(t *testing.T) {
	for range 2 {
		for _, tc := range []struct{ in, want string }{
			{` {"type":"object","properties":{"a":{"type":"string"}}} `, `{"type":"object","properties":{"a":{"type":"string"}}}`},
			{``, string(emptySchema)},
			{`null`, string(emptySchema)},
			{`{"type":`, ""},
			{`[1]`, ""},
			{`{"a":1}}`, ""},
		} {
			got, err := schemaObject(json.RawMessage(tc.in))
			if tc.want == "" {
				if err == nil {
					t.Errorf("schemaObject(%s) = %s; want an error", tc.in, got)
				}
				continue
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("schemaObject(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
			}
		}
	}
}
