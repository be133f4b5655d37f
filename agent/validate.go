package agent

import (
	"fmt"
	"regexp"
	"unicode/utf8"
)

// Limits on agent and block fields. Each keeps one request, and so one stored
// record, to a size the storage layer accepts with room to spare.
const (
	DefaultBlockLimitChars = 100_000   // Letta's CORE_MEMORY_BLOCK_CHAR_LIMIT
	MaxBlockLimitChars     = 1_000_000 // the largest limit a block may declare
	MaxBlocksPerAgent      = 100
	MaxNameChars           = 256
	MaxLabelChars          = 128
	MaxSystemChars         = 200_000
	MaxDescriptionChars    = 10_000
	MaxTags                = 100
	MaxTagChars            = 256
	MaxMetadataBytes       = 64 << 10 // encoded JSON
	MaxListLimit           = 1000     // items one list call returns
	MaxAgentRecordBytes    = 2 << 20  // an agent's fields but its blocks, as JSON
)

// idPattern matches Letta's ids: a prefix and a lowercase UUIDv4.
func idPattern(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + prefix + `-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
}

var (
	agentIDPattern = idPattern("agent")
	blockIDPattern = idPattern("block")
	namePattern    = regexp.MustCompile(`^[\p{L}\p{N}_ '\-]+$`)
)

// ValidAgentID reports whether s is a well-formed agent id.
func ValidAgentID(s string) bool { return agentIDPattern.MatchString(s) }

// ValidBlockID reports whether s is a well-formed block id.
func ValidBlockID(s string) bool { return blockIDPattern.MatchString(s) }

func checkAgentID(field, s string) error {
	if !ValidAgentID(s) {
		return invalidf("%s %q is not an agent id: want 'agent-{uuid4}'", field, clip(s))
	}
	return nil
}

func checkBlockIDs(field string, ids []string) error {
	for i, id := range ids {
		if !ValidBlockID(id) {
			return invalidf("%s[%d] %q is not a block id: want 'block-{uuid4}'", field, i, clip(id))
		}
	}
	return nil
}

func checkChars(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalidf("%s is %d characters, over the limit of %d", field, n, max)
	}
	return nil
}

func checkName(name string) error {
	if err := checkChars("name", name, MaxNameChars); err != nil {
		return err
	}
	if name != "" && !namePattern.MatchString(name) {
		return invalidf("Agent name '%s' contains invalid characters. Only letters (any language), digits, spaces, hyphens, underscores, and apostrophes are allowed.", clip(name))
	}
	return nil
}

func checkTags(field string, tags []string) error {
	if len(tags) > MaxTags {
		return invalidf("%s has %d entries, over the limit of %d", field, len(tags), MaxTags)
	}
	for i, t := range tags {
		if err := checkChars(fmt.Sprintf("%s[%d]", field, i), t, MaxTagChars); err != nil {
			return err
		}
	}
	return nil
}

// checkBlockValue enforces a block's character limit, with the message older
// Letta servers gave.
func checkBlockValue(value string, limit int) error {
	if limit < 0 || limit > MaxBlockLimitChars {
		return invalidf("block limit %d is out of range: want 0 to %d characters", limit, MaxBlockLimitChars)
	}
	if !utf8.ValidString(value) {
		return invalidf("block value is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(value); n > limit {
		return invalidf("Edit failed: Exceeds %d character limit (requested %d)", limit, n)
	}
	return nil
}

func checkCreateBlock(field string, b CreateBlock) error {
	if b.Label == nil {
		return invalidf("%s.label: Field required", field)
	}
	if *b.Label == "" {
		return invalidf("%s.label must not be empty", field)
	}
	if err := checkChars(field+".label", *b.Label, MaxLabelChars); err != nil {
		return err
	}
	if b.Description != nil {
		if err := checkChars(field+".description", *b.Description, MaxDescriptionChars); err != nil {
			return err
		}
	}
	if err := checkTags(field+".tags", b.Tags); err != nil {
		return err
	}
	if err := checkMetadata(b.Metadata); err != nil {
		return err
	}
	limit := DefaultBlockLimitChars
	if b.Limit != nil {
		limit = *b.Limit
	}
	return checkBlockValue(deref(b.Value), limit)
}

func checkBlockUpdate(u BlockUpdate) error {
	if u.Label != nil {
		if *u.Label == "" {
			return invalidf("label must not be empty")
		}
		if err := checkChars("label", *u.Label, MaxLabelChars); err != nil {
			return err
		}
	}
	if u.Description != nil {
		if err := checkChars("description", *u.Description, MaxDescriptionChars); err != nil {
			return err
		}
	}
	if u.Tags != nil {
		if err := checkTags("tags", *u.Tags); err != nil {
			return err
		}
	}
	if u.Metadata != nil {
		if err := checkMetadata(*u.Metadata); err != nil {
			return err
		}
	}
	if u.Limit != nil && (*u.Limit < 0 || *u.Limit > MaxBlockLimitChars) {
		return invalidf("block limit %d is out of range: want 0 to %d characters", *u.Limit, MaxBlockLimitChars)
	}
	if u.Value != nil {
		if err := checkChars("value", *u.Value, MaxBlockLimitChars); err != nil {
			return err
		}
	}
	return nil
}

func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
