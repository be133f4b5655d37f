package llmtest_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

func post(t *testing.T, url string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

var anthropicHeaders = map[string]string{"anthropic-version": "2023-06-01", "x-api-key": "k"}

func TestAnthropicValidation(t *testing.T) {
	srv := llmtest.NewServer(t)
	url := srv.AnthropicBaseURL() + "/v1/messages"
	bad := map[string]string{
		"no max_tokens":     `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		"same role twice":   `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
		"assistant first":   `{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":"a"}]}`,
		"system role":       `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"a"}]}`,
		"empty text":        `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":" "}]}]}`,
		"unknown field":     `{"model":"m","max_tokens":5,"max_token":5,"messages":[{"role":"user","content":"hi"}]}`,
		"trailing space":    `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"pre "}]}`,
		"unanswered use":    `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":"again"}]}`,
		"result not first":  `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{}}]},{"role":"user","content":[{"type":"text","text":"x"},{"type":"tool_result","tool_use_id":"t1"}]}]}`,
		"schema not object": `{"model":"m","max_tokens":5,"tools":[{"name":"f","input_schema":{"type":"string"}}],"messages":[{"role":"user","content":"hi"}]}`,
	}
	for name, body := range bad {
		if code, resp := post(t, url, anthropicHeaders, body); code != 400 || !strings.Contains(resp, `"invalid_request_error"`) {
			t.Errorf("%s: %d %s", name, code, resp)
		}
	}
	if code, _ := post(t, url, map[string]string{"x-api-key": "k"}, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`); code != 400 {
		t.Errorf("no anthropic-version: %d", code)
	}
	good := `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"x"},{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"r"},{"type":"text","text":"more"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}`
	code, resp := post(t, url, anthropicHeaders, good)
	if code != 200 || !strings.Contains(resp, `"text":"more"`) || !strings.Contains(resp, `"stop_reason":"end_turn"`) {
		t.Errorf("good: %d %s", code, resp)
	}
	reqs := srv.Requests()
	if n := len(reqs); n != len(bad)+2 {
		t.Fatalf("%d requests", n)
	}
	last := reqs[len(reqs)-1]
	if last.Rejected != "" || len(last.Messages) != 3 || last.Messages[1].ToolCalls[0].Arguments != `{"a":1}` || last.Messages[2].ToolResults[0].Content != "r" {
		t.Errorf("decoded %+v", last)
	}
}

func TestOpenAIValidation(t *testing.T) {
	srv := llmtest.NewServer(t)
	url := srv.OpenAIBaseURL() + "/chat/completions"
	bad := map[string]string{
		"no model":          `{"messages":[{"role":"user","content":"hi"}]}`,
		"no messages":       `{"model":"m","messages":[]}`,
		"unknown field":     `{"model":"m","foo":1,"messages":[{"role":"user","content":"hi"}]}`,
		"orphan tool":       `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"c","content":"x"}]}`,
		"unanswered call":   `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
		"choice no tools":   `{"model":"m","tool_choice":"auto","messages":[{"role":"user","content":"hi"}]}`,
		"options no stream": `{"model":"m","stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
		"null user content": `{"model":"m","messages":[{"role":"user","content":null}]}`,
		"bad tool name":     `{"model":"m","tools":[{"type":"function","function":{"name":"a b"}}],"messages":[{"role":"user","content":"hi"}]}`,
	}
	for name, body := range bad {
		if code, resp := post(t, url, nil, body); code != 400 || !strings.Contains(resp, `"invalid_request_error"`) {
			t.Errorf("%s: %d %s", name, code, resp)
		}
	}
	// Both paths answer; the streamed answer is SSE ending in [DONE].
	srv.Script(llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "f", Arguments: `{"a":1}`}}})
	req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/chat/completions", strings.NewReader(
		`{"model":"m","stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content type %q", ct)
	}
	var lines []string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			lines = append(lines, l)
		}
	}
	if lines[len(lines)-1] != "data: [DONE]" {
		t.Errorf("last line %q", lines[len(lines)-1])
	}
	var usage struct {
		Choices []any `json:"choices"`
		Usage   struct {
			TotalTokens int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[len(lines)-2], "data: ")), &usage); err != nil || len(usage.Choices) != 0 || usage.Usage.TotalTokens == 0 {
		t.Errorf("usage chunk %q", lines[len(lines)-2])
	}
	if got := srv.LastRequest(); got.LastUserText() != "hi" || !got.Stream || got.Rejected != "" {
		t.Errorf("decoded %+v", got)
	}
}

func TestDefaultReplyAndScript(t *testing.T) {
	srv := llmtest.NewServer(t)
	p := srv.OpenAIProvider()
	srv.Script(llmtest.Reply{Text: "first"})
	srv.SetDefault(func(r llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "default:" + r.LastUserText()} })
	for _, want := range []string{"first", "default:hi"} {
		resp, err := p.Complete(t.Context(), llm.Request{Model: "m", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}, nil)
		if err != nil || resp.Content != want {
			t.Fatalf("got %+v %v, want %q", resp, err, want)
		}
	}
	if srv.Pending() != 0 {
		t.Errorf("pending %d", srv.Pending())
	}
}

func TestUnknownPath(t *testing.T) {
	srv := llmtest.NewServer(t)
	if code, _ := post(t, srv.URL()+"/v1/completions", nil, `{}`); code != 404 {
		t.Errorf("code %d", code)
	}
}

func TestOnServed(t *testing.T) {
	srv := llmtest.NewServer(t)
	type served struct {
		req llmtest.Request
		d   time.Duration
	}
	got := make(chan served, 4)
	srv.OnServed(func(req llmtest.Request, d time.Duration) { got <- served{req, d} })
	next := func() served {
		t.Helper()
		select {
		case s := <-got:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("OnServed not called")
			return served{}
		}
	}

	srv.Script(llmtest.Reply{Text: "a", Delay: 30 * time.Millisecond}, llmtest.Reply{Text: "b", Delay: 30 * time.Millisecond})
	if code, resp := post(t, srv.OpenAIBaseURL()+"/chat/completions", nil, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("openai: %d %s", code, resp)
	}
	if s := next(); s.req.API != llmtest.OpenAI || s.req.LastUserText() != "hi" || s.d < 30*time.Millisecond {
		t.Errorf("openai: %s %q after %v", s.req.API, s.req.LastUserText(), s.d)
	}
	if code, resp := post(t, srv.AnthropicBaseURL()+"/v1/messages", anthropicHeaders, `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"yo"}]}`); code != 200 {
		t.Fatalf("anthropic: %d %s", code, resp)
	}
	if s := next(); s.req.API != llmtest.Anthropic || s.req.LastUserText() != "yo" || s.d < 30*time.Millisecond {
		t.Errorf("anthropic: %s %q after %v", s.req.API, s.req.LastUserText(), s.d)
	}
	if code, _ := post(t, srv.OpenAIBaseURL()+"/chat/completions", nil, `{"model":"m","bogus":1,"messages":[{"role":"user","content":"hi"}]}`); code != 400 {
		t.Fatalf("bogus field: %d", code)
	}
	if s := next(); s.req.Rejected == "" {
		t.Errorf("rejected request reported without Rejected")
	}

	srv.OnServed(nil)
	post(t, srv.OpenAIBaseURL()+"/chat/completions", nil, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	select {
	case s := <-got:
		t.Errorf("called after OnServed(nil): %+v", s.req)
	case <-time.After(50 * time.Millisecond):
	}
}

// fixedClock is a clock.Clock whose Now never moves; its timers are real.
type fixedClock struct{ now time.Time }

func (c fixedClock) Now() time.Time                         { return c.now }
func (c fixedClock) NewTicker(d time.Duration) clock.Ticker { return clock.Real{}.NewTicker(d) }
func (c fixedClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func TestSetClock(t *testing.T) {
	srv := llmtest.NewServer(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	srv.SetClock(fixedClock{now: at})
	served := make(chan time.Duration, 1)
	srv.OnServed(func(_ llmtest.Request, d time.Duration) { served <- d })
	srv.Script(llmtest.Reply{Text: "a", Delay: 10 * time.Millisecond})
	code, resp := post(t, srv.OpenAIBaseURL()+"/chat/completions", nil, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 {
		t.Fatalf("%d %s", code, resp)
	}
	var body struct {
		Created int64 `json:"created"`
	}
	if err := json.Unmarshal([]byte(resp), &body); err != nil || body.Created != at.Unix() {
		t.Errorf("created %d, want the clock's %d (%v)", body.Created, at.Unix(), err)
	}
	select {
	case d := <-served:
		if d != 0 {
			t.Errorf("OnServed reported %v on a clock that does not move", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnServed not called")
	}
}
