package providers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
	"github.com/kelpie/kelpie/llm/providers"
)

// Each test runs against both providers over real HTTP to the double.
var apis = []struct {
	name     string
	provider func(*llmtest.Server) llm.Provider
}{
	{"openai", (*llmtest.Server).OpenAIProvider},
	{"anthropic", (*llmtest.Server).AnthropicProvider},
}

func forAPIs(t *testing.T, f func(t *testing.T, srv *llmtest.Server, p llm.Provider)) {
	for _, a := range apis {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.NewServer(t)
			f(t, srv, a.provider(srv))
		})
	}
}

// bothModes runs f unstreamed and streamed.
func bothModes(t *testing.T, f func(t *testing.T, stream bool)) {
	for _, stream := range []bool{false, true} {
		name := "plain"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) { f(t, stream) })
	}
}

type deltas struct {
	mu   sync.Mutex
	list []llm.Delta
}

func (d *deltas) add(x llm.Delta) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.list = append(d.list, x)
}

func (d *deltas) text() (content, reasoning string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.list {
		content += x.Content
		reasoning += x.Reasoning
	}
	return
}

func complete(t *testing.T, p llm.Provider, req llm.Request, stream bool) (*llm.Response, *deltas, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d := &deltas{}
	var on func(llm.Delta)
	if stream {
		on = d.add
	}
	resp, err := p.Complete(ctx, req, on)
	return resp, d, err
}

func userReq(text string) llm.Request {
	return llm.Request{
		Model: "test-model",
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "You are Kelpie. <memory>human: Ada</memory>"},
			{Role: llm.RoleUser, Content: text},
		},
	}
}

var weatherTool = llm.Tool{
	Name:        "get_weather",
	Description: "Weather for a city",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
}

var sendTool = llm.Tool{
	Name:        "send_message",
	Description: "Send a message to the user",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}`),
}

func TestText(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		bothModes(t, func(t *testing.T, stream bool) {
			const text = "Hello, wörld! 🌍 How are you today?"
			srv.Script(llmtest.Reply{Text: text, Usage: &llm.Usage{PromptTokens: 42, CompletionTokens: 7}})
			resp, d, err := complete(t, p, userReq("hi"), stream)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Content != text || resp.StopReason != llm.StopEndTurn || len(resp.ToolCalls) != 0 {
				t.Fatalf("response = %+v", resp)
			}
			if resp.Usage != (llm.Usage{PromptTokens: 42, CompletionTokens: 7}) {
				t.Errorf("usage = %+v", resp.Usage)
			}
			if stream {
				if c, _ := d.text(); c != text || len(d.list) < 5 {
					t.Errorf("deltas %d joined %q", len(d.list), c)
				}
				for _, x := range d.list {
					if x.Content == "" && x.Reasoning == "" {
						t.Errorf("empty delta %+v", x)
					}
				}
			} else if len(d.list) != 0 {
				t.Errorf("deltas without streaming")
			}
			req := srv.LastRequest()
			if req.Stream != stream || req.Model != "test-model" {
				t.Errorf("stream %v model %q", req.Stream, req.Model)
			}
			if !strings.Contains(req.System, "<memory>human: Ada</memory>") {
				t.Errorf("system prompt %q", req.System)
			}
			if req.LastUserText() != "hi" {
				t.Errorf("last user text %q", req.LastUserText())
			}
			if req.APIKey == "" {
				t.Errorf("no API key sent")
			}
		})
	})
}

func TestReasoning(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		bothModes(t, func(t *testing.T, stream bool) {
			srv.Script(llmtest.Reply{Reasoning: "The user greets me.", Text: "Hello!"})
			resp, d, err := complete(t, p, userReq("hi"), stream)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Reasoning != "The user greets me." || resp.Content != "Hello!" {
				t.Fatalf("response = %+v", resp)
			}
			if c, r := d.text(); stream && (c != "Hello!" || r != "The user greets me.") {
				t.Errorf("deltas %q %q", c, r)
			}
		})
	})
}

func TestUsageEstimatedAndStreamOptions(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		bothModes(t, func(t *testing.T, stream bool) {
			srv.Script(llmtest.Reply{Text: "some answer"})
			resp, _, err := complete(t, p, userReq("hi"), stream)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 {
				t.Errorf("usage = %+v", resp.Usage)
			}
			if req := srv.LastRequest(); req.API == llmtest.OpenAI && req.StreamUsage != stream {
				t.Errorf("include_usage = %v", req.StreamUsage)
			}
		})
	})
}

func TestToolCalls(t *testing.T) {
	calls := []llm.ToolCall{
		{ID: "call_a1", Name: "get_weather", Arguments: `{"city":"Paris"}`},
		{ID: "call_b2", Name: "send_message", Arguments: `{"message":"Il fait beau à Paris ☀️, \"vraiment\"."}`},
	}
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d calls", n), func(t *testing.T) { testToolCalls(t, calls[:n]) })
	}
}

func testToolCalls(t *testing.T, calls []llm.ToolCall) {
	n := len(calls)
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		bothModes(t, func(t *testing.T, stream bool) {
			srv.Script(llmtest.Reply{Text: "Let me check.", ToolCalls: calls[:n], ChunkSize: 3})
			req := userReq("weather?")
			req.Tools = []llm.Tool{weatherTool, sendTool}
			req.StreamToolCalls = true
			resp, d, err := complete(t, p, req, stream)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StopReason != llm.StopToolCalls || resp.Content != "Let me check." {
				t.Fatalf("response = %+v", resp)
			}
			if !reflect.DeepEqual(resp.ToolCalls, calls[:n]) {
				t.Fatalf("tool calls = %+v", resp.ToolCalls)
			}
			if stream {
				// Fragments, put together by index, give the calls.
				got := make([]llm.ToolCall, n)
				frags := 0
				for _, x := range d.list {
					if x.ToolCall == nil {
						continue
					}
					frags++
					c := &got[x.ToolCall.Index]
					if x.ToolCall.ID != "" {
						c.ID = x.ToolCall.ID
					}
					if x.ToolCall.Name != "" {
						c.Name = x.ToolCall.Name
					}
					c.Arguments += x.ToolCall.Arguments
				}
				if !reflect.DeepEqual(got, calls[:n]) || frags < 2*n+1 {
					t.Errorf("%d fragments gave %+v", frags, got)
				}
			}
			sent := srv.LastRequest()
			if len(sent.Tools) != 2 || sent.Tools[0].Name != "get_weather" || sent.Tools[0].Description != "Weather for a city" {
				t.Fatalf("tools sent: %+v", sent.Tools)
			}
			var schema map[string]any
			if err := json.Unmarshal(sent.Tools[0].Parameters, &schema); err != nil || schema["type"] != "object" || schema["properties"] == nil {
				t.Errorf("schema sent: %s", sent.Tools[0].Parameters)
			}
			if sent.ToolChoice != "" {
				t.Errorf("tool choice %q sent for auto", sent.ToolChoice)
			}
		})
	})
}

// Without StreamToolCalls, deltas only carry text.
func TestStreamToolCallsOptIn(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		srv.Script(llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "send_message", Arguments: `{"message":"hi"}`}}})
		req := userReq("hi")
		req.Tools = []llm.Tool{sendTool}
		resp, d, err := complete(t, p, req, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ToolCalls) != 1 || resp.ToolCalls[0].ID == "" || resp.ToolCalls[0].Arguments != `{"message":"hi"}` {
			t.Fatalf("tool calls = %+v", resp.ToolCalls)
		}
		for _, x := range d.list {
			if x.ToolCall != nil || (x.Content == "" && x.Reasoning == "") {
				t.Errorf("unexpected delta %+v", x)
			}
		}
	})
}

func TestToolChoiceAndMaxTokens(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		for _, choice := range []string{"required", "none", "send_message", "auto"} {
			req := userReq("hi")
			req.Tools = []llm.Tool{sendTool, {Name: "no_params"}}
			req.ToolChoice = choice
			req.MaxTokens = 123
			if _, _, err := complete(t, p, req, false); err != nil {
				t.Fatal(err)
			}
			sent := srv.LastRequest()
			want := choice
			if choice == "auto" {
				want = ""
			}
			if sent.ToolChoice != want || sent.MaxTokens != 123 {
				t.Errorf("choice %q: sent %q, max tokens %d", choice, sent.ToolChoice, sent.MaxTokens)
			}
		}
		// No tools: no tool_choice; default max tokens.
		req := userReq("hi")
		req.ToolChoice = "required"
		if _, _, err := complete(t, p, req, false); err != nil {
			t.Fatal(err)
		}
		sent := srv.LastRequest()
		if sent.ToolChoice != "" {
			t.Errorf("tool_choice %q sent without tools", sent.ToolChoice)
		}
		switch sent.API {
		case llmtest.Anthropic:
			if sent.MaxTokens != providers.DefaultAnthropicMaxTokens {
				t.Errorf("anthropic max_tokens = %d", sent.MaxTokens)
			}
		case llmtest.OpenAI:
			if sent.MaxTokensField != "" {
				t.Errorf("openai sent %s without MaxTokens", sent.MaxTokensField)
			}
		}
	})
}

func TestOpenAIMaxTokensField(t *testing.T) {
	srv := llmtest.NewServer(t)
	for field, cfg := range map[string]providers.OpenAIConfig{
		"max_tokens":            {BaseURL: srv.OpenAIBaseURL()},
		"max_completion_tokens": {BaseURL: srv.OpenAIBaseURL(), MaxTokensField: "max_completion_tokens"},
	} {
		req := userReq("hi")
		req.MaxTokens = 50
		if _, _, err := complete(t, providers.NewOpenAI(cfg), req, false); err != nil {
			t.Fatal(err)
		}
		if got := srv.LastRequest().MaxTokensField; got != field {
			t.Errorf("sent %s, want %s", got, field)
		}
	}
}

// A conversation with tool calls and results, as the agent loop sends it.
func toolConversation() llm.Request {
	return llm.Request{
		Model: "test-model",
		Tools: []llm.Tool{weatherTool, sendTool},
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "persona"},
			{Role: llm.RoleUser, Content: "weather in Paris and Rome?"},
			{Role: llm.RoleAssistant, Content: "Checking.", ToolCalls: []llm.ToolCall{
				{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`},
				{ID: "call_2", Name: "get_weather", Arguments: `{"city":"Rome"}`},
			}},
			{Role: llm.RoleTool, ToolCallID: "call_1", Content: `{"temp":21}`},
			{Role: llm.RoleTool, ToolCallID: "call_2", Content: `{"temp":25}`},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call_3", Name: "send_message", Arguments: `{"message":"21 and 25"}`}}},
			{Role: llm.RoleTool, ToolCallID: "call_3", Content: "sent"},
			{Role: llm.RoleUser, Content: "thanks"},
		},
	}
}

func TestMultiTurnWithToolResults(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		bothModes(t, func(t *testing.T, stream bool) {
			resp, _, err := complete(t, p, toolConversation(), stream)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Content != "thanks" { // the default reply echoes
				t.Errorf("content %q", resp.Content)
			}
			sent := srv.LastRequest()
			if sent.System != "persona" {
				t.Errorf("system %q", sent.System)
			}
			var roles []string
			for _, m := range sent.Messages {
				roles = append(roles, m.Role)
			}
			switch sent.API {
			case llmtest.OpenAI:
				want := "system user assistant tool tool assistant tool user"
				if strings.Join(roles, " ") != want {
					t.Fatalf("roles %v", roles)
				}
				m := sent.Messages[2]
				if m.Content != "Checking." || len(m.ToolCalls) != 2 || m.ToolCalls[1].Arguments != `{"city":"Rome"}` {
					t.Errorf("assistant message %+v", m)
				}
				if sent.Messages[4].ToolCallID != "call_2" || sent.Messages[4].Content != `{"temp":25}` {
					t.Errorf("tool message %+v", sent.Messages[4])
				}
			case llmtest.Anthropic:
				// Tool results and the user's next text merge into one user turn.
				want := "user assistant user assistant user"
				if strings.Join(roles, " ") != want {
					t.Fatalf("roles %v", roles)
				}
				m := sent.Messages[2]
				if len(m.ToolResults) != 2 || m.ToolResults[1].ToolCallID != "call_2" || m.ToolResults[1].Content != `{"temp":25}` {
					t.Errorf("tool results %+v", m)
				}
				last := sent.Messages[4]
				if len(last.ToolResults) != 1 || last.ToolResults[0].Content != "sent" || last.Content != "thanks" {
					t.Errorf("last turn %+v", last)
				}
			}
		})
	})
}

func TestAnthropicRoleMerging(t *testing.T) {
	srv := llmtest.NewServer(t)
	p := srv.AnthropicProvider()
	req := llm.Request{
		Model: "claude-test",
		Tools: []llm.Tool{sendTool},
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "persona"},
			{Role: llm.RoleSystem, Content: "memory blocks"},
			// Letta-style history opens with the assistant.
			{Role: llm.RoleAssistant, Content: "Hi, I'm Kelpie."},
			{Role: llm.RoleUser, Content: "login event"},
			{Role: llm.RoleUser, Content: ""}, // dropped
			{Role: llm.RoleUser, Content: "hello"},
			{Role: llm.RoleSystem, Content: "summary so far"},
			{Role: llm.RoleAssistant, Content: "thinking aloud"},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "call.with:odd/chars", Name: "send_message", Arguments: `{"message":"hey"}`}}},
			{Role: llm.RoleUser, Content: "user spoke before the result arrived"},
			{Role: llm.RoleTool, ToolCallID: "call.with:odd/chars", Content: "ok"},
			{Role: llm.RoleAssistant, Content: "prefill   "},
		},
	}
	for _, stream := range []bool{false, true} {
		if _, _, err := complete(t, p, req, stream); err != nil {
			t.Fatal(err)
		}
		sent := srv.LastRequest()
		if sent.System != "persona\n\nmemory blocks" {
			t.Errorf("system %q", sent.System)
		}
		var got []string
		for _, m := range sent.Messages {
			s := m.Role + ":" + m.Content
			for _, c := range m.ToolCalls {
				s += " use(" + c.ID + ")"
			}
			for _, r := range m.ToolResults {
				s += " result(" + r.ToolCallID + ")"
			}
			got = append(got, s)
		}
		want := []string{
			"user:(conversation start)",
			"assistant:Hi, I'm Kelpie.",
			"user:login event\nhello\n[system] summary so far",
			"assistant:thinking aloud use(call_with_odd_chars)",
			"user:user spoke before the result arrived result(call_with_odd_chars)",
			"assistant:prefill",
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// The double rejects what the real APIs reject, and the providers map that
// to a non-retryable 400.
func TestProtocolViolationsRejected(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		bad := []llm.Request{
			{Model: "m", Messages: []llm.Message{ // tool call never answered
				{Role: llm.RoleUser, Content: "hi"},
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "send_message", Arguments: "{}"}}},
				{Role: llm.RoleUser, Content: "again"},
			}},
			{Model: "m", Messages: []llm.Message{ // result without a call
				{Role: llm.RoleUser, Content: "hi"},
				{Role: llm.RoleTool, ToolCallID: "c9", Content: "x"},
			}},
			{Model: "m", Tools: []llm.Tool{{Name: "bad name!"}}, Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}},
			{Model: "", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}},
		}
		for i, req := range bad {
			_, _, err := complete(t, p, req, false)
			var e *llm.Error
			if !errors.As(err, &e) || e.Status != 400 || e.Retryable || llm.IsRetryable(err) {
				t.Errorf("request %d: err = %v", i, err)
			}
		}
		for _, r := range srv.Requests() {
			if r.Rejected == "" {
				t.Errorf("request not rejected: %+v", r.Messages)
			}
		}
		if srv.Pending() != 0 {
			t.Errorf("pending %d", srv.Pending())
		}
	})
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		reply     llmtest.Reply
		retryable bool
		ctxExceed bool
	}{
		{llmtest.Reply{Status: 429, RetryAfter: 2 * time.Second}, true, false},
		{llmtest.Reply{Status: 400}, false, false},
		{llmtest.Reply{Status: 401}, false, false},
		{llmtest.Reply{Status: 408}, true, false},
		{llmtest.Reply{Status: 500}, true, false},
		{llmtest.Reply{Status: 503}, true, false},
		{llmtest.Reply{Status: 529}, true, false},
		{llmtest.Reply{Status: 400, ErrorMessage: "prompt is too long: 250000 tokens > 200000 maximum"}, false, true},
	}
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		bothModes(t, func(t *testing.T, stream bool) {
			for _, c := range cases {
				srv.Script(c.reply)
				_, d, err := complete(t, p, userReq("hi"), stream)
				var e *llm.Error
				if !errors.As(err, &e) {
					t.Fatalf("status %d: err = %v", c.reply.Status, err)
				}
				if e.Status != c.reply.Status || e.Retryable != c.retryable || e.ContextExceeded != c.ctxExceed || e.Provider != p.Name() || e.Message == "" {
					t.Errorf("status %d: got %+v", c.reply.Status, e)
				}
				if c.reply.RetryAfter != 0 && e.RetryAfter != c.reply.RetryAfter {
					t.Errorf("retry after %v", e.RetryAfter)
				}
				if len(d.list) != 0 {
					t.Errorf("deltas on error")
				}
				if !strings.Contains(e.Error(), p.Name()) {
					t.Errorf("error text %q", e.Error())
				}
			}
		})
	})
}

func TestMidStreamError(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		status := 500
		if p.Name() == "anthropic" {
			status = 529
		}
		srv.Script(llmtest.Reply{Text: "partial answer", Status: status, MidStream: true})
		_, d, err := complete(t, p, userReq("hi"), true)
		var e *llm.Error
		if !errors.As(err, &e) || !e.Retryable || e.Status != status {
			t.Fatalf("err = %#v", err)
		}
		if c, _ := d.text(); c != "partial answer" {
			t.Errorf("deltas before the error: %q", c)
		}
	})
}

func TestCancelMidStream(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		srv.Script(llmtest.Reply{Text: strings.Repeat("word ", 200), ChunkDelay: 20 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		start := time.Now()
		_, err := p.Complete(ctx, userReq("hi"), func(d llm.Delta) {
			n++
			if n == 3 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if llm.IsRetryable(err) {
			t.Errorf("cancellation is retryable")
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("took %v", el)
		}
	})
}

func TestDeadlineBeforeResponse(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		srv.Script(llmtest.Reply{Text: "late", Delay: 5 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := p.Complete(ctx, userReq("hi"), nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestConfigTimeoutIsRetryable(t *testing.T) {
	srv := llmtest.NewServer(t)
	for _, p := range []llm.Provider{
		providers.NewOpenAI(providers.OpenAIConfig{BaseURL: srv.OpenAIBaseURL(), Timeout: 100 * time.Millisecond}),
		providers.NewAnthropic(providers.AnthropicConfig{BaseURL: srv.AnthropicBaseURL(), Timeout: 100 * time.Millisecond}),
	} {
		for _, stream := range []bool{false, true} {
			// Unstreamed: no answer in time; streamed: the body is too slow.
			rep := llmtest.Reply{Text: strings.Repeat("slow ", 50), ChunkDelay: 50 * time.Millisecond}
			if !stream {
				rep.Delay = time.Second
			}
			srv.Script(rep)
			_, _, err := complete(t, p, userReq("hi"), stream)
			var e *llm.Error
			if !errors.As(err, &e) || !e.Retryable || e.Status != 0 {
				t.Errorf("%s stream=%v: err = %v", p.Name(), stream, err)
			}
		}
	}
}

func TestNetworkErrorRetryable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	for _, p := range []llm.Provider{
		providers.NewOpenAI(providers.OpenAIConfig{BaseURL: addr + "/v1"}),
		providers.NewAnthropic(providers.AnthropicConfig{BaseURL: addr}),
	} {
		_, _, err := complete(t, p, userReq("hi"), false)
		var e *llm.Error
		if !errors.As(err, &e) || !e.Retryable || e.Status != 0 {
			t.Errorf("%s: err = %v", p.Name(), err)
		}
	}
}

// A stream that stops before its end marker is an error, not a short answer.
func TestTruncatedStream(t *testing.T) {
	for _, a := range []struct {
		path, body string
		provider   func(string) llm.Provider
	}{
		{"/v1/chat/completions", `data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}` + "\n\n",
			func(u string) llm.Provider { return providers.NewOpenAI(providers.OpenAIConfig{BaseURL: u + "/v1"}) }},
		{"/v1/messages", "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n",
			func(u string) llm.Provider { return providers.NewAnthropic(providers.AnthropicConfig{BaseURL: u}) }},
	} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte(a.body))
		}))
		_, _, err := complete(t, a.provider(hs.URL), userReq("hi"), true)
		hs.Close()
		if !llm.IsRetryable(err) {
			t.Errorf("%s: err = %v", a.path, err)
		}
	}
}

func TestStopReasons(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		bothModes(t, func(t *testing.T, stream bool) {
			srv.Script(llmtest.Reply{Text: "cut", StopReason: llm.StopMaxTokens})
			resp, _, err := complete(t, p, userReq("hi"), stream)
			if err != nil || resp.StopReason != llm.StopMaxTokens {
				t.Errorf("resp %+v err %v", resp, err)
			}
		})
	})
}

// The SDKs read OPENAI_* / ANTHROPIC_* from the process environment; a
// provider's config must be all that counts.
func TestProcessEnvironmentIgnored(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-leaked")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-leaked")
	t.Setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
	t.Setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:1")
	srv := llmtest.NewServer(t)
	for _, p := range []llm.Provider{
		providers.NewOpenAI(providers.OpenAIConfig{Name: "ollama", BaseURL: srv.OpenAIBaseURL()}),
		providers.NewAnthropic(providers.AnthropicConfig{BaseURL: srv.AnthropicBaseURL()}),
	} {
		if _, _, err := complete(t, p, userReq("hi"), false); err != nil {
			t.Fatal(err)
		}
		if k := srv.LastRequest().APIKey; k != "" {
			t.Errorf("%s sent key %q", p.Name(), k)
		}
	}
}

func TestConcurrentCompletions(t *testing.T) {
	forAPIs(t, func(t *testing.T, srv *llmtest.Server, p llm.Provider) {
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				text := strings.Repeat("x", i+1)
				resp, _, err := complete(t, p, userReq(text), i%2 == 0)
				if err != nil || resp.Content != text {
					t.Errorf("resp %+v err %v", resp, err)
				}
			}()
		}
		wg.Wait()
		if n := len(srv.Requests()); n != 8 {
			t.Errorf("%d requests", n)
		}
	})
}

// The Anthropic SDK refuses unstreamed requests with a large max_tokens;
// the provider streams those itself.
func TestAnthropicLargeMaxTokensUnstreamed(t *testing.T) {
	srv := llmtest.NewServer(t)
	req := userReq("hi")
	req.MaxTokens = 64000
	resp, _, err := complete(t, srv.AnthropicProvider(), req, false)
	if err != nil || resp.Content != "hi" {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	if sent := srv.LastRequest(); !sent.Stream || sent.MaxTokens != 64000 {
		t.Errorf("stream %v max_tokens %d", sent.Stream, sent.MaxTokens)
	}
}

// Spec: an error reaching the provider never carries its address, which
// may be an internal one, to clients; the server's log gets the cause.
func TestNetworkErrorHidesAddress(t *testing.T) {
	for _, p := range []llm.Provider{
		providers.NewOpenAI(providers.OpenAIConfig{BaseURL: "http://127.0.0.1:1/v1", APIKey: "k"}),
		providers.NewAnthropic(providers.AnthropicConfig{BaseURL: "http://127.0.0.1:1", APIKey: "k"}),
	} {
		_, err := p.Complete(context.Background(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, nil)
		var le *llm.Error
		if !errors.As(err, &le) || strings.Contains(err.Error(), "127.0.0.1") || le.Err == nil {
			t.Errorf("%s: %v (cause %v)", p.Name(), err, le)
		}
	}
}
