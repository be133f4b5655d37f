package llmtest

import (
	"bytes"
	"errors"
	"sync"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The double decodes each request body once (see parseBody), which checks
// the whole body is valid JSON, keeping some parts raw (json.RawMessage).
// The helpers here read those parts.

// decodeOptions make the decoder (encoding/json's successor) as tolerant
// as encoding/json: of duplicate names (the last wins) and of invalid UTF-8
// (replaced). Member names match exactly, as the real APIs match them.
var decodeOptions = jsonv2.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// unmarshal decodes a part of a request with decodeOptions.
func unmarshal(raw []byte, v any) error {
	return jsonv2.Unmarshal(raw, v, decodeOptions)
}

// jsonString decodes a JSON value as encoding/json decodes it into a
// string: ok is false if it cannot. A string without escapes is sliced,
// not decoded, which is most of a request's text.
func jsonString(raw []byte) (s string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		inner := raw[1 : n-1]
		if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
			return string(inner), true
		}
	}
	err := unmarshal(raw, &s)
	return s, err == nil
}

// jsonObject reports whether a value of a decoded body (so valid JSON) is
// an object, not null, without decoding it.
func jsonObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// jsonMembers decodes a JSON object's members, the last of each name
// kept; ok is false if the value is not an object.
func jsonMembers(raw []byte) (members map[string]jsontext.Value, ok bool) {
	err := unmarshal(raw, &members)
	return members, err == nil && members != nil
}

// memo remembers what a function made of values, by their exact bytes:
// an agent sends its tools and its earlier messages again on every
// request, so that each is decoded, or checked, once. What it returns is
// shared by every request that sent the value, so is only read.
type memo[T any] struct {
	mu  sync.Mutex
	cur map[string]T // remembered since the generation started
	old map[string]T // the generation before, moved to cur when used
	n   int          // what cur holds, in bytes (see memoCost)
}

// memoMax bounds what a memo's generation holds; past it, the generation
// becomes the old one and the one before is forgotten.
const memoMax = 1 << 20

// memoCost is what a value costs a memo beyond its bytes: about a map
// entry and a decoded value's headers.
const memoCost = 128

// get returns f(raw), calling f only if raw is not remembered; what f
// returns is remembered if ok.
func (m *memo[T]) get(raw []byte, f func([]byte) (v T, ok bool)) (T, bool) {
	m.mu.Lock()
	v, ok := m.cur[string(raw)]
	if !ok {
		if v, ok = m.old[string(raw)]; ok {
			m.keep(raw, v)
		}
	}
	m.mu.Unlock()
	if ok {
		return v, true
	}
	if v, ok = f(raw); ok {
		m.mu.Lock()
		m.keep(raw, v)
		m.mu.Unlock()
	}
	return v, ok
}

// keep remembers v for raw, starting a generation if cur is full; m.mu
// is held.
func (m *memo[T]) keep(raw []byte, v T) {
	if m.cur == nil || m.n+len(raw)+memoCost > memoMax {
		m.old, m.cur, m.n = m.cur, map[string]T{}, 0
	}
	m.cur[string(raw)] = v
	m.n += len(raw) + memoCost
}

// accepted remembers the values a check found valid, by their exact
// bytes, so that the tool schemas an agent sends on every request are
// checked once.
type accepted struct{ m memo[struct{}] }

// check returns check(raw), or "" without calling it if raw was accepted
// before.
func (a *accepted) check(raw []byte, check func([]byte) string) string {
	var r string
	a.m.get(raw, func(raw []byte) (struct{}, bool) {
		r = check(raw)
		return struct{}{}, r == ""
	})
	return r
}

// errNotMemoized aborts a decoding with memoized unmarshalers at a value
// its type cannot hold; parseBody then decodes again without them.
var errNotMemoized = errors.New("llmtest: value not decodable")

// memoized returns an unmarshaler that decodes each value of type T
// through m, as unmarshal decodes it: a value sent before is scanned, not
// decoded again. It replaces the value it decodes into, as the decoder
// does the elements of a slice (it zeroes them first), the only place the
// memoized types are found.
func memoized[T any](m *memo[T]) *jsonv2.Unmarshalers {
	return jsonv2.UnmarshalFromFunc(func(dec *jsontext.Decoder, v *T) error {
		raw, err := dec.ReadValue()
		if err != nil {
			return err
		}
		got, ok := m.get(raw, func(raw []byte) (T, bool) {
			var v T
			return v, unmarshal(raw, &v) == nil
		})
		if !ok {
			return errNotMemoized
		}
		*v = got
		return nil
	})
}
