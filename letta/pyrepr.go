package letta

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// WritePyStr writes Python's repr of a str (invalid UTF-8 bytes shown as
// \x escapes), clipped to limit characters ("..." marks the cut) when
// limit is above 0. Letta answers some values as Python renders them
// (validation details, the multi-agent tools' results).
func WritePyStr(b *strings.Builder, s string, limit int) {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	b.WriteByte(quote)
	n := 0
	for i := 0; i < len(s); {
		if limit > 0 && n == limit {
			b.WriteString("...")
			break
		}
		n++
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(b, `\x%02x`, s[i])
			i++
			continue
		}
		i += size
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(quote):
			b.WriteByte('\\')
			b.WriteByte(quote)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\x%02x`, r)
		case r == ' ' || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
	}
	b.WriteByte(quote)
}

// PyStr is Python's repr of a str (WritePyStr, unclipped).
func PyStr(s string) string {
	var b strings.Builder
	WritePyStr(&b, s, 0)
	return b.String()
}
