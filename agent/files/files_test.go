package files_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/internal/kelpietest"
)

// Spec: an upload's type is the one its client sent when Kelpie takes
// it, else the one its extension gives; other types are refused.
func TestMediaType(t *testing.T) {
	cases := []struct {
		name, ct, want string
		ok             bool
	}{
		{"a.md", "text/markdown; charset=utf-8", "text/markdown", true},
		{"a.md", "", "text/markdown", true},
		{"a.py", "application/octet-stream", "text/x-python", true},
		{"a.bin", "text/plain", "text/plain", true},
		{"a.json", "text/x-markdown", "text/markdown", true},
		{"a.exe", "application/octet-stream", "application/octet-stream", false},
		{"noext", "", "", false},
	}
	for _, c := range cases {
		got, ok := files.MediaType(c.name, c.ct)
		if got != c.want || ok != c.ok {
			t.Errorf("MediaType(%q, %q) = %q %v, want %q %v", c.name, c.ct, got, ok, c.want, c.ok)
		}
	}
}

// Spec: text comes out of PDF (a line per line of the page), HTML (what a
// reader sees, no scripts or styles) and anything else as UTF-8; a PDF
// that is not one is an error, never a panic.
func TestExtract(t *testing.T) {
	got, err := files.Extract("application/pdf", kelpietest.PDF("First line", "Second (line)"))
	if err != nil || got != "First line\nSecond (line)\n" {
		t.Errorf("pdf: %q %v", got, err)
	}
	for _, bad := range []string{"", "%PDF-1.4", "%PDF-1.4\nxref\n0 1\ntrailer<<>>\nstartxref\n9\n%%EOF"} {
		if _, err := files.Extract("application/pdf", []byte(bad)); err == nil {
			t.Errorf("pdf %q: no error", bad)
		}
	}
	got, _ = files.Extract("text/html", []byte("<html><script>x()</script><p>Some <b>bold</b>\n text.</p><ul><li>one</li><li>two</li></ul></html>"))
	if got != "Some bold text.\none\ntwo" {
		t.Errorf("html: %q", got)
	}
	got, _ = files.Extract("text/plain", []byte("ok \xff"))
	if !utf8.ValidString(got) || !strings.HasPrefix(got, "ok ") {
		t.Errorf("invalid UTF-8: %q", got)
	}
}

// Spec: lines are numbered from 1 by the file's strategy (sentences for
// documentation, indentation kept for code, blank lines dropped), with a
// header saying which part is shown; a range past the end is an error.
func TestLines(t *testing.T) {
	doc, _ := files.Lines("# Title\n\nOne sentence. Two sentences! three", files.Documentation, -1, -1, true)
	if strings.Join(doc, "|") != "[Viewing file start (out of 2 sentences)]|1: # Title One sentence.|2: Two sentences! three" {
		t.Errorf("documentation: %q", doc)
	}
	code, _ := files.Lines("func f() {\n\n    return\n}\n", files.Code, 1, 3, true)
	if strings.Join(code, "|") != "[Viewing lines 2 to 3 (out of 3 lines)]|2:     return|3: }" {
		t.Errorf("code: %q", code)
	}
	if _, err := files.Lines("a\nb", files.LineBased, 5, -1, true); err == nil {
		t.Error("an offset past the end: no error")
	}
}

// Spec: passages are whole lines of about the chunk size; a line longer
// than a chunk is cut (on a character boundary); views are cut to the
// window with Letta's warning.
func TestPassagesAndVisible(t *testing.T) {
	text := strings.Repeat("word ", 100) + "\n" + strings.Repeat("é", 50) + "\nshort\n"
	ps := files.Passages(text, 10) // 40 bytes each
	for _, p := range ps {
		if len(p) > 40 || !utf8.ValidString(p) {
			t.Errorf("passage of %d bytes: %q", len(p), p)
		}
	}
	if got := strings.Join(ps, ""); strings.Count(got, "word") != 100 || !strings.Contains(got, "short") {
		t.Errorf("passages lost text: %q", ps)
	}
	v := files.Visible(strings.Repeat("x", 500), 200)
	if utf8.RuneCountInString(v) != 200 || !strings.HasSuffix(v, files.TruncatedWarning) {
		t.Errorf("visible: %d %q", len(v), v)
	}
}
