package letta

import (
	"crypto/sha256"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// Letta's ids are a prefix naming the kind of entity, a dash and a
// lowercase UUIDv4: agent-2f29e94b-b758-4067-9f4d-cb5153277df0.

// IDPattern is the regular expression Letta validates ids of prefix with.
func IDPattern(prefix string) string {
	return "^" + prefix + "-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
}

var (
	patternsMu sync.Mutex
	patterns   = map[string]*regexp.Regexp{}
)

// ValidID reports whether s is a well-formed id of prefix.
func ValidID(prefix, s string) bool {
	patternsMu.Lock()
	re := patterns[prefix]
	if re == nil {
		re = regexp.MustCompile(IDPattern(prefix))
		patterns[prefix] = re
	}
	patternsMu.Unlock()
	return re.MatchString(s)
}

// NewID returns a random id of prefix, drawing from r.
func NewID(r io.Reader, prefix string) (string, error) {
	u, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return "", fmt.Errorf("new %s id: %w", prefix, err)
	}
	return prefix + "-" + u.String(), nil
}

// DerivedID returns an id of prefix derived from parts: the same parts
// always name the same thing, so an operation retried with the same inputs
// finds what its first attempt made. An empty prefix gives a bare UUID.
func DerivedID(prefix string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	sum[6] = sum[6]&0x0f | 0x40 // version 4
	sum[8] = sum[8]&0x3f | 0x80 // RFC 4122 variant
	id := uuid.UUID(sum[:16]).String()
	if prefix == "" {
		return id
	}
	return prefix + "-" + id
}
