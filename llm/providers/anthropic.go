package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/kelpie/kelpie/llm"
)

// DefaultAnthropicBaseURL is Anthropic's API.
const DefaultAnthropicBaseURL = "https://api.anthropic.com"

// DefaultAnthropicMaxTokens is the max_tokens sent (Anthropic requires
// one) when Request.MaxTokens is 0 and the config sets none.
const DefaultAnthropicMaxTokens = 4096

// AnthropicConfig configures a provider over Anthropic's Messages API.
type AnthropicConfig struct {
	// Name is the provider's handle prefix; "anthropic" if empty.
	Name   string
	APIKey string
	// BaseURL is the API root that v1/messages is under;
	// DefaultAnthropicBaseURL if empty.
	BaseURL    string
	HTTPClient *http.Client
	// MaxRetries is how often the SDK itself retries; 0 by default.
	MaxRetries int
	// Timeout bounds each request, a streamed body included; 0: none.
	Timeout time.Duration
	// MaxTokens is the default max_tokens; DefaultAnthropicMaxTokens if 0.
	MaxTokens int
	// Headers are extra HTTP headers sent with every request (such as
	// anthropic-beta).
	Headers map[string]string
}

type anthropicProvider struct {
	name      string
	client    anthropic.Client
	maxTokens int
}

// NewAnthropic returns a provider over Anthropic's Messages API.
func NewAnthropic(cfg AnthropicConfig) llm.Provider {
	name := cfg.Name
	if name == "" {
		name = "anthropic"
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultAnthropicBaseURL
	}
	opts := []option.RequestOption{
		// The SDK reads no ANTHROPIC_* variables then: the config is all.
		option.WithoutEnvironmentDefaults(),
		option.WithBaseURL(base),
		option.WithMaxRetries(max(cfg.MaxRetries, 0)),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
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
	maxTokens := cfg.MaxTokens
	if maxTokens <= 0 {
		maxTokens = DefaultAnthropicMaxTokens
	}
	return &anthropicProvider{name: name, client: anthropic.NewClient(opts...), maxTokens: maxTokens}
}

func (p *anthropicProvider) Name() string { return p.name }

func (p *anthropicProvider) Complete(ctx context.Context, req llm.Request, onDelta func(llm.Delta)) (*llm.Response, error) {
	params, err := p.params(req)
	if err != nil {
		return nil, &llm.Error{Provider: p.name, Message: err.Error()}
	}
	if onDelta == nil && tooSlowUnstreamed(params) {
		onDelta = func(llm.Delta) {}
	}
	if onDelta == nil {
		msg, err := p.client.Messages.New(ctx, params)
		if err != nil {
			return nil, p.mapError(ctx, err)
		}
		return anthropicResponse(msg), nil
	}
	return p.stream(ctx, params, req.StreamToolCalls, onDelta)
}

// tooSlowUnstreamed reports whether the SDK refuses to send a request
// unstreamed because it may take more than ten minutes (a large
// max_tokens): such requests are streamed instead.
func tooSlowUnstreamed(params anthropic.MessageNewParams) bool {
	_, err := anthropic.CalculateNonStreamingTimeout(int(params.MaxTokens), params.Model, nil)
	return err != nil
}

// stream sends a streamed request, passing its deltas to onDelta (tool
// calls' only if streamTools), and returns the whole response.
func (p *anthropicProvider) stream(ctx context.Context, params anthropic.MessageNewParams, streamTools bool, onDelta func(llm.Delta)) (*llm.Response, error) {
	stream := p.client.Messages.NewStreaming(ctx, params)
	defer stream.Close()
	acc := anthropicStream{streamTools: streamTools, blockCall: map[int64]int{}}
	for stream.Next() {
		if err := acc.add(stream.Current(), onDelta); err != nil {
			return nil, &llm.Error{Provider: p.name, Retryable: true, Message: "malformed stream: " + err.Error(), Err: err}
		}
	}
	if err := streamEndError(ctx, p.name, stream.Err(), p.mapError, acc.stopped); err != nil {
		return nil, err
	}
	return anthropicResponse(&acc.msg), nil
}

// anthropicStream accumulates the events of a Messages stream.
type anthropicStream struct {
	streamTools bool // pass tool calls' deltas on
	msg         anthropic.Message
	stopped     bool          // message_stop came
	blockCall   map[int64]int // content block index → tool call index
	calls       int           // tool calls so far
}

// add accumulates an event and passes its delta, if any, to onDelta.
func (a *anthropicStream) add(ev anthropic.MessageStreamEventUnion, onDelta func(llm.Delta)) error {
	if err := a.msg.Accumulate(ev); err != nil {
		return err
	}
	switch ev.Type {
	case "content_block_start":
		a.blockStart(ev, onDelta)
	case "content_block_delta":
		a.blockDelta(ev, onDelta)
	case "message_stop":
		a.stopped = true
	}
	return nil
}

// blockStart passes on what a content block's start carries: text,
// reasoning, or a tool call's ID and name.
func (a *anthropicStream) blockStart(ev anthropic.MessageStreamEventUnion, onDelta func(llm.Delta)) {
	switch ev.ContentBlock.Type {
	case "text":
		if ev.ContentBlock.Text != "" {
			onDelta(llm.Delta{Content: ev.ContentBlock.Text})
		}
	case "thinking":
		if ev.ContentBlock.Thinking != "" {
			onDelta(llm.Delta{Reasoning: ev.ContentBlock.Thinking})
		}
	case "tool_use":
		a.blockCall[ev.Index] = a.calls
		if a.streamTools {
			onDelta(llm.Delta{ToolCall: &llm.ToolCallDelta{Index: a.calls, ID: ev.ContentBlock.ID, Name: ev.ContentBlock.Name}})
		}
		a.calls++
	}
}

// blockDelta passes on a content block's delta: text, reasoning, or a
// piece of a tool call's arguments.
func (a *anthropicStream) blockDelta(ev anthropic.MessageStreamEventUnion, onDelta func(llm.Delta)) {
	switch ev.Delta.Type {
	case "text_delta":
		if ev.Delta.Text != "" {
			onDelta(llm.Delta{Content: ev.Delta.Text})
		}
	case "thinking_delta":
		if ev.Delta.Thinking != "" {
			onDelta(llm.Delta{Reasoning: ev.Delta.Thinking})
		}
	case "input_json_delta":
		if i, ok := a.blockCall[ev.Index]; ok && a.streamTools && ev.Delta.PartialJSON != "" {
			onDelta(llm.Delta{ToolCall: &llm.ToolCallDelta{Index: i, Arguments: ev.Delta.PartialJSON}})
		}
	}
}

func anthropicResponse(msg *anthropic.Message) *llm.Response {
	resp := &llm.Response{
		Usage: llm.Usage{
			PromptTokens:     int(msg.Usage.InputTokens + msg.Usage.CacheCreationInputTokens + msg.Usage.CacheReadInputTokens),
			CompletionTokens: int(msg.Usage.OutputTokens),
		},
	}
	var content, reasoning strings.Builder
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			content.WriteString(b.Text)
		case "thinking":
			reasoning.WriteString(b.Thinking)
		case "tool_use":
			args := string(bytes.TrimSpace(b.Input))
			if args == "" || args == "null" {
				args = "{}"
			}
			resp.ToolCalls = append(resp.ToolCalls, llm.ToolCall{ID: b.ID, Name: b.Name, Arguments: args})
		}
	}
	resp.Content = content.String()
	resp.Reasoning = reasoning.String()
	switch msg.StopReason {
	case anthropic.StopReasonToolUse:
		resp.StopReason = llm.StopToolCalls
	case anthropic.StopReasonMaxTokens, anthropic.StopReasonModelContextWindowExceeded:
		resp.StopReason = llm.StopMaxTokens
	default: // end_turn, stop_sequence, pause_turn, refusal
		resp.StopReason = llm.StopEndTurn
		if len(resp.ToolCalls) > 0 {
			resp.StopReason = llm.StopToolCalls
		}
	}
	return resp
}

// conversationStart is the user turn put first when a conversation would
// otherwise open with the assistant, which Anthropic does not accept.
const conversationStart = "(conversation start)"

var toolIDInvalid = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

// anthropicToolID makes a tool call id (perhaps another vendor's) fit
// Anthropic's pattern ^[a-zA-Z0-9_-]+$.
func anthropicToolID(id string) string {
	if id == "" {
		return "toolu_missing"
	}
	return toolIDInvalid.ReplaceAllString(id, "_")
}

type anthropicTurn struct {
	user   bool
	blocks []anthropic.ContentBlockParamUnion
}

// params builds the SDK's request: system messages before the first other
// message become the system prompt (later ones are sent as user text),
// tool results become tool_result blocks of user turns, consecutive
// messages of one role are merged into one turn (tool results first, as
// the API requires), empty messages are dropped and a conversation that
// would start with the assistant gets a user turn first.
func (p *anthropicProvider) params(req llm.Request) (anthropic.MessageNewParams, error) {
	maxTokens := req.MaxTokens
	if maxTokens <= 0 {
		maxTokens = p.maxTokens
	}
	params := anthropic.MessageNewParams{Model: anthropic.Model(req.Model), MaxTokens: int64(maxTokens)}
	var c anthropicConversation
	for _, m := range req.Messages {
		if err := c.add(m); err != nil {
			return params, err
		}
	}
	params.Messages = c.messages()
	if len(c.system) > 0 {
		params.System = []anthropic.TextBlockParam{{Text: strings.Join(c.system, "\n\n")}}
	}
	var err error
	if params.Tools, err = anthropicTools(req.Tools); err != nil {
		return params, err
	}
	if len(req.Tools) > 0 {
		params.ToolChoice = anthropicToolChoice(req.ToolChoice)
	}
	return params, nil
}

// anthropicConversation is a conversation being turned into Anthropic's
// shape: a system prompt and turns of alternating roles.
type anthropicConversation struct {
	system []string
	turns  []anthropicTurn
}

// add adds a message.
func (c *anthropicConversation) add(m llm.Message) error {
	switch m.Role {
	case llm.RoleSystem:
		if strings.TrimSpace(m.Content) == "" {
			return nil
		}
		if len(c.turns) == 0 {
			c.system = append(c.system, m.Content)
			return nil
		}
		c.addBlocks(true, anthropic.NewTextBlock("[system] "+m.Content))
	case llm.RoleUser:
		if strings.TrimSpace(m.Content) != "" {
			c.addBlocks(true, anthropic.NewTextBlock(m.Content))
		}
		for _, im := range m.Images {
			c.addBlocks(true, anthropic.ContentBlockParamUnion{OfImage: anthropicImage(im)})
		}
	case llm.RoleAssistant:
		var blocks []anthropic.ContentBlockParamUnion
		if strings.TrimSpace(m.Content) != "" {
			blocks = append(blocks, anthropic.NewTextBlock(m.Content))
		}
		for _, tc := range m.ToolCalls {
			blocks = append(blocks, anthropic.NewToolUseBlock(anthropicToolID(tc.ID), toolInput(tc.Arguments), tc.Name))
		}
		c.addBlocks(false, blocks...)
	case llm.RoleTool:
		b := anthropic.ToolResultBlockParam{ToolUseID: anthropicToolID(m.ToolCallID)}
		if m.Content != "" {
			b.Content = []anthropic.ToolResultBlockParamContentUnion{{OfText: &anthropic.TextBlockParam{Text: m.Content}}}
		}
		for _, im := range m.Images {
			b.Content = append(b.Content, anthropic.ToolResultBlockParamContentUnion{OfImage: anthropicImage(im)})
		}
		c.addBlocks(true, anthropic.ContentBlockParamUnion{OfToolResult: &b})
	default:
		return fmt.Errorf("message with unknown role %q", m.Role)
	}
	return nil
}

// anthropicImage is an image block: from a URL, or inline base64 data.
func anthropicImage(im llm.Image) *anthropic.ImageBlockParam {
	if im.URL != "" {
		return &anthropic.ImageBlockParam{Source: anthropic.ImageBlockParamSourceUnion{OfURL: &anthropic.URLImageSourceParam{URL: im.URL}}}
	}
	return &anthropic.ImageBlockParam{Source: anthropic.ImageBlockParamSourceUnion{
		OfBase64: &anthropic.Base64ImageSourceParam{Data: im.Data, MediaType: anthropic.Base64ImageSourceMediaType(im.MediaType)}}}
}

// addBlocks adds blocks to the last turn if it is of the same role, else
// as a new turn.
func (c *anthropicConversation) addBlocks(user bool, blocks ...anthropic.ContentBlockParamUnion) {
	if len(blocks) == 0 {
		return
	}
	if n := len(c.turns); n > 0 && c.turns[n-1].user == user {
		c.turns[n-1].blocks = append(c.turns[n-1].blocks, blocks...)
		return
	}
	c.turns = append(c.turns, anthropicTurn{user: user, blocks: blocks})
}

// messages returns the turns as the API takes them: starting with a user
// turn, tool results first in each user turn, and a final assistant turn
// (a prefill) not ending in whitespace.
func (c *anthropicConversation) messages() []anthropic.MessageParam {
	turns := c.turns
	if len(turns) == 0 || !turns[0].user {
		turns = append([]anthropicTurn{{user: true, blocks: []anthropic.ContentBlockParamUnion{anthropic.NewTextBlock(conversationStart)}}}, turns...)
	}
	var msgs []anthropic.MessageParam
	for i, t := range turns {
		if t.user {
			// tool_result blocks must come before any other content.
			sort.SliceStable(t.blocks, func(a, b int) bool {
				return t.blocks[a].OfToolResult != nil && t.blocks[b].OfToolResult == nil
			})
			msgs = append(msgs, anthropic.NewUserMessage(t.blocks...))
			continue
		}
		if i == len(turns)-1 {
			// A final assistant turn (a prefill) may not end in whitespace.
			if last := t.blocks[len(t.blocks)-1]; last.OfText != nil {
				last.OfText.Text = strings.TrimRight(last.OfText.Text, " \t\r\n")
			}
		}
		msgs = append(msgs, anthropic.NewAssistantMessage(t.blocks...))
	}
	return msgs
}

// anthropicTools converts the tool definitions: all of them, or those
// before the first that fails and why.
func anthropicTools(tools []llm.Tool) ([]anthropic.ToolUnionParam, error) {
	var out []anthropic.ToolUnionParam
	for _, t := range tools {
		schema, err := inputSchema(t.Parameters)
		if err != nil {
			return out, fmt.Errorf("tool %q: %w", t.Name, err)
		}
		tp := anthropic.ToolParam{Name: t.Name, InputSchema: schema}
		if t.Description != "" {
			tp.Description = anthropic.String(t.Description)
		}
		out = append(out, anthropic.ToolUnionParam{OfTool: &tp})
	}
	return out, nil
}

// anthropicToolChoice converts a tool choice; "" and "auto" are the
// API's default.
func anthropicToolChoice(choice string) anthropic.ToolChoiceUnionParam {
	switch choice {
	case "", "auto":
		return anthropic.ToolChoiceUnionParam{}
	case "required":
		return anthropic.ToolChoiceUnionParam{OfAny: &anthropic.ToolChoiceAnyParam{}}
	case "none":
		return anthropic.ToolChoiceUnionParam{OfNone: &anthropic.ToolChoiceNoneParam{}}
	default:
		return anthropic.ToolChoiceParamOfTool(choice)
	}
}

// toolInput is a tool call's arguments as the JSON object tool_use needs.
// Arguments that are not an object (a truncated call, say) are kept as a
// string under "_arguments" rather than making the request invalid.
func toolInput(args string) any {
	trimmed := strings.TrimSpace(args)
	if trimmed == "" {
		return json.RawMessage("{}")
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(trimmed), &obj) == nil && obj != nil {
		return json.RawMessage(trimmed)
	}
	return map[string]string{"_arguments": args}
}

func inputSchema(raw json.RawMessage) (anthropic.ToolInputSchemaParam, error) {
	var s anthropic.ToolInputSchemaParam
	m, err := schemaMap(raw)
	if err != nil {
		return s, err
	}
	for k, v := range m {
		switch k {
		case "type":
		case "properties":
			s.Properties = v
		case "required":
			if list, ok := v.([]any); ok {
				for _, r := range list {
					if name, ok := r.(string); ok {
						s.Required = append(s.Required, name)
					}
				}
			}
		default:
			if s.ExtraFields == nil {
				s.ExtraFields = map[string]any{}
			}
			s.ExtraFields[k] = v
		}
	}
	return s, nil
}

func (p *anthropicProvider) mapError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("llm %s: %w", p.name, ctx.Err())
	}
	var apiErr *anthropic.Error
	if errors.As(err, &apiErr) {
		var body struct {
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal([]byte(apiErr.RawJSON()), &body)
		msg := apiErr.Message
		if msg == "" {
			msg = body.Error.Message
		}
		status := apiErr.StatusCode
		if status < 400 {
			// An error event inside a 200 stream.
			status = statusForErrorType(body.Error.Type)
		}
		if msg == "" {
			if raw := apiErr.RawJSON(); raw != "" {
				msg = truncate(raw, 500)
			} else {
				msg = http.StatusText(status)
			}
		}
		e := &llm.Error{
			Provider:  p.name,
			Status:    status,
			Retryable: status == 0 || retryableStatus(status),
			Message:   msg,
			Code:      body.Error.Type,
			Err:       err,
		}
		if apiErr.StatusCode >= 400 && apiErr.Response != nil {
			e.RetryAfter = retryAfter(apiErr.Response.Header)
		}
		e.ContextExceeded = contextExceeded(status, e.Code, msg)
		return e
	}
	if s := err.Error(); strings.HasPrefix(s, "received error while streaming: ") {
		var body struct {
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal([]byte(strings.TrimPrefix(s, "received error while streaming: ")), &body)
		status := statusForErrorType(body.Error.Type)
		msg := body.Error.Message
		if msg == "" {
			msg = s
		}
		return &llm.Error{Provider: p.name, Status: status, Retryable: status == 0 || retryableStatus(status),
			Message: msg, Code: body.Error.Type, ContextExceeded: contextExceeded(status, body.Error.Type, msg), Err: err}
	}
	return transportError(ctx, p.name, err)
}

// ListModels lists the models of GET /v1/models.
func (p *anthropicProvider) ListModels(ctx context.Context) ([]llm.ModelInfo, error) {
	iter := p.client.Models.ListAutoPaging(ctx, anthropic.ModelListParams{Limit: anthropic.Int(1000)})
	var out []llm.ModelInfo
	for iter.Next() {
		m := iter.Current()
		out = append(out, llm.ModelInfo{
			Handle:        p.name + "/" + m.ID,
			Provider:      p.name,
			Name:          m.ID,
			ContextWindow: int(m.MaxInputTokens),
		})
		if len(out) >= 10000 {
			break
		}
	}
	if err := iter.Err(); err != nil {
		return nil, p.mapError(ctx, err)
	}
	return out, nil
}
