package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// unknownErrorDetail is Letta's detail for every unhandled server error.
const unknownErrorDetail = "An unknown error occurred"

// httpError is an error with the response that reports it.
type httpError struct {
	status int
	body   any
	header http.Header
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %v", e.status, e.body) }

// detail is Letta's usual error body.
type detail struct {
	Detail string `json:"detail"`
}

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, body: detail{fmt.Sprintf(format, args...)}}
}

// withHeader returns e with a response header added.
func (e *httpError) withHeader(key, value string) *httpError {
	if e.header == nil {
		e.header = http.Header{}
	}
	e.header.Set(key, value)
	return e
}

// busyBody is Letta's answer to a message for a busy conversation.
type busyBody struct {
	Detail string `json:"detail"`
	RunID  string `json:"run_id,omitempty"`
}

// validationBody is the 422 body of Letta's RequestValidationError handler:
// detail is the Python repr of pydantic's error list, and examples is only
// present when a path id was malformed.
type validationBody struct {
	TraceID  string   `json:"trace_id"`
	Detail   string   `json:"detail"`
	Examples []string `json:"examples,omitempty"`
}

// pyErr is one pydantic validation error.
type pyErr struct {
	typ   string
	loc   pyTuple
	msg   string
	input any // omitted when noInput
	ctx   pyDict

	noInput bool
	example string // for malformed path ids: an example of a good one
}

func (e pyErr) dict() pyDict {
	d := pyDict{{"type", e.typ}, {"loc", e.loc}, {"msg", e.msg}}
	if !e.noInput {
		d = append(d, pyKV{"input", e.input})
	}
	if e.ctx != nil {
		d = append(d, pyKV{"ctx", e.ctx})
	}
	return d
}

// validationError is the 422 answer to a request that failed validation.
func validationError(errs ...pyErr) *httpError {
	list := make(pyList, len(errs))
	var examples []string
	for i, e := range errs {
		list[i] = e.dict()
		if e.example != "" {
			examples = append(examples, e.example)
		}
	}
	slices.Sort(examples)
	return &httpError{
		status: http.StatusUnprocessableEntity,
		body:   validationBody{Detail: pyRepr(list), Examples: slices.Compact(examples)},
	}
}

// badPathID is Letta's rewritten error for a malformed id in a path.
func badPathID(param, prefix, value string) pyErr {
	return pyErr{
		typ:     "string_pattern_mismatch",
		loc:     pyTuple{"path", param},
		msg:     fmt.Sprintf("String should match pattern '%s-{uuid4}'", prefix),
		input:   value,
		ctx:     pyDict{{"pattern", letta.IDPattern(prefix)}},
		example: prefix + "-123e4567-e89b-42d3-8456-426614174000",
	}
}

// serviceError maps an error from the agent service to its response, by
// the kind the service gives it. fault reports a real fault, which the
// caller logs.
func serviceError(err error) (e *httpError, fault bool) {
	var he *httpError
	if errors.As(err, &he) {
		return he, false
	}
	var busy *letta.ConversationBusy
	if errors.As(err, &busy) {
		return &httpError{status: http.StatusConflict, body: busyBody{Detail: busy.Error(), RunID: busy.RunID}}, false
	}
	var le *letta.Error
	detail := ""
	if errors.As(err, &le) {
		detail = le.Message
	}
	k := agent.KindOf(err)
	switch k {
	case letta.KindInvalid:
		return errorf(k.HTTPStatus(), "%s", detail), false
	case letta.KindNotFound, letta.KindUpstream:
		return errorf(k.HTTPStatus(), "%s", detail), false
	case letta.KindConflict:
		// A permanent conflict: the SDK's automatic retry of 409 would
		// only repeat it.
		return errorf(k.HTTPStatus(), "%s", detail).withHeader("X-Should-Retry", "false"), false
	case letta.KindUnavailable:
		// Missing configuration: retrying will not help until someone
		// configures the server.
		return errorf(k.HTTPStatus(), "%s", detail).withHeader("X-Should-Retry", "false"), false
	case letta.KindBusy:
		return errorf(k.HTTPStatus(), "Server is busy, please retry").
			withHeader("Retry-After", "1").withHeader("X-Should-Retry", "true"), false
	case letta.KindContended:
		return errorf(k.HTTPStatus(), "Concurrent update, please retry").
			withHeader("X-Should-Retry", "true"), false
	case letta.KindShuttingDown:
		return errorf(k.HTTPStatus(), "Server is shutting down").
			withHeader("X-Should-Retry", "true"), false
	case letta.KindMoved:
		return errorf(k.HTTPStatus(), "Agent moved to another owner, please retry").
			withHeader("X-Should-Retry", "true"), false
	case letta.KindCancelled:
		return errorf(k.HTTPStatus(), "Request was cancelled or timed out; its outcome is unknown").
			withHeader("X-Should-Retry", "true"), false
	case letta.KindTooLarge:
		return errorf(k.HTTPStatus(), "Request is too large to store"), false
	case letta.KindDiskFull:
		return errorf(k.HTTPStatus(), "Insufficient storage: the server cannot make writes durable until disk space is freed; reads still work").
			withHeader("Retry-After", "10").withHeader("X-Should-Retry", "true"), true
	case letta.KindStorageDown:
		// Logged: whoever runs the server must bring the storage back.
		return errorf(k.HTTPStatus(), "Storage is unavailable; the outcome of a write in progress is unknown, please retry").
			withHeader("Retry-After", "1").withHeader("X-Should-Retry", "true"), true
	case letta.KindCorrupt:
		// Logged (with the damaged file) as the fault it is.
		return errorf(k.HTTPStatus(), "storage corruption detected in the data this request needs; the server logged where, and serves everything else"), true
	}
	return errorf(http.StatusInternalServerError, unknownErrorDetail), true
}

// errorKind names the kind of an error answered, for metrics: the service's
// kind (see letta.Kind.String, "internal" for a fault), or for an answer
// the API made itself, the kind its status stands for.
func errorKind(err error) string {
	var he *httpError
	if !errors.As(err, &he) {
		return agent.KindOf(err).String()
	}
	switch he.status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusMethodNotAllowed:
		return letta.KindInvalid.String()
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusNotFound:
		return letta.KindNotFound.String()
	case http.StatusConflict:
		return letta.KindConflict.String()
	case http.StatusRequestEntityTooLarge:
		return letta.KindTooLarge.String()
	}
	return "request"
}

// Python values for repr: Letta's 422 detail is repr() of pydantic's error
// list, so these render the way Python prints them.
type (
	pyList  []any
	pyTuple []any
	pyDict  []pyKV
	pyKV    struct {
		k string
		v any
	}
	// pyCall is a value whose repr is a call, such as ValueError('...').
	pyCall struct {
		name string
		arg  any
	}
)

// maxReprInput caps how much of one input a repr shows.
const maxReprInput = 1000

func pyRepr(v any) string {
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

func writeRepr(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if v {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int:
		b.WriteString(strconv.Itoa(v))
	case string:
		writeStrRepr(b, v)
	case pyList:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, x)
		}
		b.WriteByte(']')
	case pyTuple:
		b.WriteByte('(')
		for i, x := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, x)
		}
		if len(v) == 1 {
			b.WriteByte(',')
		}
		b.WriteByte(')')
	case pyCall:
		b.WriteString(v.name)
		b.WriteByte('(')
		writeRepr(b, v.arg)
		b.WriteByte(')')
	case pyDict:
		b.WriteByte('{')
		for i, kv := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeStrRepr(b, kv.k)
			b.WriteString(": ")
			writeRepr(b, kv.v)
		}
		b.WriteByte('}')
	default:
		writeStrRepr(b, fmt.Sprint(v))
	}
}

// writeStrRepr writes Python's repr of a str, clipped to maxReprInput
// characters.
func writeStrRepr(b *strings.Builder, s string) { letta.WritePyStr(b, s, maxReprInput) }
