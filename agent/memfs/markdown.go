package memfs

import (
	"encoding/json"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/schema"
	"go.yaml.in/yaml/v3"
)

// A block is a Markdown file: YAML front matter, then the value, byte for
// byte. Two formats:
//   - Letta's (its server's git-backed memory): description always,
//     read_only and metadata only when not their defaults, limit never.
//   - letta-code's MemFS v2 (letta-code 0.32 gives its agents a root block
//     "MEMORY"): exactly name and description, both non-empty (letta-code's
//     commit hook refuses anything else), and no front matter at all for
//     MEMORY.md files (indexes).
//
// A repository is in MemFS v2 when its agent has a block labelled
// RootIndex.

// Format is the format of a repository's block files.
type Format int

const (
	Letta Format = iota
	CodeV2
)

// RootIndex is the label of letta-code's root memory index (MEMORY.md).
const RootIndex = "MEMORY"

// FormatOf returns the format of a repository holding blocks with labels.
func FormatOf(labels []string) Format {
	if slices.Contains(labels, RootIndex) {
		return CodeV2
	}
	return Letta
}

// isIndex says whether label is a MemFS v2 index (MEMORY.md).
func isIndex(label string) bool { return path.Base(label) == RootIndex }

// frontMatter is the front matter Kelpie writes in Letta's format, fields
// in Letta's order.
type frontMatter struct {
	Description *string        `yaml:"description"`
	ReadOnly    bool           `yaml:"read_only,omitempty"`
	Metadata    map[string]any `yaml:"metadata,omitempty"`
}

// Render returns the file of a block in format f.
func Render(b *schema.Block, f Format) string {
	if f == CodeV2 {
		if isIndex(b.Label) {
			return b.Value
		}
		name, _ := json.Marshal(nameOf(b.Label))
		desc, _ := json.Marshal(descriptionOf(b))
		return "---\nname: " + string(name) + "\ndescription: " + string(desc) + "\n---\n" + b.Value
	}
	var y strings.Builder
	enc := yaml.NewEncoder(&y)
	enc.SetIndent(2) // as Letta's PyYAML writes it
	err := enc.Encode(frontMatter{Description: b.Description, ReadOnly: b.ReadOnly, Metadata: b.Metadata})
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		// Metadata came from JSON, which YAML always represents.
		panic("memfs: front matter does not encode: " + err.Error())
	}
	return "---\n" + y.String() + "---\n" + b.Value
}

// nameOf is letta-code's default name of a memory file: its base name's
// words, capitalised.
func nameOf(label string) string {
	words := strings.FieldsFunc(path.Base(label), func(r rune) bool { return r == '-' || r == '_' })
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	if len(words) == 0 {
		return "Memory"
	}
	return strings.Join(words, " ")
}

// descriptionOf is the description a MemFS v2 file gives a block: its own,
// or its label (the format requires one).
func descriptionOf(b *schema.Block) string {
	if b.Description != nil && strings.TrimSpace(*b.Description) != "" {
		return strings.ReplaceAll(strings.TrimSpace(*b.Description), "\n", " ")
	}
	return b.Label
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

// Matches says whether a file in format f says what the block holds (so
// the file can stay as it is). In MemFS v2 only the value and the
// description count: the format has no other field.
func (f File) Matches(b *schema.Block, format Format) bool {
	if format == CodeV2 {
		return f.Value == b.Value && (isIndex(b.Label) || f.Description != nil && *f.Description == descriptionOf(b))
	}
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
