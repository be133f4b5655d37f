package llmtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// summary is what a decoded request says: why it was rejected, else its
// fields, so that a change to the decoding shows in a table.
func summary(r Request) string {
	if r.Rejected != "" {
		return "rejected: " + r.Rejected
	}
	var b strings.Builder
	fmt.Fprintf(&b, "model=%s max=%d/%s stream=%v/%v choice=%s system=%q", r.Model, r.MaxTokens, r.MaxTokensField, r.Stream, r.StreamUsage, r.ToolChoice, r.System)
	for _, t := range r.Tools {
		fmt.Fprintf(&b, " tool(%s,%q,%s)", t.Name, t.Description, t.Parameters)
	}
	for _, m := range r.Messages {
		fmt.Fprintf(&b, " %s:%q", m.Role, m.Content)
		for _, c := range m.ToolCalls {
			fmt.Fprintf(&b, " call(%s,%s,%s)", c.ID, c.Name, c.Arguments)
		}
		if m.ToolCallID != "" {
			fmt.Fprintf(&b, " answers(%s)", m.ToolCallID)
		}
		for _, tr := range m.ToolResults {
			fmt.Fprintf(&b, " result(%s,%q,%v)", tr.ToolCallID, tr.Content, tr.IsError)
		}
	}
	return b.String()
}

const oaUser = `"messages":[{"role":"user","content":"hi"}]`

// TestDecodeOpenAI pins what the double makes of well- and ill-formed
// chat-completions bodies, the rejections' wording included.
func TestDecodeOpenAI(t *testing.T) {
	tool := func(params string) string {
		return `{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":` + params + `}}],` + oaUser + `}`
	}
	cases := []struct{ body, want string }{
		{`{"model":"m",` + oaUser + `}`, `model=m max=0/ stream=false/false choice= system="" user:"hi"`},
		{`not json`, `rejected: We could not parse the JSON body of your request: invalid character 'o' in literal null (expecting 'u')`},
		{`{"model":"m",`, `rejected: We could not parse the JSON body of your request: unexpected end of JSON input`},
		{`[1]`, `rejected: We could not parse the JSON body of your request: json: cannot unmarshal array into Go value of type map[string]json.RawMessage`},
		{`"s"`, `rejected: We could not parse the JSON body of your request: json: cannot unmarshal string into Go value of type map[string]json.RawMessage`},
		{`null`, `rejected: you must provide a model parameter`},
		{`{"model":"m","zeta":1,"alpha":2,"zeta":3,` + oaUser + `}`, `rejected: Unrecognized request argument supplied: alpha, zeta`},
		{`{"model":"m\\", "foo" : "}\"{\\" ,"bar":[{"}":"]"}, 1e3, true, null],` + oaUser + ` }`, `rejected: Unrecognized request argument supplied: bar, foo`},
		{` { "model" : "m\\" , "max_tokens" : 2 ,` + oaUser + ` } `, `model=m\ max=2/max_tokens stream=false/false choice= system="" user:"hi"`},
		{`{"Model":"m",` + oaUser + `}`, `rejected: Unrecognized request argument supplied: Model`},
		{`{"mod\u0065l":"m",` + oaUser + `}`, `model=m max=0/ stream=false/false choice= system="" user:"hi"`},
		{`{"model":"m","x\u00e9":1,` + oaUser + `}`, `rejected: Unrecognized request argument supplied: xé`},
		{`{"model":5,` + oaUser + `}`, `rejected: Invalid type in request body: json: cannot unmarshal number into Go struct field oaRequest.model of type string`},
		{`{"model":5,"foo":1,` + oaUser + `}`, `rejected: Unrecognized request argument supplied: foo`},
		{`{"model":"m","max_tokens":1.5,` + oaUser + `}`, `rejected: Invalid type in request body: json: cannot unmarshal number 1.5 into Go struct field oaRequest.max_tokens of type int`},
		{`{"model":"m","max_tokens":0,` + oaUser + `}`, `rejected: Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.`},
		{`{"model":"m","max_completion_tokens":7,"stream":true,"stream_options":{"include_usage":true},` + oaUser + `}`, `model=m max=7/max_completion_tokens stream=true/true choice= system="" user:"hi"`},
		{`{"model":"m","messages":[{"role":"system","content":"a\"b\\c\u00e9\n"},{"role":"developer","content":"é€"},{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{}},{"type":"text","text":"y"}]}]}`,
			`model=m max=0/ stream=false/false choice= system="a\"b\\cé\n\n\né€" system:"a\"b\\cé\n" developer:"é€" user:"x\ny"`},
		{"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"bad\xffutf8\"}]}", `model=m max=0/ stream=false/false choice= system="" user:"bad�utf8"`},
		{`{"model":"m","messages":[{"Role":"user","content":"hi"}]}`, `rejected: Invalid value: ''. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'. (messages[0].role)`},
		{`{"model":"m","messages":[{"role":"user","content":5}]}`, `rejected: Invalid 'messages[0].content': content must be a string or an array of content parts`},
		{`{"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}]}`, `rejected: Invalid 'messages[0].content': content part without type`},
		{`{"model":"m","messages":[{"role":"user","content":null}]}`, `rejected: Invalid value for 'content': expected a string, got null. (messages[0].content)`},
		{`{"model":"m","messages":[{"role":"user"}]}`, `rejected: Invalid value for 'content': expected a string, got null. (messages[0].content)`},
		{`{"model":"m","messages":[{"role":"bot","content":"x"}]}`, `rejected: Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'. (messages[0].role)`},
		{`{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"g","arguments":"{\"a\":1}"}}]},{"role":"tool","tool_call_id":"c2","content":"r2"},{"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"r1"}]}]}`,
			`model=m max=0/ stream=false/false choice= system="" user:"hi" assistant:"" call(c1,f,{}) call(c2,g,{"a":1}) tool:"r2" answers(c2) tool:"r1" answers(c1)`},
		{`{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f"}}]},{"role":"user","content":"x"}]}`,
			`rejected: An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: c1`},
		{`{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f"}}]},{"role":"tool","tool_call_id":"c9","content":"x"}]}`,
			`rejected: Invalid parameter: 'tool_call_id' of 'c9' not found in 'tool_calls' of previous message. (messages[2])`},
		{`{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","function":{"name":"f"}}]}]}`,
			`rejected: Missing required parameter: 'messages[1].tool_calls[0].type'.`},
		{`{"model":"m","messages":[{"role":"tool","tool_call_id":"c","content":"x"}]}`,
			`rejected: Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'. (messages[0])`},
		{tool(`{"type":"object","properties":{"a":{"type":"string","description":"x"}}}`), `model=m max=0/ stream=false/false choice= system="" tool(f,"",{"type":"object","properties":{"a":{"type":"string","description":"x"}}}) user:"hi"`},
		{tool(`{"properties":{"type":"x"}}`), `model=m max=0/ stream=false/false choice= system="" tool(f,"",{"properties":{"type":"x"}}) user:"hi"`},
		{tool(`{"type":"obj\u0065ct"}`), `model=m max=0/ stream=false/false choice= system="" tool(f,"",{"type":"obj\u0065ct"}) user:"hi"`},
		{tool(`{"type":"string","type":"object"}`), `model=m max=0/ stream=false/false choice= system="" tool(f,"",{"type":"string","type":"object"}) user:"hi"`},
		{tool(`{"type":"object","type":"array"}`), `rejected: Invalid schema for function 'f': schema must be a JSON Schema of 'type: "object"', got 'type: "array"'.`},
		{tool(`{"type":5}`), `rejected: Invalid schema for function 'f': schema must be a JSON Schema of 'type: "object"', got 'type: "5"'.`},
		{tool(`{"type":null}`), `rejected: Invalid schema for function 'f': schema must be a JSON Schema of 'type: "object"', got 'type: "<nil>"'.`},
		{tool(`null`), `rejected: Invalid schema for function 'f': schema must be a JSON Schema of 'type: "object"'`},
		{tool(`[]`), `rejected: Invalid schema for function 'f': schema must be a JSON Schema of 'type: "object"'`},
		{tool(`"object"`), `rejected: Invalid schema for function 'f': schema must be a JSON Schema of 'type: "object"'`},
		{`{"model":"m","tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"f"}}],` + oaUser + `}`, `rejected: Invalid 'tools': duplicate function name "f"`},
		{`{"model":"m","tools":[{"function":{"name":"f"}}],` + oaUser + `}`, `rejected: Invalid value: ''. Supported values are: 'function' and 'custom'. (tools[0].type)`},
		{`{"model":"m","tool_choice":{"type":"function","function":{"name":"g"}},"tools":[{"type":"function","function":{"name":"f"}}],` + oaUser + `}`, `rejected: Invalid value for 'tool_choice': function "g" is not among the tools`},
		{`{"model":"m","tool_choice":"sometimes","tools":[{"type":"function","function":{"name":"f"}}],` + oaUser + `}`, `rejected: Invalid value: 'sometimes'. Supported values are: 'none', 'auto', and 'required'.`},
		{`{"model":"m","tool_choice":{"type":"function","function":{"name":"f"}},"tools":[{"type":"function","function":{"name":"f","description":"d"}}],` + oaUser + `}`, `model=m max=0/ stream=false/false choice=f system="" tool(f,"d",) user:"hi"`},
	}
	// Twice: the second time, the messages and tools are remembered.
	for range 2 {
		for i, c := range cases {
			if got := summary(decodeOpenAI([]byte(c.body))); got != c.want {
				t.Errorf("case %d: %s\n got  %s\n want %s", i, c.body, got, c.want)
			}
		}
	}
}

// TestMemo checks a memo calls its function once per value, remembers
// only what it is told to, and forgets the generation before the last.
func TestMemo(t *testing.T) {
	var m memo[string]
	calls := 0
	get := func(raw string) string {
		v, _ := m.get([]byte(raw), func(raw []byte) (string, bool) {
			calls++
			return strings.ToUpper(string(raw)), raw[0] != 'x'
		})
		return v
	}
	first, second := get("a"), get("a")
	if first != "A" || second != "A" || calls != 1 {
		t.Fatalf("a: %q, %q after %d calls", first, second, calls)
	}
	first, second = get("xa"), get("xa")
	if first != "XA" || second != "XA" || calls != 3 {
		t.Fatalf("xa, not remembered: %q, %q after %d calls", first, second, calls)
	}
	// Fill a generation: "a" moves to the old one, still remembered.
	filler := strings.Repeat("f", memoMax/4)
	for i := range 4 {
		get(fmt.Sprint(i, filler))
	}
	calls = 0
	if get("a") != "A" || calls != 0 {
		t.Fatalf("a, from the generation before: %d calls", calls)
	}
	// Two generations on, what was not asked for again is forgotten.
	for i := range 8 {
		get(fmt.Sprint(i, "g", filler))
	}
	calls = 0
	if get("0"+filler) != "0"+strings.ToUpper(filler) || calls != 1 {
		t.Fatalf("forgotten value: %d calls", calls)
	}
}

const anUser = `"messages":[{"role":"user","content":"hi"}]`

// TestDecodeAnthropic pins what the double makes of well- and ill-formed
// Messages bodies, the rejections' wording included.
func TestDecodeAnthropic(t *testing.T) {
	tool := func(schema string) string {
		return `{"model":"m","max_tokens":5,"tools":[{"name":"f","input_schema":` + schema + `}],` + anUser + `}`
	}
	use := func(input string) string {
		return `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":` + input + `}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]}`
	}
	cases := []struct{ body, want string }{
		{`{"model":"m","max_tokens":5,"system":"s\u00e9",` + anUser + `}`, `model=m max=5/max_tokens stream=false/false choice= system="sé" user:"hi"`},
		{`{"model":"m","max_tokens":5,"system":[{"type":"text","text":"a"},{"type":"text","text":"b"}],` + anUser + `}`, `model=m max=5/max_tokens stream=false/false choice= system="a\nb" user:"hi"`},
		{`{"model":"m","max_tokens":5,"system":5,` + anUser + `}`, `rejected: system: Input should be a valid list`},
		{`{"model":"m","max_tokens":5,"system":[{"type":"image"}],` + anUser + `}`, `rejected: system: expected text blocks`},
		{`{"model":"m","max_tokens":5,"b":1,"a":2,` + anUser + `}`, `rejected: a, b: Extra inputs are not permitted`},
		{`[]`, `rejected: There was an issue with your request body: json: cannot unmarshal array into Go value of type map[string]json.RawMessage`},
		{`{"model":"m","max_tokens":"5",` + anUser + `}`, `rejected: invalid request body: json: cannot unmarshal string into Go struct field anRequest.max_tokens of type int`},
		{"{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"a\xffb\"}]}", `model=m max=5/max_tokens stream=false/false choice= system="" user:"a�b"`},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","Text":"x"}]}]}`, `rejected: messages.0.content.0.text: Field required`},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":null}]}`, `rejected: messages: text content blocks must contain non-whitespace text`},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[]}]}`, `rejected: messages.0: all messages must have non-empty content except for the optional final assistant message`},
		{use(`{"a":[1,{"b":"}"}]}`), `model=m max=5/max_tokens stream=false/false choice= system="" user:"hi" assistant:"" call(t1,f,{"a":[1,{"b":"}"}]}) user:"" result(t1,"r",false)`},
		{use(`null`), `rejected: messages.1.content.0.tool_use.input: Input should be a valid dictionary`},
		{use(`[]`), `rejected: messages.1.content.0.tool_use.input: Input should be a valid dictionary`},
		{`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f"}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"}]}]}`,
			`rejected: messages.1.content.0.tool_use.input: Input should be a valid dictionary`},
		{tool(`{"type":"object","properties":{}}`), `model=m max=5/max_tokens stream=false/false choice= system="" tool(f,"",{"type":"object","properties":{}}) user:"hi"`},
		{tool(`{"type":"obj\u0065ct"}`), `model=m max=5/max_tokens stream=false/false choice= system="" tool(f,"",{"type":"obj\u0065ct"}) user:"hi"`},
		{tool(`{"properties":{}}`), `rejected: tools.0.custom.input_schema.type: Input should be 'object'`},
		{tool(`{"type":"object","type":"string"}`), `rejected: tools.0.custom.input_schema.type: Input should be 'object'`},
		{tool(`null`), `rejected: tools.0.custom.input_schema: Field required`},
		{tool(`"x"`), `rejected: tools.0.custom.input_schema: Field required`},
		{`{"model":"m","max_tokens":5,"tools":[{"name":"f"}],` + anUser + `}`, `rejected: tools.0.custom.input_schema: Field required`},
		{`{"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"web_search"}],` + anUser + `}`, `model=m max=5/max_tokens stream=false/false choice= system="" tool(web_search,"",) user:"hi"`},
	}
	// Twice: the second time, the messages, contents and tools are
	// remembered.
	for range 2 {
		for i, c := range cases {
			if got := summary(decodeAnthropic([]byte(c.body))); got != c.want {
				t.Errorf("case %d: %s\n got  %s\n want %s", i, c.body, got, c.want)
			}
		}
	}
}

// benchOpenAIBody is a chat-completions body like an agent's turn late in
// a conversation: a long system prompt, 40 messages (user messages, tool
// calls and their results), 12 tools with schemas.
func benchOpenAIBody() []byte {
	msgs := []any{map[string]any{"role": "system", "content": strings.Repeat("You are a helpful agent with a persistent memory.\n", 40)}}
	for i := range 13 {
		id := fmt.Sprintf("call_%d", i)
		msgs = append(msgs,
			map[string]any{"role": "user", "content": fmt.Sprintf("Please remember this, bench-turn-%d: my favourite colour is teal.", i)},
			map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
				"id": id, "type": "function", "function": map[string]any{"name": "memory_insert", "arguments": `{"label":"human","new_str":"Favourite colour: teal"}`}}}},
			map[string]any{"role": "tool", "tool_call_id": id, "content": `{"status":"OK","message":"None","time":"2026-12-02 06:55:12 PM UTC+0000"}`})
	}
	var tools []any
	for i := range 12 {
		tools = append(tools, map[string]any{"type": "function", "function": map[string]any{
			"name":        fmt.Sprintf("tool_%d", i),
			"description": "Search the agent's archival memory for passages similar to a query, newest first, returning at most a page of them.",
			"parameters": map[string]any{"type": "object", "required": []string{"query"}, "additionalProperties": false, "properties": map[string]any{
				"query": map[string]any{"type": "string", "description": "What to search for, in natural language."},
				"tags":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "Only passages with all of these tags."},
				"page":  map[string]any{"type": "integer", "description": "Which page of results, from 0."},
			}},
		}})
	}
	body, err := json.Marshal(map[string]any{"model": "gpt-4o-mini", "max_tokens": 16384, "messages": msgs, "tools": tools})
	if err != nil {
		panic(err)
	}
	return body
}

// BenchmarkDecodeOpenAI measures the double's CPU to read and check one
// agent turn's request. After the first, its messages and tools are
// remembered (see memo), as an agent's earlier messages and its tools are
// on its later turns.
func BenchmarkDecodeOpenAI(b *testing.B) {
	body := benchOpenAIBody()
	if r := decodeOpenAI(body); r.Rejected != "" || len(r.Messages) != 40 || len(r.Tools) != 12 {
		b.Fatalf("bench body: %s", summary(r))
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		decodeOpenAI(body)
	}
}

// benchAnthropicBody is benchOpenAIBody's conversation as a Messages body:
// tool uses and their results are blocks of alternating messages.
func benchAnthropicBody() []byte {
	var msgs []any
	for i := range 20 {
		id := fmt.Sprintf("toolu_%d", i)
		user := []any{map[string]any{"type": "text", "text": fmt.Sprintf("Please remember this, bench-turn-%d: my favourite colour is teal.", i)}}
		if i > 0 {
			result := map[string]any{"type": "tool_result", "tool_use_id": fmt.Sprintf("toolu_%d", i-1), "content": `{"status":"OK","message":"None"}`}
			user = append([]any{result}, user...)
		}
		msgs = append(msgs,
			map[string]any{"role": "user", "content": user},
			map[string]any{"role": "assistant", "content": []any{
				map[string]any{"type": "text", "text": "Noted."},
				map[string]any{"type": "tool_use", "id": id, "name": "memory_insert", "input": map[string]any{"label": "human", "new_str": "Favourite colour: teal"}},
			}})
	}
	msgs = append(msgs, map[string]any{"role": "user", "content": []any{map[string]any{"type": "tool_result", "tool_use_id": "toolu_19", "content": "ok"}}})
	var openai struct {
		Tools []struct {
			Function struct {
				Name        string          `json:"name"`
				Description string          `json:"description"`
				Parameters  json.RawMessage `json:"parameters"`
			} `json:"function"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(benchOpenAIBody(), &openai); err != nil {
		panic(err)
	}
	var tools []any
	for _, t := range openai.Tools {
		tools = append(tools, map[string]any{"name": t.Function.Name, "description": t.Function.Description, "input_schema": t.Function.Parameters})
	}
	body, err := json.Marshal(map[string]any{"model": "claude-sonnet-4-5", "max_tokens": 16384, "messages": msgs, "tools": tools,
		"system": strings.Repeat("You are a helpful agent with a persistent memory.\n", 40)})
	if err != nil {
		panic(err)
	}
	return body
}

// BenchmarkDecodeAnthropic is BenchmarkDecodeOpenAI for the Messages API.
func BenchmarkDecodeAnthropic(b *testing.B) {
	body := benchAnthropicBody()
	if r := decodeAnthropic(body); r.Rejected != "" || len(r.Messages) != 41 || len(r.Tools) != 12 {
		b.Fatalf("bench body: %s", summary(r))
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		decodeAnthropic(body)
	}
}
