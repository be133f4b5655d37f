package letta

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Limits on request fields that many requests share. Each keeps one
// request, and so one stored record, to a size storage accepts with room to
// spare.
const (
	MaxDescriptionChars = 10_000
	MaxTags             = 100
	MaxTagChars         = 256
	MaxMetadataBytes    = 64 << 10 // as encoded JSON
)

// CheckChars checks that a field is valid UTF-8 of at most max characters.
func CheckChars(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return Invalidf("%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Invalidf("%s is %d characters, over the limit of %d", field, n, max)
	}
	return nil
}

// CheckTags checks a list of tags against MaxTags and MaxTagChars.
func CheckTags(field string, tags []string) error {
	if len(tags) > MaxTags {
		return Invalidf("%s has %d entries, over the limit of %d", field, len(tags), MaxTags)
	}
	for i, t := range tags {
		if err := CheckChars(fmt.Sprintf("%s[%d]", field, i), t, MaxTagChars); err != nil {
			return err
		}
	}
	return nil
}

// CheckMetadata checks a metadata object against MaxMetadataBytes.
func CheckMetadata(m map[string]any) error {
	if m == nil {
		return nil
	}
	var size countingWriter
	enc := json.NewEncoder(&size)
	enc.SetEscapeHTML(false) // as it is stored
	if err := enc.Encode(m); err != nil {
		return Invalidf("metadata: %v", err)
	}
	if n := int(size) - 1; n > MaxMetadataBytes { // less Encode's newline
		return Invalidf("metadata is %d bytes of JSON, over the limit of %d", n, MaxMetadataBytes)
	}
	return nil
}

// CheckID checks that s is an id of prefix; field names it in the error.
func CheckID(field, prefix, s string) error {
	if !ValidID(prefix, s) {
		return Invalidf("%s %q is not a%s %s id: want '%s-{uuid4}'", field, Clip(s), article(prefix), prefix, prefix)
	}
	return nil
}

func article(word string) string {
	if word != "" && (word[0] == 'a' || word[0] == 'e' || word[0] == 'i' || word[0] == 'o' || word[0] == 'u') {
		return "n"
	}
	return ""
}

// Clip shortens s for an error message.
func Clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// countingWriter counts the bytes written to it.
type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
