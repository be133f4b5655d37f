package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
)

// RequestIDHeader carries a request's id: taken from the request when it
// has a usable one (so that a proxy's or client's id follows the request
// through), made up otherwise, and always sent back in the response.
const RequestIDHeader = "X-Request-Id"

// MaxRequestIDBytes bounds an incoming request id; a longer one, or one with
// characters other than printable ASCII, is replaced by a new id.
const MaxRequestIDBytes = 128

type requestIDKey struct{}

// RequestID is the id of the request ctx serves, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives r its id, in its context and in w's headers.
func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(RequestIDHeader)
	if !usableRequestID(id) {
		var b [16]byte
		rand.Read(b[:]) // never fails (crypto/rand panics instead)
		id = hex.EncodeToString(b[:])
	}
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}

func usableRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// LogRequestIDs wraps h so that every record logged with the context of a
// request (the API's own lines, and the service's that carry the request's
// context) names the request's id as request_id.
func LogRequestIDs(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, rec slog.Record) error {
	if id := RequestID(ctx); id != "" {
		rec.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, rec)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
