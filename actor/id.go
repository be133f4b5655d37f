package actor

import (
	"fmt"
	"strings"
)

// Limits on actor ids, in bytes. Ids become storage keys, so they are short
// and drawn from a small alphabet.
const (
	MaxNamespaceBytes = 32
	MaxKeyBytes       = 128
)

// ID names an actor: a namespace (its kind, such as "agents") and a key
// unique within it. Its text form is "namespace/key".
type ID struct {
	Namespace string
	Key       string
}

// NewID validates namespace and key and returns the ID.
func NewID(namespace, key string) (ID, error) {
	if err := checkPart("namespace", namespace, MaxNamespaceBytes, isNamespaceByte); err != nil {
		return ID{}, err
	}
	if err := checkPart("key", key, MaxKeyBytes, isKeyByte); err != nil {
		return ID{}, err
	}
	return ID{Namespace: namespace, Key: key}, nil
}

// ParseID parses the "namespace/key" form.
func ParseID(s string) (ID, error) {
	ns, key, ok := strings.Cut(s, "/")
	if !ok {
		return ID{}, fmt.Errorf("actor: id %q: want namespace/key", truncate(s))
	}
	return NewID(ns, key)
}

// String returns "namespace/key".
func (id ID) String() string { return id.Namespace + "/" + id.Key }

func checkPart(what, s string, max int, ok func(byte) bool) error {
	if s == "" {
		return fmt.Errorf("actor: empty %s", what)
	}
	if len(s) > max {
		return fmt.Errorf("actor: %s %q is %d bytes, over the limit of %d", what, truncate(s), len(s), max)
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return fmt.Errorf("actor: %s %q: byte %d (%q) is not allowed", what, truncate(s), i, s[i])
		}
	}
	return nil
}

func isNamespaceByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func isKeyByte(c byte) bool {
	return isNamespaceByte(c) || c >= 'A' && c <= 'Z' || c == '.' || c == ':'
}

// truncate keeps error messages short when the input is huge.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
