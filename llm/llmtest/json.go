package llmtest

import (
	"bytes"
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

// accepted remembers the values a check found valid, by their exact
// bytes, so that the tool schemas an agent sends on every request are
// checked once.
type accepted struct {
	mu sync.Mutex
	m  map[string]bool
}

// acceptedMax bounds what an accepted remembers; past it, it starts over.
const acceptedMax = 1024

// check returns check(raw), or "" without calling it if raw was accepted
// before.
func (a *accepted) check(raw []byte, check func([]byte) string) string {
	a.mu.Lock()
	known := a.m[string(raw)]
	a.mu.Unlock()
	if known {
		return ""
	}
	r := check(raw)
	if r == "" {
		a.mu.Lock()
		if a.m == nil || len(a.m) >= acceptedMax {
			a.m = map[string]bool{}
		}
		a.m[string(raw)] = true
		a.mu.Unlock()
	}
	return r
}
