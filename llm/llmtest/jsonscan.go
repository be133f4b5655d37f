package llmtest

import (
	"bytes"
	"sync"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The double decodes each request body once (see parseBody), which checks
// the whole body is valid JSON. The helpers here then read parts of that
// body (raw values kept as json.RawMessage) without decoding them again:
// they rely on the JSON being valid and are not validators.

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

// jsonObject reports whether a valid JSON value is an object (not null).
func jsonObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// objectMembers calls f with the key and the raw value of each member of a
// valid JSON object, in order; it returns false, calling f for none, if
// the value is not an object.
func objectMembers(raw []byte, f func(key string, val []byte)) bool {
	if !jsonObject(raw) {
		return false
	}
	i := bytes.IndexByte(raw, '{') + 1
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] == '}' {
			return true
		}
		if raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
		keyEnd := skipValue(raw, i)
		key, _ := jsonString(raw[i:keyEnd])
		i = skipSpace(raw, skipSpace(raw, keyEnd)+1) // past the colon
		end := skipValue(raw, i)
		f(key, raw[i:end])
		i = end
	}
}

// objectMember returns the raw value of the last member named key of a
// valid JSON object (the one encoding/json keeps), or nil.
func objectMember(raw []byte, key string) []byte {
	var val []byte
	objectMembers(raw, func(k string, v []byte) {
		if k == key {
			val = v
		}
	})
	return val
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the valid JSON value starting at i.
func skipValue(raw []byte, i int) int {
	if i >= len(raw) {
		return i
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				i = skipString(raw, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(raw) && raw[i] != ',' && raw[i] != '}' && raw[i] != ']' && raw[i] != ' ' && raw[i] != '\t' && raw[i] != '\n' && raw[i] != '\r' {
		i++
	}
	return i
}

// skipString returns the end of the JSON string starting at i: the first
// quote after it not escaped by an odd run of backslashes.
func skipString(raw []byte, i int) int {
	for i++; ; i++ {
		j := bytes.IndexByte(raw[i:], '"')
		if j < 0 {
			return len(raw)
		}
		i += j
		k := i
		for raw[k-1] == '\\' {
			k--
		}
		if (i-k)%2 == 0 {
			return i + 1
		}
	}
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
