// Package llm is Kelpie's one interface to language-model providers: chat
// completions with tool calling, plain or streamed.
//
// Providers (package llm/providers) speak their vendor's wire protocol
// (OpenAI-compatible chat completions; Anthropic Messages). Nothing above
// this package knows which one it talks to. Errors say which provider failed, how (status) and whether
// retrying may help.
package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Role is who said a message.
type Role string

const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool"
)

// Message is one turn of a conversation sent to a model.
type Message struct {
	Role Role
	// Content is the text. An assistant message may have none when it only
	// calls tools.
	Content string
	// ToolCalls are the calls an assistant message made.
	ToolCalls []ToolCall
	// ToolCallID names the call a tool message answers.
	ToolCallID string
	// Images are pictures a user message or a tool result shows the model,
	// after its text.
	Images []Image
}

// Image is a picture in a message: at a URL the provider fetches, or
// inline as base64 Data of MediaType.
type Image struct {
	URL       string `json:"url,omitempty"`
	MediaType string `json:"media_type,omitempty"` // image/png, image/jpeg, image/gif or image/webp, with Data
	Data      string `json:"data,omitempty"`       // base64
}

// DataURL is the image as a URL: its URL, or a data: URL of its bytes.
func (im Image) DataURL() string {
	if im.URL != "" {
		return im.URL
	}
	return "data:" + im.MediaType + ";base64," + im.Data
}

// ToolCall is a model's request to run a tool.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // a JSON object, as text
}

// Tool is a tool offered to the model.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // JSON Schema of the arguments object
}

// Request is one completion request.
type Request struct {
	Model     string // the provider's model name (no "provider/" prefix)
	Messages  []Message
	Tools     []Tool
	MaxTokens int // 0: the provider's default
	// ToolChoice is "auto" (default), "required" or "none". The name of
	// one of Tools forces that tool. It is not sent when Tools is empty.
	ToolChoice string
	// StreamToolCalls asks a streamed Complete to also pass tool-call
	// fragments to onDelta (Delta.ToolCall). Without it onDelta only ever
	// receives text (Content or Reasoning, never both empty).
	StreamToolCalls bool
}

// StopReason is why the model stopped.
type StopReason string

const (
	StopEndTurn   StopReason = "end_turn"   // finished its answer
	StopToolCalls StopReason = "tool_calls" // wants tools run
	StopMaxTokens StopReason = "max_tokens" // ran out of output tokens
)

// Usage counts tokens.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Response is a finished completion.
type Response struct {
	Content    string
	Reasoning  string
	ToolCalls  []ToolCall
	StopReason StopReason
	Usage      Usage
}

// Delta is a piece of a streamed response, delivered as it arrives.
// Concatenating every Content (Reasoning) gives Response.Content
// (Response.Reasoning).
type Delta struct {
	Content   string
	Reasoning string
	// ToolCall is a fragment of a tool call; only sent when
	// Request.StreamToolCalls is set, and then Content and Reasoning are
	// empty.
	ToolCall *ToolCallDelta
}

// ToolCallDelta is a fragment of a streamed tool call.
type ToolCallDelta struct {
	// Index is the call's position in Response.ToolCalls.
	Index int
	// ID and Name are set on a call's first fragment (and may repeat).
	ID   string
	Name string
	// Arguments is the next piece of the arguments' JSON text.
	Arguments string
}

// Provider is one configured model provider.
type Provider interface {
	// Name is the provider's handle prefix, such as "openai".
	Name() string
	// Complete runs req. If onDelta is not nil the response is streamed
	// and onDelta receives text as it arrives; the full Response is
	// returned either way.
	Complete(ctx context.Context, req Request, onDelta func(Delta)) (*Response, error)
}

// Error is a provider failure.
type Error struct {
	Provider  string
	Status    int  // HTTP status, 0 if the request never got one
	Retryable bool // rate limits, timeouts, 5xx
	Message   string
	// Code is the vendor's error code or type when it sent one, such as
	// "rate_limit_exceeded", "context_length_exceeded", "overloaded_error".
	Code string
	// ContextExceeded reports that the prompt does not fit the model's
	// context window: retrying unchanged won't help, shortening may.
	ContextExceeded bool
	// RetryAfter is how long the provider asked to wait (Retry-After), 0
	// if it did not say.
	RetryAfter time.Duration
	// Err is the underlying error (an SDK or network error), if any.
	Err error
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is an *Error that may succeed if retried.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("llm %s: status %d: %s", e.Provider, e.Status, e.Message)
	}
	return fmt.Sprintf("llm %s: %s", e.Provider, e.Message)
}
