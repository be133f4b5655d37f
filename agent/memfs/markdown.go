package memfs

import (
	"maps"
	"strings"

	"github.com/kelpie/kelpie/schema"
	"go.yaml.in/yaml/v3"
)

// A block is a Markdown file: YAML front matter (description always,
// read_only and metadata only when not their defaults; limit never, as in
// Letta's git-backed memory), then the value, byte for byte.

// frontMatter is the front matter Kelpie writes, fields in Letta's order.
type frontMatter struct {
	Description *string        `yaml:"description"`
	ReadOnly    bool           `yaml:"read_only,omitempty"`
	Metadata    map[string]any `yaml:"metadata,omitempty"`
}

// Render returns the file of a block.
func Render(b *schema.Block) string {
	var y strings.Builder
	enc := yaml.NewEncoder(&y)
	enc.SetIndent(2) // as Letta's PyYAML writes it
	if err := enc.Encode(frontMatter{Description: b.Description, ReadOnly: b.ReadOnly, Metadata: b.Metadata}); err != nil || enc.Close() != nil {
		// Metadata came from JSON, which YAML always represents.
		panic("memfs: front matter does not encode: " + err.Error())
	}
	return "---\n" + y.String() + "---\n" + b.Value
}

// File is what a block file says.
type File struct {
	Value       string
	Description *string
	HasDesc     bool // the front matter has a description
	ReadOnly    *bool
	Metadata    map[string]any
	Limit       *int
}

// Parse reads a block file as Letta does: front matter between a first
// line "---" and the next line "---", then the value; a file without
// (well-formed) front matter is all value.
func Parse(content string) File {
	whole := File{Value: content}
	if !strings.HasPrefix(content, "---\n") {
		return whole
	}
	end := strings.Index(content[4:], "\n---\n")
	if end < 0 {
		return whole
	}
	var front map[string]any
	if err := yaml.Unmarshal([]byte(content[4:4+end]), &front); err != nil || front == nil {
		return whole
	}
	f := File{Value: content[4+end+5:]}
	if d, ok := front["description"]; ok {
		f.HasDesc = true
		if s, ok := d.(string); ok {
			f.Description = &s
		}
	}
	if r, ok := front["read_only"].(bool); ok {
		f.ReadOnly = &r
	}
	if m, ok := front["metadata"].(map[string]any); ok {
		f.Metadata = m
	}
	if l, ok := front["limit"].(int); ok {
		f.Limit = &l
	}
	return f
}

// Matches says whether a file says what the block holds (so the file can
// stay as it is).
func (f File) Matches(b *schema.Block) bool {
	return f.Value == b.Value && (f.ReadOnly != nil && *f.ReadOnly) == b.ReadOnly &&
		equalStrings(f.Description, b.Description) && equalMetadata(f.Metadata, b.Metadata)
}

func equalStrings(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// equalMetadata compares metadata through YAML, where the file's came
// from: an empty map is no metadata.
func equalMetadata(a, b map[string]any) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	if len(a) != len(b) || !equalKeys(a, b) {
		return false
	}
	ya, erra := yaml.Marshal(a)
	yb, errb := yaml.Marshal(b)
	return erra == nil && errb == nil && string(ya) == string(yb)
}

func equalKeys(a, b map[string]any) bool {
	for k := range maps.Keys(a) {
		if _, ok := b[k]; !ok {
			return false
		}
	}
	return true
}

// PathOf returns the file of the block with label: `<label>.md`, but
// `skills/<name>/SKILL.md` for a skill (label `skills/<name>`). A label
// that is not a clean relative path (empty or "." or ".." parts, a leading
// slash, a NUL) has no file: false.
func PathOf(label string) (string, bool) {
	if label == "" || strings.ContainsRune(label, 0) {
		return "", false
	}
	parts := strings.Split(label, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || p == ".git" {
			return "", false
		}
	}
	if parts[0] == "skills" && len(parts) > 1 {
		if len(parts) != 2 {
			return "", false
		}
		return label + "/SKILL.md", true
	}
	return label + ".md", true
}

// LabelOf returns the label of the block a file holds, Letta's rule:
// Markdown files are blocks (`a/b.md` is `a/b`), except under `skills/`,
// where only `skills/<name>/SKILL.md` is one (`skills/<name>`).
func LabelOf(path string) (string, bool) {
	if !strings.HasSuffix(path, ".md") {
		return "", false
	}
	if strings.HasPrefix(path, "skills/") {
		parts := strings.Split(path, "/")
		if len(parts) == 3 && parts[1] != "" && parts[2] == "SKILL.md" {
			return "skills/" + parts[1], true
		}
		return "", false
	}
	label := strings.TrimSuffix(path, ".md")
	if p, ok := PathOf(label); !ok || p != path {
		return "", false
	}
	return label, true
}
