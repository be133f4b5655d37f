package files

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits of chunking.
const (
	// DefaultChunkTokens is the size of a passage when a folder names
	// none (Letta's DEFAULT_EMBEDDING_CHUNK_SIZE).
	DefaultChunkTokens = 300
	// MaxChunkTokens bounds a folder's chunk size.
	MaxChunkTokens = 8192
	// bytesPerToken estimates a token's bytes, as the prompt package does.
	bytesPerToken = 4
	// MaxChunksPerFile bounds the passages of one file: text past them is
	// not embedded (it is still read and searched by grep_files).
	MaxChunksPerFile = 4096
)

// sentenceBreak is where Letta splits documentation into sentences: after
// '.', '!' or '?' and blanks, before a capital letter.
var sentenceBreak = regexp.MustCompile(`[.!?]\s+[A-Z]`)

// Lines cuts text into the numbered lines an agent reads ("1: ..."), by
// the file's strategy, as Letta's line chunker does. start and end (from
// 0, end exclusive; -1 for none) choose a range; a header line says which
// part is shown when withHeader.
func Lines(text string, s Strategy, start, end int, withHeader bool) ([]string, error) {
	units := units(text, s)
	kind := "lines"
	if s == Documentation {
		kind = "sentences"
	}
	total := len(units)
	if start >= 0 && end >= 0 && start >= end {
		return nil, fmt.Errorf("invalid range: start (%d) must be less than end (%d)", start, end)
	}
	if start >= total && start > 0 {
		return nil, fmt.Errorf("the file has only %d %s, but the requested offset %d is out of range", total, kind, start+1)
	}
	from, to := max(start, 0), total
	if end >= 0 {
		to = min(end, total)
	}
	out := make([]string, 0, to-from+1)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%d: %s", i+1, units[i]))
	}
	if withHeader {
		switch {
		case start >= 0 && end >= 0:
			out = append([]string{fmt.Sprintf("[Viewing %s %d to %d (out of %d %s)]", kind, from+1, to, total, kind)}, out...)
		case start >= 0:
			out = append([]string{fmt.Sprintf("[Viewing %s %d to end (out of %d %s)]", kind, from+1, total, kind)}, out...)
		default:
			out = append([]string{fmt.Sprintf("[Viewing file start (out of %d %s)]", total, kind)}, out...)
		}
	}
	return out, nil
}

// units are the lines (or sentences) of text by strategy s.
func units(text string, s Strategy) []string {
	var out []string
	if s == Documentation {
		text = strings.TrimSpace(text)
		last := 0
		for _, m := range sentenceBreak.FindAllStringIndex(text, -1) {
			out = appendUnit(out, strings.Join(strings.Fields(text[last:m[0]+1]), " "))
			last = m[1] - 1
		}
		return appendUnit(out, strings.Join(strings.Fields(text[last:]), " "))
	}
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if s == Code {
			l = strings.TrimRight(l, " \t\r")
		} else {
			l = strings.TrimSpace(l)
		}
		out = appendUnit(out, l)
	}
	return out
}

func appendUnit(out []string, u string) []string {
	if strings.TrimSpace(u) == "" {
		return out
	}
	return append(out, u)
}

// Passages cuts text into the passages embedded for semantic search: runs
// of whole lines of about chunkTokens tokens (a longer line is cut), at
// most MaxChunksPerFile.
func Passages(text string, chunkTokens int) []string {
	if chunkTokens <= 0 {
		chunkTokens = DefaultChunkTokens
	}
	size := chunkTokens * bytesPerToken
	var out []string
	var cur strings.Builder
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for _, line := range strings.Split(text, "\n") {
		for len(line) > size {
			cut := size
			for cut > 0 && !utf8.RuneStart(line[cut]) {
				cut--
			}
			flush()
			cur.WriteString(line[:cut])
			flush()
			line = line[cut:]
		}
		if cur.Len()+len(line)+1 > size {
			flush()
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if len(out) >= MaxChunksPerFile {
			return out[:MaxChunksPerFile]
		}
	}
	flush()
	return out[:min(len(out), MaxChunksPerFile)]
}

// TruncatedWarning ends a view cut to its window (Letta's words).
const TruncatedWarning = "...[TRUNCATED]\n# NOTE: This block is truncated, use functions to view the full content."

// Visible cuts a file's view to the agent's window of chars characters.
func Visible(view string, chars int) string {
	if utf8.RuneCountInString(view) <= chars {
		return view
	}
	keep := max(chars-utf8.RuneCountInString(TruncatedWarning), 0)
	return string([]rune(view)[:keep]) + TruncatedWarning
}

// Limits are Letta's max_files_open and per_file_view_window_char_limit of
// an agent, derived from its context window.
func Limits(contextWindow int) (maxOpen, windowChars int) {
	switch {
	case contextWindow <= 0:
		return 5, 50_000
	case contextWindow <= 8_000:
		return 3, 5_000
	case contextWindow <= 32_000:
		return 5, 15_000
	case contextWindow <= 128_000:
		return 10, 25_000
	case contextWindow <= 200_000:
		return 10, 40_000
	default:
		return 15, 40_000
	}
}
