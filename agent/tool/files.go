package tool

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/agent/files"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/schema"
)

// FileTools are the tools an agent gets with its first folder and loses
// with its last (Letta's FILES_TOOLS).
var FileTools = []string{openFiles.Name, grepFiles.Name, semanticSearchFiles.Name}

// Limits of the file tools (Letta's, where it has them).
const (
	MaxGrepPatternChars  = 1000 // a longer pattern is refused
	GrepPageMatches      = 20   // matches shown per call
	MaxGrepMatches       = 1000 // matches collected per call
	MaxGrepContextLines  = 10   // lines of context around a match, at most
	MaxSemanticMatches   = 50   // passages a semantic search returns, at most
	passageLinesShown    = 20   // lines shown of each passage found
	defaultSemanticLimit = 5
)

// rawTool defines a built-in tool that reads its arguments itself.
func rawTool(name, description, parameters string, run func(env *Env, args map[string]json.RawMessage) (string, error)) *Tool {
	t := define(name, "letta_files_core", description, parameters, func(*Env, struct{}) (string, error) { return "", nil })
	t.run = run
	return t
}

// fileRequest is one file of an open_files call.
type fileRequest struct {
	FileName string `json:"file_name"`
	Offset   *int   `json:"offset"`
	Length   *int   `json:"length"`
}

var openFiles = rawTool("open_files",
	"Open one or more files of your directories and load their contents into the files section of your context. At most max_files_open files are open at once: opening more closes those you looked at longest ago. Give offset (lines to skip, from 0) and length (lines) to see part of a large file; close_all_others closes every other file first.",
	`{"type":"object","properties":{"file_requests":{"type":"array","description":"The files to open.","items":{"type":"object","properties":{"file_name":{"type":"string","description":"The file's name, with its directory: \"<directory>/<file>\"."},"offset":{"type":"integer","description":"Lines to skip (0-indexed); omit for the start."},"length":{"type":"integer","description":"Lines to show; omit for the rest."}},"required":["file_name"]}},"close_all_others":{"type":"boolean","description":"Close every other open file first. Defaults to false."}},"required":["file_requests"]}`,
	func(env *Env, args map[string]json.RawMessage) (string, error) {
		var reqs []fileRequest
		if json.Unmarshal(args["file_requests"], &reqs) != nil {
			return "", Errorf("argument \"file_requests\" must be a list of objects with a file_name")
		}
		var closeOthers bool
		if raw, ok := args["close_all_others"]; ok && string(raw) != "null" && json.Unmarshal(raw, &closeOthers) != nil {
			return "", Errorf("argument \"close_all_others\" must be a boolean")
		}
		return openFileRequests(env, reqs, closeOthers)
	})

func openFileRequests(env *Env, reqs []fileRequest, closeOthers bool) (string, error) {
	maxOpen, _ := files.Limits(env.Agent.LLMConfig.ContextWindow)
	if len(reqs) > maxOpen {
		return "", Errorf("Cannot open %d files: exceeds configured maximum limit of %d files", len(reqs), maxOpen)
	}
	if len(reqs) == 0 {
		return "", Errorf("No file requests provided")
	}
	views, err := schema.AgentFileViews(env.Txn, env.Agent.ID)
	if err != nil {
		return "", err
	}
	names := make([]string, len(reqs))
	for i, r := range reqs {
		names[i] = r.FileName
	}
	var closedByRequest, closedByLimit, summaries []string
	if closeOthers {
		if closedByRequest, err = files.CloseAll(env.Txn, env.Agent.ID, names, env.Now); err != nil {
			return "", err
		}
	}
	for _, r := range reqs {
		closed, summary, err := openOne(env, views, r)
		if err != nil {
			return "", err
		}
		closedByLimit = append(closedByLimit, closed...)
		summaries = append(summaries, summary)
	}
	msg := "* Opened " + summaries[0]
	if len(reqs) > 1 {
		msg = fmt.Sprintf("* Opened %d files: %s", len(reqs), strings.Join(summaries, ", "))
	}
	if len(closedByRequest) > 0 {
		msg += fmt.Sprintf("\nNote: Closed %d file(s) due to close_all_others=True: %s", len(closedByRequest), strings.Join(closedByRequest, ", "))
	}
	if len(closedByLimit) > 0 {
		msg += fmt.Sprintf("\nNote: Closed %d least recently used file(s) due to open file limit: %s", len(closedByLimit), strings.Join(closedByLimit, ", "))
	}
	return msg, nil
}

// openOne opens one requested file; it returns the files closed to make
// room and how to summarise the opening.
func openOne(env *Env, views []*schema.FileAgent, r fileRequest) ([]string, string, error) {
	i := slices.IndexFunc(views, func(v *schema.FileAgent) bool { return v.FileName == r.FileName })
	if i < 0 {
		attached := make([]string, len(views))
		for j, v := range views {
			attached[j] = "'" + v.FileName + "'"
		}
		return nil, "", Errorf("%s not attached - did you get the filename correct? Currently you have the following files attached: [%s]", r.FileName, strings.Join(attached, ", "))
	}
	start, end := -1, -1
	summary := r.FileName
	if r.Offset != nil {
		if *r.Offset < 0 {
			return nil, "", Errorf("Offset for file %s must be >= 0 (0-indexed), got %d", r.FileName, *r.Offset)
		}
		start = *r.Offset
		summary = fmt.Sprintf("%s (lines %d-end)", r.FileName, start+1)
	}
	if r.Length != nil {
		if *r.Length < 1 {
			return nil, "", Errorf("Length for file %s must be >= 1, got %d", r.FileName, *r.Length)
		}
		end = max(start, 0) + *r.Length
		if start >= 0 {
			summary = fmt.Sprintf("%s (lines %d-%d)", r.FileName, start+1, end)
		}
	}
	f, err := schema.GetFile(env.Txn, views[i].FileID)
	if err != nil {
		return nil, "", err
	}
	folder, err := schema.GetFolder(env.Txn, f.FolderID)
	if err != nil {
		return nil, "", err
	}
	view, err := files.ViewOf(env.Txn, f, start, end)
	if err != nil {
		return nil, "", Errorf("%v", err)
	}
	o := files.Opening{File: f, FolderName: folder.Name, Visible: view}
	if start >= 0 {
		o.StartLine = new(start + 1)
	}
	if end >= 0 {
		o.EndLine = new(end)
	}
	closed, was, err := files.Open(env.Txn, env.Agent, o, env.Now)
	if err != nil {
		return nil, "", err
	}
	if was != nil && was.IsOpen {
		summary += previousRange(was)
	}
	return closed, summary, nil
}

func previousRange(was *schema.FileAgent) string {
	switch {
	case was.StartLine != nil && was.EndLine != nil:
		return fmt.Sprintf(" (previously lines %d-%d)", *was.StartLine, *was.EndLine)
	case was.StartLine != nil:
		return fmt.Sprintf(" (previously lines %d-end)", *was.StartLine)
	}
	return " (previously full file)"
}

var grepFiles = define("grep_files", "letta_files_core",
	"Search the contents of the files in your directories for a regular expression (case-insensitive), with lines of context around each match. Results are paginated, 20 matches per call: pass offset to see more.",
	`{"type":"object","properties":{"pattern":{"type":"string","description":"Keyword or regular expression to search for."},"include":{"type":"string","description":"Only search files whose names match this pattern (a glob like *.md, or a regular expression)."},"context_lines":{"type":"integer","description":"Lines of context before and after each match. Defaults to 1."},"offset":{"type":"integer","description":"Matches to skip, for the next page (the result says which offset to use)."}},"required":["pattern"]}`,
	func(env *Env, a struct {
		Pattern      string  `json:"pattern"`
		Include      *string `json:"include"`
		ContextLines *int    `json:"context_lines"`
		Offset       *int    `json:"offset"`
	}) (string, error) {
		return grep(env, strings.TrimSpace(a.Pattern), strings.TrimSpace(or(a.Include, "")), min(max(or(a.ContextLines, 1), 0), MaxGrepContextLines), max(or(a.Offset, 0), 0))
	})

// grepMatch is a line that matched, with its context.
type grepMatch struct {
	file    string
	line    int
	context []string
}

func grep(env *Env, pattern, include string, contextLines, offset int) (string, error) {
	if pattern == "" {
		return "", Errorf("Empty search pattern provided")
	}
	re, err := compileSearch(pattern)
	if err != nil {
		return "", err
	}
	views, err := schema.AgentFileViews(env.Txn, env.Agent.ID)
	if err != nil {
		return "", err
	}
	if len(views) == 0 {
		return "No files are currently attached to search", nil
	}
	if include != "" {
		inc := include
		if strings.Contains(inc, "*") && !strings.ContainsAny(inc, "^$()[]{}\\+") {
			inc = strings.NewReplacer(".", `\.`, "*", ".*", "?", ".").Replace(inc) + "$"
		}
		incRe, err := compileSearch(inc)
		if err != nil {
			return "", err
		}
		n := len(views)
		views = slices.DeleteFunc(slices.Clone(views), func(v *schema.FileAgent) bool { return !incRe.MatchString(v.FileName) })
		if len(views) == 0 {
			return fmt.Sprintf("No files match the filename pattern '%s' (filtered %d files)", include, n), nil
		}
	}
	matches, err := collectMatches(env, views, re, contextLines)
	if err != nil {
		return "", err
	}
	return formatGrep(env, pattern, include, matches, offset)
}

func compileSearch(pattern string) (*regexp.Regexp, error) {
	if len(pattern) > MaxGrepPatternChars {
		return nil, Errorf("Pattern too complex: %d chars > %d limit", len(pattern), MaxGrepPatternChars)
	}
	re, err := regexp.Compile("(?im)" + pattern)
	if err != nil {
		return nil, Errorf("Invalid regex pattern: %v", err)
	}
	return re, nil
}

func collectMatches(env *Env, views []*schema.FileAgent, re *regexp.Regexp, contextLines int) ([]grepMatch, error) {
	var out []grepMatch
	for _, v := range views {
		f, err := schema.GetFile(env.Txn, v.FileID)
		if err != nil {
			return nil, err
		}
		text, err := schema.GetFileText(env.Txn, f.ID)
		if err != nil {
			return nil, err
		}
		lines, err := files.Lines(text, files.StrategyOf(f.FileType, f.FileName), -1, -1, false)
		if err != nil {
			return nil, err
		}
		for i, l := range lines {
			if len(out) >= MaxGrepMatches {
				return out, nil
			}
			if _, content, _ := strings.Cut(l, ": "); !re.MatchString(content) {
				continue
			}
			var ctx []string
			for j := max(i-contextLines, 0); j <= min(i+contextLines, len(lines)-1); j++ {
				prefix := " "
				if j == i {
					prefix = ">"
				}
				ctx = append(ctx, prefix+" "+lines[j])
			}
			out = append(out, grepMatch{file: v.FileName, line: i + 1, context: ctx})
		}
	}
	return out, nil
}

func formatGrep(env *Env, pattern, include string, matches []grepMatch, offset int) (string, error) {
	if len(matches) == 0 {
		msg := fmt.Sprintf("No matches found for pattern: '%s'", pattern)
		if include != "" {
			msg += fmt.Sprintf(" in files matching '%s'", include)
		}
		return msg, nil
	}
	counts := map[string]int{}
	var order []string
	for _, m := range matches {
		if counts[m.file] == 0 {
			order = append(order, m.file)
		}
		counts[m.file]++
	}
	if err := files.Touch(env.Txn, env.Agent.ID, order, env.Now); err != nil {
		return "", err
	}
	total, end := len(matches), min(offset+GrepPageMatches, len(matches))
	capped := total >= MaxGrepMatches
	of := fmt.Sprint(total)
	if capped {
		of = fmt.Sprintf("%d+", MaxGrepMatches)
	}
	out := []string{fmt.Sprintf("Found %s total matches across %d files (showing matches %d-%d of %s)", of, len(order), offset+1, end, of), strings.Repeat("=", 80), "\nFiles with matches:"}
	slices.SortStableFunc(order, func(a, b string) int { return counts[b] - counts[a] })
	for _, f := range order {
		out = append(out, fmt.Sprintf("  - %s: %d matches", f, counts[f]))
	}
	out = append(out, "")
	for _, m := range matches[min(offset, total):end] {
		out = append(out, fmt.Sprintf("\n=== %s:%d ===\n%s", m.file, m.line, strings.Join(m.context, "\n")))
	}
	out = append(out, "")
	switch {
	case end < total:
		out = append(out, fmt.Sprintf("To see more matches, call: grep_files(pattern=\"%s\", offset=%d)", pattern, end))
	case capped:
		out = append(out, "Showing last page of collected matches. There may be more matches beyond the collection limit.")
	default:
		out = append(out, "No more matches to show.")
	}
	return strings.Join(out, "\n"), nil
}

var semanticSearchFiles = define("semantic_search_files", "letta_files_core",
	"Search the contents of the files in your directories by meaning rather than exact words: for related information when you do not know the exact keywords.",
	`{"type":"object","properties":{"query":{"type":"string","description":"What to search for."},"limit":{"type":"integer","description":"How many passages to return at most (default 5)."}},"required":["query"]}`,
	func(env *Env, a struct {
		Query string `json:"query"`
		Limit *int   `json:"limit"`
	}) (string, error) {
		q := strings.TrimSpace(a.Query)
		if q == "" {
			return "", Errorf("Empty search query provided")
		}
		return semanticSearch(env, a.Query, min(max(or(a.Limit, defaultSemanticLimit), 1), MaxSemanticMatches))
	})

func semanticSearch(env *Env, query string, limit int) (string, error) {
	folders, err := schema.AgentFolderIDs(env.Txn, env.Agent.ID)
	if err != nil {
		return "", err
	}
	views, err := schema.AgentFileViews(env.Txn, env.Agent.ID)
	if err != nil {
		return "", err
	}
	var hits []memory.Ranked
	if len(folders) > 0 {
		hits, _, err = memory.RankPassages(env.Txn, folders, memory.ArchivalQuery{Query: strings.TrimSpace(query), TopK: limit, Embedded: env.Embedded[query]})
		if err != nil {
			return "", err
		}
	}
	if len(hits) == 0 {
		return fmt.Sprintf("No semantic matches found for query: '%s'", strings.TrimSpace(query)), nil
	}
	nameOf := func(fileID string) string {
		if i := slices.IndexFunc(views, func(v *schema.FileAgent) bool { return v.FileID == fileID }); i >= 0 {
			return views[i].FileName
		}
		return "Unknown File"
	}
	byFile := map[string][]string{}
	var order []string
	for _, h := range hits {
		name := nameOf(h.Passage.FileID)
		if byFile[name] == nil {
			order = append(order, name)
		}
		byFile[name] = append(byFile[name], h.Passage.Text)
	}
	var body []string
	n := 0
	for _, name := range order {
		for _, text := range byFile[name] {
			n++
			lines := strings.Split(strings.TrimSpace(text), "\n")
			shown := make([]string, 0, passageLinesShown+1)
			for _, l := range lines[:min(len(lines), passageLinesShown)] {
				shown = append(shown, "  "+l)
			}
			if len(lines) > passageLinesShown {
				shown = append(shown, fmt.Sprintf("  ... [truncated %d more lines]", len(lines)-passageLinesShown))
			}
			body = append(body, fmt.Sprintf("\n=== %s (passage #%d) ===\n%s", name, n, strings.Join(shown, "\n")))
		}
	}
	if err := files.Touch(env.Txn, env.Agent.ID, order, env.Now); err != nil {
		return "", err
	}
	plural := "s"
	if len(order) == 1 {
		plural = ""
	}
	summary := fmt.Sprintf("Found %d semantic matches in %d file%s for query: '%s'", n, len(order), plural, strings.TrimSpace(query))
	return strings.Join(append([]string{summary, strings.Repeat("=", len(summary))}, body...), "\n"), nil
}

// The file tools are built-in tools like the others, offered only to
// agents with a folder (see FileTools).
func init() { builtins = append(builtins, openFiles, grepFiles, semanticSearchFiles) }
