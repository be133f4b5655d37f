package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// DefaultPingInterval is how often a stream sends a keep-alive ping when
// the request asks for pings (Options.PingInterval overrides it).
const DefaultPingInterval = 30 * time.Second

// written is what a handler returns when it has already written its
// response (a stream).
type written struct{}

// streamOptions shape one SSE stream.
type streamOptions struct {
	pings bool
	// types keeps only these message types; nil keeps all.
	types []string
	// startingAfter skips events numbered up to it (a resumed stream).
	startingAfter int
}

func (o streamOptions) keep(m letta.Message) bool {
	return o.types == nil || slices.Contains(o.types, m.Base().MessageType)
}

// errorMessage is the payload of a stream's error event (Letta's
// LettaErrorMessage).
type errorMessage struct {
	MessageType string `json:"message_type"`
	RunID       string `json:"run_id"`
	ErrorType   string `json:"error_type"`
	Message     string `json:"message"`
	Detail      string `json:"detail"`
	SeqID       *int   `json:"seq_id"`
}

// streamTurn sends a turn as Server-Sent Events, the way Letta streams: one
// `data: <json>` event per message (no event names, which the SDK would
// drop), pings while waiting if asked, then the stop_reason, the
// usage_statistics and `data: [DONE]`. A turn that failed ends with the
// stop_reason, an `event: error` carrying an error_message, and [DONE].
//
// If the client goes away the turn goes on; its result stays readable
// through the run routes.
func (s *server) streamTurn(w http.ResponseWriter, r *http.Request, t *agent.Turn, o streamOptions) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	flush := func() {
		s.writeDeadline(w) // each write has WriteTimeout; the stream, none
		_ = rc.Flush()
	}
	flush()

	var pings <-chan time.Time
	if o.pings {
		ticker := s.clock.NewTicker(s.opts.PingInterval)
		defer ticker.Stop()
		pings = ticker.C()
	}
	var buf bytes.Buffer
	data := func(v any) {
		buf.WriteString("data: ")
		writeEventJSON(&buf, v)
		buf.WriteString("\n\n")
	}
	lastSeq := 0
	for next := 0; ; {
		evs, done, changed := t.Events(next)
		next += len(evs)
		for _, e := range evs {
			seq := *e.Message.Base().SeqID
			lastSeq = seq
			if seq <= o.startingAfter || !o.keep(e.Message) {
				continue
			}
			data(e.Message)
		}
		if done {
			break
		}
		if buf.Len() > 0 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			buf.Reset()
			flush()
		}
		select {
		case <-changed:
		case <-pings:
			if _, err := w.Write([]byte("data: {\"message_type\":\"ping\"}\n\n")); err != nil {
				return
			}
			flush()
		case <-r.Context().Done():
			return
		}
	}
	res := t.Result()
	data(letta.NewStopReasonMessage(res.StopReason))
	if res.Error != "" && res.StopReason != letta.StopCancelled {
		seq := lastSeq + 1
		buf.WriteString("event: error\n")
		data(errorMessage{
			MessageType: "error_message", RunID: res.RunID, ErrorType: res.ErrorType,
			Message: errorSummary(res.StopReason), Detail: res.Error, SeqID: &seq,
		})
	} else {
		data(res.Usage)
	}
	buf.WriteString("data: [DONE]\n\n")
	if _, err := w.Write(buf.Bytes()); err == nil {
		flush()
	}
}

func errorSummary(stopReason string) string {
	switch stopReason {
	case letta.StopLLMAPIError:
		return "The model provider returned an error."
	case letta.StopContextOverflow:
		return "The agent's prompt does not fit in the model's context window."
	}
	return "The agent's turn failed."
}

// writeEventJSON encodes v on one line without escaping HTML characters.
func writeEventJSON(buf *bytes.Buffer, v any) {
	start := buf.Len()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Truncate(start)
		buf.WriteString(`{"message_type":"error_message","error_type":"internal_error","message":"could not encode an event"}`)
		return
	}
	buf.Truncate(buf.Len() - 1) // the encoder's newline
}

// response filters a non-streaming response's messages.
func (o streamOptions) response(resp *letta.Response) *letta.Response {
	resp.Messages = o.filter(resp.Messages)
	return resp
}

// filter keeps the messages of the asked-for types.
func (o streamOptions) filter(ms []letta.Message) []letta.Message {
	if o.types == nil {
		return ms
	}
	kept := []letta.Message{}
	for _, m := range ms {
		if o.keep(m) {
			kept = append(kept, m)
		}
	}
	return kept
}
