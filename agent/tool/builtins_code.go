package tool

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/letta"
)

// runCodeProgram is the Python that runs run_code's code in the sandbox,
// and runCodeNode the JavaScript with which it runs JavaScript and
// TypeScript code in node, in the same sandbox.
//
//go:embed run_code.py
var runCodeProgram string

//go:embed run_code.js
var runCodeNode string

// Limits of run_code, besides the sandbox's own (CPU and wall-clock time,
// memory, processes, file size, a private /tmp, no network).
const (
	// MaxRunCodeChars bounds the code of one call.
	MaxRunCodeChars = 100_000
	// MaxRunCodeOutputChars bounds what the code may print to stdout, and
	// to stderr: more raises an error in the code.
	MaxRunCodeOutputChars = 200_000
	// MaxRunCodeAnswerBytes bounds node's answer to run_code.py (results
	// and logs, as JSON): more is an error.
	MaxRunCodeAnswerBytes = 4 << 20
)

// runCodeLanguages are the languages Letta's run_code takes, and
// runCodeRuns those Kelpie's sandbox runs: Python, and JavaScript and
// TypeScript in node (TypeScript needs node 22.13 or later).
var (
	runCodeLanguages = []string{"python", "js", "ts", "r", "java"}
	runCodeRuns      = []string{"python", "js", "ts"}
)

var runCode = defineOutside("run_code", "letta_builtin",
	"Run code in a sandbox. Supports Python, Javascript, Typescript, R, and Java; this server runs Python, JavaScript and TypeScript. Python code can call the agent's custom tools by name. The sandbox has no network, a private temporary directory and limits on time, memory and output. Returns JSON: the value of a final expression (results), what the code printed (logs.stdout, logs.stderr), and the error it raised, if any.",
	`{"type":"object","properties":{"code":{"type":"string","description":"The code to run."},"language":{"type":"string","enum":["python","js","ts","r","java"],"description":"The language of the code."}},"required":["code","language"]}`,
	func(ctx context.Context, x *Outside, c Call, a struct {
		Code     string `json:"code"`
		Language string `json:"language"`
	}) Outcome {
		lang := strings.ToLower(a.Language)
		switch {
		case !slices.Contains(runCodeLanguages, lang):
			return Failed("language %q is not one run_code knows: use one of %s", a.Language, strings.Join(runCodeLanguages, ", "))
		case !slices.Contains(runCodeRuns, lang):
			return Failed("run_code cannot run %s on this server: its sandbox runs %s only", lang, strings.Join(runCodeRuns, ", "))
		case len(a.Code) > MaxRunCodeChars:
			return Failed("the code is %d bytes, over run_code's limit of %d", len(a.Code), MaxRunCodeChars)
		case x.Runner == nil:
			return Failed("run_code cannot run on this server: it was started without a code sandbox")
		}
		code := a.Code
		if lang == "python" {
			code = c.Prelude + code // as Letta's run_code prepends the agent's tools' source
		}
		args, err := json.Marshal(map[string]any{
			"code": code, "language": lang, "max_output_chars": MaxRunCodeOutputChars,
			"node_program": runCodeNode, "max_answer_bytes": MaxRunCodeAnswerBytes,
		})
		if err != nil {
			return Failed("the code could not be encoded: %v", err)
		}
		return x.Runner.Run(ctx, Job{Source: runCodeProgram, Name: "run_code", Args: args})
	})

// runCodeWithTools is Letta's run_code_with_tools, which Letta runs in
// E2B only; Kelpie runs it in its sandbox, as run_code's Python. The code
// can call the agent's custom tools, whose source runs first. Letta calls
// the agent's other tools through its API with the caller's LETTA_API_KEY;
// the sandbox reaches no API, so here they are functions that raise
// ValueError saying so.
var runCodeWithTools = defineOutside("run_code_with_tools", "letta_builtin",
	"Run code with access to the tools of the agent. Only support python. You can directly invoke the tools of the agent in the code. On this server the code can call the agent's custom tools; calling another tool raises ValueError.",
	`{"type":"object","properties":{"code":{"type":"string","description":"The python code to run."}},"required":["code"]}`,
	func(ctx context.Context, x *Outside, c Call, a struct {
		Code string `json:"code"`
	}) Outcome {
		switch {
		case len(a.Code) > MaxRunCodeChars:
			return Failed("the code is %d bytes, over run_code_with_tools's limit of %d", len(a.Code), MaxRunCodeChars)
		case x.Runner == nil:
			return Failed("run_code_with_tools cannot run on this server: it was started without a code sandbox")
		}
		args, err := json.Marshal(map[string]any{"code": c.Prelude + a.Code, "max_output_chars": MaxRunCodeOutputChars})
		if err != nil {
			return Failed("the code could not be encoded: %v", err)
		}
		return x.Runner.Run(ctx, Job{Source: runCodeProgram, Name: "run_code_with_tools", Args: args})
	})

// pythonName matches the names a Python def may take.
var pythonName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CodePrelude is the Python that run_code and run_code_with_tools run
// before a call's Python code, given the agent's tools: the source of each
// of its custom tools that has some, so that the code can call them, as
// Letta's run_code prepends it; run_code_with_tools adds, for each other
// tool, a function that raises ValueError (see runCodeWithTools). Other
// tools' calls get "".
func CodePrelude(t *Tool, tools []*Tool) string {
	if t != runCode && t != runCodeWithTools {
		return ""
	}
	var b strings.Builder
	for _, o := range tools {
		switch {
		case o.Custom != nil && o.Custom.SourceCode != nil && *o.Custom.SourceCode != "":
			b.WriteString(*o.Custom.SourceCode)
			b.WriteString("\n\n")
		case t == runCodeWithTools && pythonName.MatchString(o.Name):
			fmt.Fprintf(&b, "def %s(**kwargs):\n    raise ValueError(%s)\n\n", o.Name,
				letta.PyStr(o.Name+" cannot be called from code on this server: the sandbox reaches no API, so code can call only the agent's custom tools with Python source"))
		}
	}
	return b.String()
}
