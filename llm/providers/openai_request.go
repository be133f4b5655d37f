package providers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/kelpie/kelpie/llm"
)

// A chat-completions request is encoded here, from types that are its wire
// format, rather than by the SDK from its parameter types: the SDK's
// encoder (reflection over union types, each tool's schema decoded into a
// map and encoded again) took about a tenth of the CPU of a whole turn.
// The SDK still sends it, with its headers, retries and error handling.
// The response is decoded here too (openAICompletion), for the same reason.

type openAIRequest struct {
	Model               string               `json:"model"`
	Messages            []openAIMessage      `json:"messages"`
	Tools               []openAITool         `json:"tools,omitempty"`
	ToolChoice          any                  `json:"tool_choice,omitempty"` // "required", "none" or a named function
	MaxTokens           int                  `json:"max_tokens,omitempty"`
	MaxCompletionTokens int                  `json:"max_completion_tokens,omitempty"`
	Stream              bool                 `json:"stream,omitempty"`
	StreamOptions       *openAIStreamOptions `json:"stream_options,omitempty"`
}

type openAIStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// openAIMessage is one message; Content is a string or a list of content
// parts, and is left out only of an assistant message that calls tools
// and says nothing.
type openAIMessage struct {
	Role       string           `json:"role"`
	Content    any              `json:"content,omitempty"`
	ToolCalls  []openAIToolCall `json:"tool_calls,omitempty"`
	ToolCallID string           `json:"tool_call_id,omitempty"`
}

type openAIPart struct {
	Type     string          `json:"type"` // text or image_url
	Text     string          `json:"text,omitempty"`
	ImageURL *openAIImageURL `json:"image_url,omitempty"`
}

type openAIImageURL struct {
	URL string `json:"url"`
}

type openAIToolCall struct {
	ID       string             `json:"id"`
	Type     string             `json:"type"` // function
	Function openAIFunctionCall `json:"function"`
}

type openAIFunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type openAITool struct {
	Type     string         `json:"type"` // function
	Function openAIFunction `json:"function"`
}

type openAIFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

type openAINamedChoice struct {
	Type     string `json:"type"` // function
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

// toolImagesIntro introduces the images tool results returned: a tool
// message holds text only, so they follow the results as a user message.
const toolImagesIntro = "Images returned by the tool calls above:"

// emptySchema is the parameters of a tool that declares none.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// requestBody encodes req as a chat-completions request, streamed or not.
func (p *openAIProvider) requestBody(req llm.Request, stream bool) ([]byte, error) {
	out := openAIRequest{Model: req.Model, Messages: make([]openAIMessage, 0, len(req.Messages))}
	var toolImages []llm.Image // of the tool results just added
	for _, m := range req.Messages {
		if m.Role != llm.RoleTool && len(toolImages) > 0 {
			out.Messages = append(out.Messages, openAIUserMessage(toolImagesIntro, toolImages))
			toolImages = nil
		}
		switch m.Role {
		case llm.RoleSystem:
			out.Messages = append(out.Messages, openAIMessage{Role: "system", Content: m.Content})
		case llm.RoleUser:
			out.Messages = append(out.Messages, openAIUserMessage(m.Content, m.Images))
		case llm.RoleAssistant:
			a := openAIMessage{Role: "assistant"}
			if m.Content != "" || len(m.ToolCalls) == 0 {
				a.Content = m.Content
			}
			for _, tc := range m.ToolCalls {
				args := tc.Arguments
				if strings.TrimSpace(args) == "" {
					args = "{}"
				}
				a.ToolCalls = append(a.ToolCalls, openAIToolCall{ID: tc.ID, Type: "function", Function: openAIFunctionCall{Name: tc.Name, Arguments: args}})
			}
			out.Messages = append(out.Messages, a)
		case llm.RoleTool:
			out.Messages = append(out.Messages, openAIMessage{Role: "tool", Content: m.Content, ToolCallID: m.ToolCallID})
			toolImages = append(toolImages, m.Images...)
		default:
			return nil, fmt.Errorf("message with unknown role %q", m.Role)
		}
	}
	if len(toolImages) > 0 {
		out.Messages = append(out.Messages, openAIUserMessage(toolImagesIntro, toolImages))
	}
	for _, t := range req.Tools {
		params, err := schemaObject(t.Parameters)
		if err != nil {
			return nil, fmt.Errorf("tool %q: %w", t.Name, err)
		}
		out.Tools = append(out.Tools, openAITool{Type: "function", Function: openAIFunction{Name: t.Name, Description: t.Description, Parameters: params}})
	}
	if len(req.Tools) > 0 {
		switch req.ToolChoice {
		case "", "auto":
		case "required", "none":
			out.ToolChoice = req.ToolChoice
		default:
			named := openAINamedChoice{Type: "function"}
			named.Function.Name = req.ToolChoice
			out.ToolChoice = named
		}
	}
	if req.MaxTokens > 0 {
		if p.maxTokensField == "max_tokens" {
			out.MaxTokens = req.MaxTokens
		} else {
			out.MaxCompletionTokens = req.MaxTokens
		}
	}
	out.Stream = stream
	if stream && p.streamUsage {
		out.StreamOptions = &openAIStreamOptions{IncludeUsage: true}
	}
	return json.Marshal(out)
}

// openAIUserMessage is a user message: plain text, or content parts when it
// shows images (image_url parts, with data: URLs for inline images).
func openAIUserMessage(text string, images []llm.Image) openAIMessage {
	if len(images) == 0 {
		return openAIMessage{Role: "user", Content: text}
	}
	var parts []openAIPart
	if text != "" {
		parts = append(parts, openAIPart{Type: "text", Text: text})
	}
	for _, im := range images {
		parts = append(parts, openAIPart{Type: "image_url", ImageURL: &openAIImageURL{URL: im.DataURL()}})
	}
	return openAIMessage{Role: "user", Content: parts}
}

// schemaObject checks a tool's JSON Schema, which must be an object; an
// empty one is an object without properties.
func schemaObject(raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return emptySchema, nil
	}
	if trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, fmt.Errorf("parameters are not a JSON object: %.100s", trimmed)
	}
	return trimmed, nil
}
