package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/openai/openai-go/v3/option"
)

// A chat-completions request is posted here with net/http, not through the
// SDK: preparing each request there (its option layers, default headers,
// middleware) cost about as much CPU as encoding it. The request carries
// the headers the SDK's would: the key, the configured headers, those of
// OPENAI_CUSTOM_HEADERS, and for api.openai.com the organization and
// project of the process environment. The SDK still lists models.

// maxErrorBodyBytes bounds, in bytes, what is read of an error response's
// body: its message is all that is kept.
const maxErrorBodyBytes = 1 << 20

// openAIChat is how chat completions are posted.
type openAIChat struct {
	url     string
	client  *http.Client
	headers http.Header
}

func newOpenAIChat(cfg OpenAIConfig, base string, official bool) openAIChat {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "OpenAI/Go (kelpie)")
	if cfg.APIKey != "" {
		h.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	if official {
		for env, header := range map[string]string{"OPENAI_ORG_ID": "OpenAI-Organization", "OPENAI_PROJECT_ID": "OpenAI-Project"} {
			if v, ok := os.LookupEnv(env); ok {
				h.Set(header, v)
			}
		}
	}
	if custom, ok := os.LookupEnv("OPENAI_CUSTOM_HEADERS"); ok {
		for line := range strings.SplitSeq(custom, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				h.Set(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
	}
	for k, v := range cfg.Headers {
		h.Set(k, v)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	return openAIChat{url: base + "/" + openAIChatPath, client: client, headers: h}
}

// post sends a chat-completions request and returns the response, its body
// unread, or an *openAIStatusError for an error status.
func (c openAIChat) post(ctx context.Context, body []byte, stream bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = c.headers.Clone()
	if stream {
		req.Header.Set("Accept", "text/event-stream")
	} else {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	if err != nil {
		return nil, err
	}
	msg, code, _ := openAIErrorBody(data, resp.StatusCode)
	return nil, &openAIStatusError{Status: resp.StatusCode, Header: resp.Header, Message: msg, Code: code}
}

// openAIStatusError is an error status of a chat-completions request.
type openAIStatusError struct {
	Status        int
	Header        http.Header
	Message, Code string
}

func (e *openAIStatusError) Error() string {
	return fmt.Sprintf("POST %s: %d %s", openAIChatPath, e.Status, e.Message)
}

// openAIErrorBody reads an error response's body: OpenAI's {"error":
// {"message", "type", "code"}} (object true), or what compatible servers
// send instead ({"error": "text"}, {"detail": ...}, {"message": ...},
// plain text), whose message is its text, else the status's.
func openAIErrorBody(body []byte, status int) (msg, code string, object bool) {
	var obj struct {
		Error   json.RawMessage `json:"error"`
		Detail  json.RawMessage `json:"detail"`
		Message string          `json:"message"`
	}
	ok := json.Unmarshal(body, &obj) == nil
	if ok && len(obj.Error) > 0 && obj.Error[0] == '{' {
		var e struct {
			Message, Type, Code json.RawMessage
		}
		_ = json.Unmarshal(obj.Error, &e) // what is not a string is left out
		code = firstString(e.Code)
		if code == "" {
			code = firstString(e.Type)
		}
		msg = firstString(e.Message)
		if msg == "" {
			msg = http.StatusText(status)
		}
		return msg, code, true
	}
	if ok {
		for _, raw := range []json.RawMessage{obj.Error, obj.Detail} {
			if len(raw) == 0 || string(raw) == "null" {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) == nil {
				msg = s
			} else {
				msg = string(raw)
			}
			break
		}
		if msg == "" {
			msg = obj.Message
		}
	}
	if msg == "" {
		msg = truncate(string(body), 500)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return msg, "", false
}

// normalizeOpenAIError rewrites an error response to the SDK's requests
// (listing models) whose body is not OpenAI's {"error": {...}} so that the
// SDK still returns an *openai.Error with the status and a message.
func normalizeOpenAIError(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
	res, err := next(req)
	if err != nil || res == nil || res.StatusCode < 400 {
		return res, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxErrorBodyBytes))
	_ = res.Body.Close() // all of it that is used was read
	if err != nil {
		return nil, fmt.Errorf("reading the %d response to %s %s: %w", res.StatusCode, req.Method, req.URL.Path, err)
	}
	msg, _, object := openAIErrorBody(body, res.StatusCode)
	if object {
		res.Body = io.NopCloser(bytes.NewReader(body))
		return res, nil
	}
	nb, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg}})
	res.Body = io.NopCloser(bytes.NewReader(nb))
	res.ContentLength = int64(len(nb))
	res.Header.Set("Content-Type", "application/json")
	res.Header.Del("Content-Length")
	return res, nil
}
