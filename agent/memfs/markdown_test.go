package memfs

import (
	"testing"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Spec: Letta's layout. A block's file is `<label>.md`, a skill's
// `skills/<name>/SKILL.md`; other files under skills/ and non-Markdown
// files are no blocks; labels that are no clean path have no file.
func TestPaths(t *testing.T) {
	for label, want := range map[string]string{
		"human": "human.md", "system/persona": "system/persona.md", "skills/cook": "skills/cook/SKILL.md", "skills": "skills.md",
		"": "", "a//b": "", "../x": "", "skills/a/b": "", "/abs": "", ".git/x": "",
	} {
		got, ok := PathOf(label)
		if got != want || ok != (want != "") {
			t.Errorf("PathOf(%q) = %q, %v; want %q", label, got, ok, want)
		}
		if ok {
			if back, ok := LabelOf(got); !ok || back != label {
				t.Errorf("LabelOf(%q) = %q, %v; want %q", got, back, ok, label)
			}
		}
	}
	for _, p := range []string{"notes.txt", "skills/cook/recipes.md", "skills/cook/x/SKILL.md", "a//b.md", "../x.md"} {
		if label, ok := LabelOf(p); ok {
			t.Errorf("LabelOf(%q) = %q: should be no block", p, label)
		}
	}
}

// Spec: a block renders as front matter (description always; read_only
// and metadata only when set) then its value, and parses back to what it
// holds; a file without well-formed front matter is all value.
func TestRenderParse(t *testing.T) {
	desc := "About: the user"
	b := &schema.Block{Block: letta.Block{Label: "human", Value: "---\nAda\n", Description: &desc, ReadOnly: true, Metadata: map[string]any{"k": 1.0}}}
	text := Render(b, Letta)
	if want := "---\ndescription: 'About: the user'\nread_only: true\nmetadata:\n  k: 1\n---\n---\nAda\n"; text != want {
		t.Errorf("Render = %q, want %q", text, want)
	}
	if f := Parse(text); !f.Matches(b, Letta) {
		t.Errorf("Parse(Render(b)) = %+v does not match b", f)
	}
	plain := &schema.Block{Block: letta.Block{Value: "v"}}
	if got := Render(plain, Letta); got != "---\ndescription: null\n---\nv" {
		t.Errorf("Render without description = %q", got)
	}
	for _, content := range []string{"no front matter", "---\nunclosed", "---\n: [bad\n---\nx", "---\n- a list\n---\nx"} {
		if f := Parse(content); f.Value != content || f.HasDesc {
			t.Errorf("Parse(%q) = %+v, want all value", content, f)
		}
	}
	f := Parse("---\ndescription: d\nlimit: 10\n---\nbody")
	if f.Value != "body" || f.Description == nil || *f.Description != "d" || f.Limit == nil || *f.Limit != 10 {
		t.Errorf("Parse with limit = %+v", f)
	}
}

// Spec: letta-code's MemFS v2, chosen by a root index block: MEMORY.md is
// its value alone; other files have exactly a name (letta-code's default
// for the path) and a non-empty description (the label when the block has
// none), and parse back to what the block holds.
func TestRenderCodeV2(t *testing.T) {
	if FormatOf([]string{"human", "MEMORY"}) != CodeV2 || FormatOf([]string{"human"}) != Letta {
		t.Error("FormatOf does not follow the root index")
	}
	index := &schema.Block{Block: letta.Block{Label: "MEMORY", Value: "# Memory\n"}}
	if got := Render(index, CodeV2); got != "# Memory\n" {
		t.Errorf("MEMORY.md = %q", got)
	}
	b := &schema.Block{Block: letta.Block{Label: "notes/coding_prefs-go", Value: "Small helpers."}}
	text := Render(b, CodeV2)
	if want := "---\nname: \"Coding Prefs Go\"\ndescription: \"notes/coding_prefs-go\"\n---\nSmall helpers."; text != want {
		t.Errorf("Render = %q, want %q", text, want)
	}
	if !Parse(text).Matches(b, CodeV2) || !Parse("# Memory\n").Matches(index, CodeV2) {
		t.Error("MemFS v2 files do not parse back to their blocks")
	}
}
