package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kelpie/kelpie/llm"
)

// retryableStatus reports whether an HTTP status is worth retrying.
func retryableStatus(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusConflict,
		status == http.StatusTooManyRequests, status >= 500:
		return true
	}
	return false
}

// contextExceeded guesses from a vendor's error code and message whether a
// request failed because the prompt is longer than the context window.
func contextExceeded(status int, code, msg string) bool {
	if code == "context_length_exceeded" || code == "model_context_window_exceeded" {
		return true
	}
	if status != 0 && status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
		return false
	}
	m := strings.ToLower(msg)
	for _, s := range []string{
		"prompt is too long",         // Anthropic
		"maximum context length",     // OpenAI, vLLM
		"context length exceeded",    // various
		"context_length_exceeded",    // various
		"exceeds the context window", // various
		"context window exceeds",
		"input is too long",
	} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// retryAfter reads Retry-After / retry-after-ms from a response.
func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
			return time.Duration(s * float64(time.Second))
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := time.Until(t); d > 0 {
				return d
			}
		}
	}
	return 0
}

// transportError maps an error that is not a vendor API error: a context
// error of the caller's is passed through (wrapped, so errors.Is(err,
// ctx.Err()) holds), network failures and timeouts become retryable *Error,
// anything else a non-retryable *Error.
func transportError(ctx context.Context, provider string, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("llm %s: %w", provider, ctx.Err())
	}
	var le *llm.Error
	if errors.As(err, &le) {
		return le
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The per-request timeout of the provider's config, not the caller's.
		return &llm.Error{Provider: provider, Retryable: true, Message: "request timed out", Err: err}
	}
	if isNetworkError(err) {
		return &llm.Error{Provider: provider, Retryable: true, Message: networkMessage(err), Err: err}
	}
	return &llm.Error{Provider: provider, Message: "the request to the provider failed", Err: err}
}

// networkMessage says what went wrong with the connection without the
// provider's address: the message reaches clients (a run's error, a stream's
// error event), and the address may be an internal one (OPENAI_BASE_URL).
// The whole error stays in Err, for the server's log.
func networkMessage(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "could not connect to the provider: connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "the provider's connection was reset"
	case errors.As(err, &dns):
		return "could not resolve the provider's host name"
	case errors.As(err, &ne) && ne.Timeout():
		return "the connection to the provider timed out"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return "the provider closed the connection"
	}
	return "the connection to the provider failed"
}

func isNetworkError(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// HTTP/2 stream resets and the like carry no typed error.
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "stream error") ||
		strings.Contains(s, "server closed") || strings.Contains(s, "broken pipe")
}

// streamEndedError is returned when a stream stopped before the vendor's
// end-of-message marker: the response is incomplete.
func streamEndedError(provider string) error {
	return &llm.Error{Provider: provider, Retryable: true, Message: "stream ended before the response was complete"}
}

// streamEndError returns why a stream that has run out failed, or nil: its
// error err (mapped by mapError), the caller's context ending, or, if the
// vendor's end-of-message marker never came (complete false), its ending
// early.
func streamEndError(ctx context.Context, provider string, err error, mapError func(context.Context, error) error, complete bool) error {
	if err != nil {
		return mapError(ctx, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("llm %s: %w", provider, ctx.Err())
	}
	if !complete {
		return streamEndedError(provider)
	}
	return nil
}

// statusForErrorType maps a vendor error type received inside a stream (the
// HTTP status was already 200) to the status the same error would have had.
func statusForErrorType(t string) int {
	switch t {
	case "invalid_request_error", "invalid_request":
		return http.StatusBadRequest
	case "authentication_error":
		return http.StatusUnauthorized
	case "permission_error":
		return http.StatusForbidden
	case "not_found_error":
		return http.StatusNotFound
	case "request_too_large":
		return http.StatusRequestEntityTooLarge
	case "rate_limit_error", "rate_limit_exceeded":
		return http.StatusTooManyRequests
	case "overloaded_error":
		return 529
	case "timeout_error":
		return http.StatusGatewayTimeout
	case "api_error", "server_error":
		return http.StatusInternalServerError
	}
	return 0
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
