package files

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/ledongthuc/pdf"
	"golang.org/x/net/html"
)

// Limits of what an upload may be.
const (
	// MaxUploadBytes is the largest file an upload takes (10 MiB).
	MaxUploadBytes = 10 << 20
	// MaxTextBytes is the most text kept of one file (8 MiB): text past
	// it is cut off, and the file says so.
	MaxTextBytes = 8 << 20
	// MaxPDFPages is how many pages of a PDF are read.
	MaxPDFPages = 2000
	// MaxFileNameBytes bounds a file's name.
	MaxFileNameBytes = 255
)

// Strategy is how a file's text is cut into numbered lines for an agent to
// read (Letta's chunking strategies).
type Strategy int

const (
	LineBased     Strategy = iota // lines, trimmed; blank lines dropped
	Code                          // lines, indentation kept; blank lines dropped
	Documentation                 // sentences
	Structured                    // lines, trimmed (as LineBased)
)

// Type is a file type Kelpie takes.
type Type struct {
	MIME     string
	Strategy Strategy
}

// types are the file types Letta takes, by extension.
var types = map[string]Type{
	".pdf": {"application/pdf", LineBased}, ".txt": {"text/plain", LineBased},
	".md": {"text/markdown", Documentation}, ".markdown": {"text/markdown", Documentation},
	".json": {"application/json", Structured}, ".jsonl": {"application/jsonl", Structured},
	".csv": {"text/csv", Structured},
	".py":  {"text/x-python", Code}, ".js": {"text/javascript", Code}, ".ts": {"text/x-typescript", Code},
	".java": {"text/x-java-source", Code}, ".cpp": {"text/x-c++", Code}, ".cxx": {"text/x-c++", Code},
	".c": {"text/x-c", Code}, ".h": {"text/x-c", Code}, ".cs": {"text/x-csharp", Code},
	".php": {"text/x-php", Code}, ".rb": {"text/x-ruby", Code}, ".go": {"text/x-go", Code},
	".rs": {"text/x-rust", Code}, ".swift": {"text/x-swift", Code}, ".kt": {"text/x-kotlin", Code},
	".scala": {"text/x-scala", Code}, ".r": {"text/x-r", Code}, ".m": {"text/x-objective-c", Code},
	".html": {"text/html", Code}, ".htm": {"text/html", Code},
	".css": {"text/css", Structured}, ".scss": {"text/x-scss", Structured}, ".sass": {"text/x-sass", Structured},
	".less": {"text/x-less", Structured}, ".vue": {"text/x-vue", Code}, ".jsx": {"text/x-jsx", Code},
	".tsx": {"text/x-tsx", Code}, ".xml": {"application/xml", Structured}, ".yaml": {"text/x-yaml", Structured},
	".yml": {"text/x-yaml", Structured}, ".toml": {"application/toml", Structured}, ".ini": {"text/x-ini", Structured},
	".cfg": {"text/x-conf", Structured}, ".conf": {"text/x-conf", Structured}, ".sh": {"text/x-shellscript", Code},
	".bash": {"text/x-shellscript", Code}, ".ps1": {"text/x-powershell", Code}, ".bat": {"text/x-batch", Code},
	".cmd": {"text/x-batch", Code}, ".dockerfile": {"text/x-dockerfile", Code}, ".sql": {"text/x-sql", Code},
}

// aliases are other names of the MIME types above that clients send.
var aliases = map[string]string{
	"text/x-markdown": "text/markdown", "application/x-jsonlines": "application/jsonl",
	"text/xml": "application/xml", "application/javascript": "text/javascript",
}

// MediaType decides the MIME type of an upload as Letta does: the type the
// client sent when it is one Kelpie takes, else the one its name's
// extension gives. ok is false for a type Kelpie does not take.
func MediaType(fileName, contentType string) (mime string, ok bool) {
	mt := strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	if a, ok := aliases[mt]; ok {
		mt = a
	}
	if allowed(mt) {
		return mt, true
	}
	if t, ok := types[strings.ToLower(path.Ext(fileName))]; ok {
		return t.MIME, true
	}
	return mt, false
}

func allowed(mime string) bool {
	for _, t := range types {
		if t.MIME == mime {
			return true
		}
	}
	return false
}

// StrategyOf is how a file of the MIME type and name is read by lines.
func StrategyOf(mime, fileName string) Strategy {
	if t, ok := types[strings.ToLower(path.Ext(fileName))]; ok && t.MIME == mime {
		return t.Strategy
	}
	for _, t := range types {
		if t.MIME == mime {
			return t.Strategy
		}
	}
	return LineBased
}

// Extract turns an upload's bytes into text: PDF through its text, HTML
// without its markup, anything else as UTF-8 (invalid bytes replaced).
// Text past MaxTextBytes is cut off.
func Extract(mime string, data []byte) (string, error) {
	var text string
	switch mime {
	case "application/pdf":
		t, err := pdfText(data)
		if err != nil {
			return "", err
		}
		text = t
	case "text/html":
		text = htmlText(data)
	default:
		text = strings.ToValidUTF8(string(data), "\uFFFD")
	}
	return cutText(text), nil
}

// cutText cuts text to at most MaxTextBytes, at a character's start.
func cutText(text string) string {
	if len(text) <= MaxTextBytes {
		return text
	}
	cut := MaxTextBytes
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut]
}

// pdfText reads the text of a PDF's pages, a line per row of text. The
// reader panics on some malformed files: that is an error here.
func pdfText(data []byte) (text string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the PDF could not be read: %v", r)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return "", fmt.Errorf("the PDF could not be read: %w", err)
	}
	var b strings.Builder
	for i := 1; i <= min(r.NumPage(), MaxPDFPages); i++ {
		p := r.Page(i)
		if p.V.IsNull() {
			continue
		}
		// Text comes glyph by glyph, with its position: a line ends where
		// the baseline moves.
		var lastY float64
		for i, t := range p.Content().Text {
			if i > 0 && math.Abs(t.Y-lastY) > max(t.FontSize, 1)/2 {
				b.WriteString("\n")
			}
			lastY = t.Y
			b.WriteString(t.S)
		}
		b.WriteString("\n")
		if b.Len() > MaxTextBytes {
			break
		}
	}
	if strings.TrimSpace(b.String()) == "" {
		return "", errors.New("the PDF has no text to read (a scanned PDF needs OCR: give the server a Mistral key, kelpie serve --mistral-api-key)")
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD"), nil
}

// blockTags end a line of text when they open or close.
var blockTags = map[string]bool{
	"p": true, "div": true, "br": true, "li": true, "tr": true, "h1": true, "h2": true, "h3": true,
	"h4": true, "h5": true, "h6": true, "pre": true, "section": true, "article": true, "table": true,
	"ul": true, "ol": true, "blockquote": true, "header": true, "footer": true, "title": true,
}

// blanks are runs of white space, which HTML shows as one space.
var blanks = regexp.MustCompile(`\s+`)

// htmlText is the text of an HTML document: what a reader sees, without
// scripts and styles, a line per block.
func htmlText(data []byte) string {
	z := html.NewTokenizer(bytes.NewReader(data))
	var b strings.Builder
	skip := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				b.WriteString("\n")
			}
			return strings.TrimSpace(collapseBlank(b.String()))
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if tag == "script" || tag == "style" {
				if tt == html.StartTagToken {
					skip++
				} else if tt == html.EndTagToken && skip > 0 {
					skip--
				}
			}
			if blockTags[tag] {
				b.WriteString("\n")
			}
		case html.TextToken:
			if skip == 0 {
				b.WriteString(blanks.ReplaceAllString(string(z.Text()), " "))
			}
		}
	}
}

// collapseBlank drops blank lines and trims each line.
func collapseBlank(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
