package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// llmControl exposes a scripted model double (llmtest) to the node tests,
// which run in another process, over a loopback control API:
//
//	POST /script    [Reply...]  queue replies, one per completion request
//	GET  /requests              every completion request received so far
//	GET  /pending               {"pending": n}: scripted replies not used yet
//
// so that each test scripts the model right before the step that uses it and
// inspects exactly what Kelpie sent. sdk/llm.mjs is its client.
type llmControl struct {
	srv *llmtest.Server
	hs  *httptest.Server
}

// ctlReply is llmtest.Reply as JSON.
type ctlReply struct {
	Text       string        `json:"text"`
	Reasoning  string        `json:"reasoning"`
	ToolCalls  []ctlToolCall `json:"tool_calls"`
	StopReason string        `json:"stop_reason"`
	Usage      *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Status       int    `json:"status"`
	ErrorMessage string `json:"error_message"`
	ChunkSize    int    `json:"chunk_size"`
	DelayMS      int    `json:"delay_ms"`
	ChunkDelayMS int    `json:"chunk_delay_ms"`
}

type ctlToolCall struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type ctlMessage struct {
	Role       string        `json:"role"`
	Content    string        `json:"content"`
	ToolCalls  []ctlToolCall `json:"tool_calls"`
	ToolCallID string        `json:"tool_call_id,omitempty"`
}

type ctlRequest struct {
	API        string       `json:"api"`
	Path       string       `json:"path"`
	APIKey     string       `json:"api_key"`
	Model      string       `json:"model"`
	System     string       `json:"system"`
	Messages   []ctlMessage `json:"messages"`
	Tools      []string     `json:"tools"`
	ToolChoice string       `json:"tool_choice"`
	Stream     bool         `json:"stream"`
	Rejected   string       `json:"rejected"`
}

func toolCallsJSON(calls []llm.ToolCall) []ctlToolCall {
	out := []ctlToolCall{}
	for _, c := range calls {
		out = append(out, ctlToolCall{ID: c.ID, Name: c.Name, Arguments: c.Arguments})
	}
	return out
}

func newLLMControl(t *testing.T, srv *llmtest.Server) *llmControl {
	c := &llmControl{srv: srv}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /script", func(w http.ResponseWriter, r *http.Request) {
		var in []ctlReply
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var reps []llmtest.Reply
		for _, x := range in {
			rep := llmtest.Reply{
				Text: x.Text, Reasoning: x.Reasoning, StopReason: llm.StopReason(x.StopReason),
				Status: x.Status, ErrorMessage: x.ErrorMessage, ChunkSize: x.ChunkSize,
				Delay: time.Duration(x.DelayMS) * time.Millisecond, ChunkDelay: time.Duration(x.ChunkDelayMS) * time.Millisecond,
			}
			for _, tc := range x.ToolCalls {
				rep.ToolCalls = append(rep.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
			}
			if x.Usage != nil {
				rep.Usage = &llm.Usage{PromptTokens: x.Usage.PromptTokens, CompletionTokens: x.Usage.CompletionTokens}
			}
			reps = append(reps, rep)
		}
		srv.Script(reps...)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, r *http.Request) {
		out := []ctlRequest{}
		for _, q := range srv.Requests() {
			cr := ctlRequest{API: string(q.API), Path: q.Path, APIKey: q.APIKey, Model: q.Model, System: q.System,
				Messages: []ctlMessage{}, Tools: []string{}, ToolChoice: q.ToolChoice, Stream: q.Stream, Rejected: q.Rejected}
			for _, m := range q.Messages {
				cr.Messages = append(cr.Messages, ctlMessage{Role: m.Role, Content: m.Content, ToolCalls: toolCallsJSON(m.ToolCalls), ToolCallID: m.ToolCallID})
			}
			for _, tl := range q.Tools {
				cr.Tools = append(cr.Tools, tl.Name)
			}
			out = append(out, cr)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("GET /pending", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"pending": srv.Pending()})
	})
	c.hs = httptest.NewServer(mux)
	t.Cleanup(c.hs.Close)
	return c
}

// URL is the control API's root.
func (c *llmControl) URL() string { return c.hs.URL }
