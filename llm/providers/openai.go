package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/respjson"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/kelpie/kelpie/llm"
)

// DefaultOpenAIBaseURL is OpenAI's API.
const DefaultOpenAIBaseURL = "https://api.openai.com/v1"

// OpenAIConfig configures a provider that speaks OpenAI's chat-completions
// API: OpenAI itself, or a compatible server (Ollama, vLLM, LM Studio, a
// proxy) under another Name and BaseURL.
type OpenAIConfig struct {
	// Name is the provider's handle prefix; "openai" if empty.
	Name string
	// APIKey is sent as a bearer token; none is sent if empty.
	APIKey string
	// BaseURL is the API root that chat/completions and models are under,
	// such as "http://localhost:11434/v1"; DefaultOpenAIBaseURL if empty.
	BaseURL string
	// HTTPClient, if not nil, makes the requests.
	HTTPClient *http.Client
	// Timeout bounds each request, a streamed response's body included;
	// 0 means no bound beyond the caller's context.
	Timeout time.Duration
	// Headers are extra HTTP headers sent with every request.
	Headers map[string]string
	// MaxTokensField is the request field that carries Request.MaxTokens:
	// "max_completion_tokens" (OpenAI's current one, which its reasoning
	// models require) or "max_tokens" (what most compatible servers know).
	// If empty, max_completion_tokens is used for api.openai.com and
	// max_tokens for any other BaseURL.
	MaxTokensField string
	// NoStreamUsage stops asking for usage in streamed responses
	// (stream_options.include_usage), for servers that reject it.
	NoStreamUsage bool
}

type openAIProvider struct {
	name           string
	client         openai.Client // lists models
	chat           openAIChat
	timeout        time.Duration
	maxTokensField string
	streamUsage    bool
}

// NewOpenAI returns a provider over OpenAI's chat-completions API.
func NewOpenAI(cfg OpenAIConfig) llm.Provider {
	name := cfg.Name
	if name == "" {
		name = "openai"
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultOpenAIBaseURL
	}
	official := isOfficialOpenAI(base)
	opts := []option.RequestOption{
		option.WithBaseURL(base),
		// Always set, so that OPENAI_API_KEY and OPENAI_ADMIN_KEY from the
		// process environment (which the SDK reads) never go to another
		// server.
		option.WithAPIKey(cfg.APIKey),
		option.WithAdminAPIKey(""),
		// Kelpie's agent loop decides about retries.
		option.WithMaxRetries(0),
		option.WithMiddleware(normalizeOpenAIError),
	}
	if !official {
		opts = append(opts, option.WithHeaderDel("OpenAI-Organization"), option.WithHeaderDel("OpenAI-Project"))
	}
	if cfg.HTTPClient != nil {
		opts = append(opts, option.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.Timeout > 0 {
		opts = append(opts, option.WithRequestTimeout(cfg.Timeout))
	}
	keys := make([]string, 0, len(cfg.Headers))
	for k := range cfg.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		opts = append(opts, option.WithHeader(k, cfg.Headers[k]))
	}
	field := cfg.MaxTokensField
	if field == "" {
		field = "max_tokens"
		if official {
			field = "max_completion_tokens"
		}
	}
	return &openAIProvider{
		name:           name,
		client:         openai.NewClient(opts...),
		chat:           newOpenAIChat(cfg, base, official),
		timeout:        cfg.Timeout,
		maxTokensField: field,
		streamUsage:    !cfg.NoStreamUsage,
	}
}

func isOfficialOpenAI(base string) bool {
	u, err := url.Parse(base)
	return err == nil && strings.EqualFold(u.Hostname(), "api.openai.com")
}

func (p *openAIProvider) Name() string { return p.name }

func (p *openAIProvider) Complete(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
	body, err := p.requestBody(req, onDelta != nil)
	if err != nil {
		return nil, &llm.Error{Provider: p.name, Message: err.Error()}
	}
	reqCtx := ctx
	if p.timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, p.timeout) // the body's reading included
		defer cancel()
	}
	resp, err := p.chat.post(reqCtx, body, onDelta != nil)
	if err != nil {
		return nil, p.mapError(ctx, err)
	}
	if onDelta == nil {
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, p.mapError(ctx, err)
		}
		return p.completion(ctx, raw)
	}
	acc := openAIStream{streamTools: req.StreamToolCalls}
	err = acc.read(ssestream.NewDecoder(resp), onDelta)
	if err := streamEndError(ctx, p.name, err, p.mapError, acc.finish != ""); err != nil {
		return nil, err
	}
	return acc.response(), nil
}

// openAIChatPath is the chat-completions endpoint, under the base URL.
const openAIChatPath = "chat/completions"

// openAICompletion is what Kelpie reads of a chat.completion object.
// Fields that may hold something else than their documented type on a
// compatible server are raw, and read only when they are strings (as the
// SDK's decoder ignores a value of the wrong type).
type openAICompletion struct {
	Choices []struct {
		FinishReason string `json:"finish_reason"`
		Message      struct {
			openAIText
			ToolCalls []openAIToolCall `json:"tool_calls"`
		} `json:"message"`
	} `json:"choices"`
	Usage openAIUsage `json:"usage"`
}

// openAIText are the text fields of a completion's message and of a
// chunk's delta.
type openAIText struct {
	Content          json.RawMessage `json:"content"`
	Refusal          json.RawMessage `json:"refusal"`
	ReasoningContent json.RawMessage `json:"reasoning_content"`
	Reasoning        json.RawMessage `json:"reasoning"`
}

// openAIUsage is the usage of a completion, or of a stream's last chunk.
type openAIUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
}

// completion reads a chat.completion response body. A field of another
// type than expected is left empty, as the SDK leaves it; a body that is
// not JSON is an error.
func (p *openAIProvider) completion(ctx context.Context, raw []byte) (*llm.Response, error) {
	var c openAICompletion
	var typeErr *json.UnmarshalTypeError
	if err := json.Unmarshal(raw, &c); err != nil && !errors.As(err, &typeErr) {
		return nil, p.mapError(ctx, fmt.Errorf("error parsing response json: %w", err))
	}
	if len(c.Choices) == 0 {
		return nil, &llm.Error{Provider: p.name, Retryable: true, Message: "response has no choices"}
	}
	ch := c.Choices[0]
	resp := &llm.Response{
		Content:   firstString(ch.Message.Content),
		Reasoning: firstString(ch.Message.ReasoningContent, ch.Message.Reasoning),
		Usage:     llm.Usage{PromptTokens: c.Usage.PromptTokens, CompletionTokens: c.Usage.CompletionTokens},
	}
	if resp.Content == "" {
		resp.Content = firstString(ch.Message.Refusal)
	}
	for _, tc := range ch.Message.ToolCalls {
		if tc.Type != "" && tc.Type != "function" {
			continue
		}
		resp.ToolCalls = append(resp.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	resp.StopReason = openAIStopReason(ch.FinishReason, len(resp.ToolCalls) > 0)
	return resp, nil
}

// firstString returns the first of values that is a non-empty JSON string.
func firstString(values ...json.RawMessage) string {
	for _, v := range values {
		var s string
		if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

// schemaMap decodes a tool's JSON Schema; an empty one is an object
// without properties.
func schemaMap(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return map[string]any{"type": "object", "properties": map[string]any{}}, nil
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("parameters are not a JSON object: %w", err)
	}
	if m == nil {
		m = map[string]any{"type": "object", "properties": map[string]any{}}
	}
	return m, nil
}

func openAIStopReason(finish string, toolCalls bool) llm.StopReason {
	switch finish {
	case "length":
		return llm.StopMaxTokens
	case "tool_calls", "function_call":
		return llm.StopToolCalls
	}
	// Some compatible servers say "stop" although the model called tools.
	if toolCalls {
		return llm.StopToolCalls
	}
	return llm.StopEndTurn
}

// openAIStream accumulates chat.completion.chunk events.
type openAIStream struct {
	streamTools bool
	content     strings.Builder
	reasoning   strings.Builder
	calls       []llm.ToolCall
	byIndex     map[int64]int // chunk tool_call index → calls position
	finish      string
	usage       llm.Usage
}

// openAIChunk is what Kelpie reads of a chat.completion.chunk event,
// decoded as a completion is (see openAICompletion): the SDK's decoder
// took a third of a streamed turn's CPU.
type openAIChunk struct {
	// Error is set in an error event inside the stream.
	Error   json.RawMessage `json:"error"`
	Choices []struct {
		Index        int64  `json:"index"`
		FinishReason string `json:"finish_reason"`
		Delta        struct {
			openAIText
			ToolCalls []openAIToolCallPart `json:"tool_calls"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *openAIUsage `json:"usage"`
}

// openAIToolCallPart is a fragment of a streamed tool call.
type openAIToolCallPart struct {
	Index    *int64 `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// read reads the stream's events up to [DONE], the end of the stream or
// an error event, as the SDK's stream does; a field of another type than
// expected is left empty, as the SDK leaves it.
func (a *openAIStream) read(dec ssestream.Decoder, onDelta func(llm.Delta)) error {
	if dec == nil {
		return nil
	}
	defer dec.Close()
	for dec.Next() {
		ev := dec.Event()
		if bytes.HasPrefix(ev.Data, []byte("[DONE]")) {
			return nil
		}
		var c openAIChunk
		var typeErr *json.UnmarshalTypeError
		err := json.Unmarshal(ev.Data, &c)
		if len(c.Error) > 0 {
			return &ssestream.StreamError{Message: "received error while streaming: " + errorText(c.Error), Event: ev}
		}
		if err != nil && !errors.As(err, &typeErr) {
			return err
		}
		a.add(&c, onDelta)
	}
	return dec.Err()
}

// errorText is an error event's error as the SDK words it: a string's
// text, else the JSON.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func (a *openAIStream) add(chunk *openAIChunk, onDelta func(llm.Delta)) {
	if u := chunk.Usage; u != nil {
		a.usage = llm.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens}
	}
	for _, ch := range chunk.Choices {
		if ch.Index != 0 {
			continue
		}
		d := ch.Delta
		if r := firstString(d.ReasoningContent, d.Reasoning); r != "" {
			a.reasoning.WriteString(r)
			onDelta(llm.Delta{Reasoning: r})
		}
		if text := firstString(d.Content, d.Refusal); text != "" {
			a.content.WriteString(text)
			onDelta(llm.Delta{Content: text})
		}
		for _, tc := range d.ToolCalls {
			i := a.callFor(tc)
			c := &a.calls[i]
			if tc.ID != "" {
				c.ID = tc.ID
			}
			if tc.Function.Name != "" {
				c.Name = tc.Function.Name
			}
			c.Arguments += tc.Function.Arguments
			if a.streamTools {
				onDelta(llm.Delta{ToolCall: &llm.ToolCallDelta{Index: i, ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
			}
		}
		if ch.FinishReason != "" {
			a.finish = ch.FinishReason
		}
	}
}

// callFor finds the call a tool-call fragment belongs to: by its index,
// or, from servers that send none, by its id, else the last call.
func (a *openAIStream) callFor(tc openAIToolCallPart) int {
	if a.byIndex == nil {
		a.byIndex = map[int64]int{}
	}
	if tc.Index != nil {
		if i, ok := a.byIndex[*tc.Index]; ok {
			if tc.ID == "" || a.calls[i].ID == "" || a.calls[i].ID == tc.ID {
				return i
			}
		}
		a.calls = append(a.calls, llm.ToolCall{})
		a.byIndex[*tc.Index] = len(a.calls) - 1
		return len(a.calls) - 1
	}
	if tc.ID != "" {
		for i := range a.calls {
			if a.calls[i].ID == tc.ID {
				return i
			}
		}
	}
	if tc.ID == "" && len(a.calls) > 0 {
		return len(a.calls) - 1
	}
	a.calls = append(a.calls, llm.ToolCall{})
	return len(a.calls) - 1
}

func (a *openAIStream) response() *llm.Response {
	return &llm.Response{
		Content:    a.content.String(),
		Reasoning:  a.reasoning.String(),
		ToolCalls:  a.calls,
		StopReason: openAIStopReason(a.finish, len(a.calls) > 0),
		Usage:      a.usage,
	}
}

func (p *openAIProvider) mapError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("llm %s: %w", p.name, ctx.Err())
	}
	var statusErr *openAIStatusError
	if errors.As(err, &statusErr) {
		return p.statusError(statusErr.Status, statusErr.Header, statusErr.Message, statusErr.Code, err)
	}
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		code := apiErr.Code
		if code == "" {
			code = apiErr.Type
		}
		var header http.Header
		if apiErr.Response != nil {
			header = apiErr.Response.Header
		}
		return p.statusError(apiErr.StatusCode, header, apiErr.Message, code, err)
	}
	var se *ssestream.StreamError
	if errors.As(err, &se) {
		// An error event inside a 200 stream: {"error": {...}}.
		var body struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
				Code    any    `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(se.Event.Data, &body)
		msg := body.Error.Message
		if msg == "" {
			msg = truncate(string(se.Event.Data), 500)
		}
		code, _ := body.Error.Code.(string)
		if code == "" {
			code = body.Error.Type
		}
		status := statusForErrorType(body.Error.Type)
		if status == 0 {
			status = statusForErrorType(code)
		}
		return &llm.Error{
			Provider:        p.name,
			Status:          status,
			Retryable:       status == 0 || retryableStatus(status),
			Message:         msg,
			Code:            code,
			ContextExceeded: contextExceeded(status, code, msg),
			Err:             err,
		}
	}
	return transportError(ctx, p.name, err)
}

// statusError is the error of a response with an error status.
func (p *openAIProvider) statusError(status int, header http.Header, msg, code string, err error) *llm.Error {
	if msg == "" {
		msg = http.StatusText(status)
	}
	e := &llm.Error{
		Provider:   p.name,
		Status:     status,
		Retryable:  retryableStatus(status),
		Message:    msg,
		Code:       code,
		RetryAfter: retryAfter(header),
		Err:        err,
	}
	if code == "insufficient_quota" {
		e.Retryable = false // a 429 that waiting does not fix
	}
	e.ContextExceeded = contextExceeded(status, code, msg)
	return e
}

// ListModels lists the models of GET {base}/models.
func (p *openAIProvider) ListModels(ctx context.Context) ([]llm.ModelInfo, error) {
	page, err := p.client.Models.List(ctx)
	if err != nil {
		return nil, p.mapError(ctx, err)
	}
	var out []llm.ModelInfo
	for _, m := range page.Data {
		if m.ID == "" {
			continue
		}
		out = append(out, llm.ModelInfo{
			Handle:        p.name + "/" + m.ID,
			Provider:      p.name,
			Name:          m.ID,
			ContextWindow: extraInt(m.JSON.ExtraFields, "context_window", "context_length", "max_model_len"),
		})
	}
	return out, nil
}

func extraInt(fields map[string]respjson.Field, keys ...string) int {
	for _, k := range keys {
		f, ok := fields[k]
		if !ok {
			continue
		}
		var n float64
		if json.Unmarshal([]byte(f.Raw()), &n) == nil && n > 0 {
			return int(n)
		}
	}
	return 0
}
