package tool

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// HTMLToMarkdown renders an HTML page as Markdown text: its title, then
// its headings, paragraphs, lists, links, emphasis, code and quotes.
// What a reader does not see (scripts, styles, forms, navigation, the
// head) is left out.
func HTMLToMarkdown(page string) string {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return page
	}
	w := &mdWriter{}
	if t := findTitle(doc); t != "" {
		w.block("# " + t)
	}
	w.walk(doc)
	return strings.TrimSpace(blankRuns.ReplaceAllString(w.b.String(), "\n\n"))
}

var (
	blankRuns  = regexp.MustCompile(`\n[ \t]*(\n[ \t]*)+`)
	spaceRuns  = regexp.MustCompile(`[ \t\r\n\f]+`)
	hiddenTags = map[atom.Atom]bool{atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Head: true, atom.Template: true,
		atom.Svg: true, atom.Nav: true, atom.Form: true, atom.Button: true, atom.Select: true, atom.Iframe: true}
	blockTags = map[atom.Atom]bool{atom.P: true, atom.Div: true, atom.Section: true, atom.Article: true, atom.Main: true,
		atom.Header: true, atom.Footer: true, atom.Table: true, atom.Tr: true, atom.Ul: true, atom.Ol: true, atom.Dl: true,
		atom.Dt: true, atom.Dd: true, atom.Figure: true, atom.Figcaption: true, atom.Aside: true, atom.Body: true}
)

func findTitle(n *html.Node) string {
	if n.Type == html.ElementNode && n.DataAtom == atom.Title {
		return strings.TrimSpace(spaceRuns.ReplaceAllString(textOf(n), " "))
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if t := findTitle(c); t != "" {
			return t
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return b.String()
}

// mdWriter accumulates Markdown; pre counts enclosing <pre> elements, in
// which whitespace is kept.
type mdWriter struct {
	b   strings.Builder
	pre int
}

// block starts a new paragraph with s.
func (w *mdWriter) block(s string) {
	w.b.WriteString("\n\n")
	w.b.WriteString(s)
}

func (w *mdWriter) walk(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		if w.pre > 0 {
			w.b.WriteString(n.Data)
		} else {
			w.b.WriteString(spaceRuns.ReplaceAllString(n.Data, " "))
		}
		return
	case html.ElementNode:
		if hiddenTags[n.DataAtom] {
			return
		}
	}
	children := func() {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			w.walk(c)
		}
	}
	if n.Type != html.ElementNode {
		children()
		return
	}
	switch a := n.DataAtom; {
	case headingLevel(a) > 0:
		w.block(strings.Repeat("#", headingLevel(a)) + " ")
		w.b.WriteString(strings.TrimSpace(spaceRuns.ReplaceAllString(textOf(n), " ")))
		w.b.WriteString("\n\n")
	case a == atom.Li:
		w.b.WriteString("\n- ")
		children()
	case a == atom.Br:
		w.b.WriteString("\n")
	case a == atom.Hr:
		w.block("---\n\n")
	case a == atom.Pre:
		w.block("```\n")
		w.pre++
		children()
		w.pre--
		w.b.WriteString("\n```\n\n")
	case a == atom.Code && w.pre == 0:
		w.b.WriteString("`")
		children()
		w.b.WriteString("`")
	case a == atom.Strong || a == atom.B:
		w.b.WriteString("**")
		children()
		w.b.WriteString("**")
	case a == atom.Em || a == atom.I:
		w.b.WriteString("*")
		children()
		w.b.WriteString("*")
	case a == atom.Blockquote:
		w.block("> ")
		children()
		w.b.WriteString("\n\n")
	case a == atom.A:
		href := attr(n, "href")
		text := strings.TrimSpace(spaceRuns.ReplaceAllString(textOf(n), " "))
		if href == "" || strings.HasPrefix(href, "#") || strings.HasPrefix(strings.ToLower(href), "javascript:") || text == "" {
			children()
			return
		}
		w.b.WriteString("[" + text + "](" + href + ")")
	case a == atom.Img:
		if alt := attr(n, "alt"); alt != "" {
			w.b.WriteString("![" + alt + "]")
		}
	case a == atom.Td || a == atom.Th:
		children()
		w.b.WriteString(" | ")
	case blockTags[a]:
		w.b.WriteString("\n\n")
		children()
		w.b.WriteString("\n\n")
	default:
		children()
	}
}

func headingLevel(a atom.Atom) int {
	switch a {
	case atom.H1:
		return 1
	case atom.H2:
		return 2
	case atom.H3:
		return 3
	case atom.H4:
		return 4
	case atom.H5:
		return 5
	case atom.H6:
		return 6
	}
	return 0
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return strings.TrimSpace(a.Val)
		}
	}
	return ""
}
