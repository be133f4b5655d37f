package tool

import (
	"context"
	_ "embed"
	"encoding/json"
	"slices"
	"strings"
)

// runCodeProgram is the Python that runs run_code's code in the sandbox.
//
//go:embed run_code.py
var runCodeProgram string

// Limits of run_code, besides the sandbox's own (CPU and wall-clock time,
// memory, processes, file size, a private /tmp, no network).
const (
	// MaxRunCodeChars bounds the code of one call.
	MaxRunCodeChars = 100_000
	// MaxRunCodeOutputChars bounds what the code may print to stdout, and
	// to stderr: more raises an error in the code.
	MaxRunCodeOutputChars = 200_000
)

// runCodeLanguages are the languages Letta's run_code takes; Kelpie's
// sandbox runs Python only.
var runCodeLanguages = []string{"python", "js", "ts", "r", "java"}

var runCode = defineOutside("run_code", "letta_builtin",
	"Run code in a sandbox. Supports Python, Javascript, Typescript, R, and Java; this server runs Python only. The sandbox has no network, a private temporary directory and limits on time, memory and output. Returns JSON: the value of a final expression (results), what the code printed (logs.stdout, logs.stderr), and the error it raised, if any.",
	`{"type":"object","properties":{"code":{"type":"string","description":"The code to run."},"language":{"type":"string","enum":["python","js","ts","r","java"],"description":"The language of the code."}},"required":["code","language"]}`,
	func(ctx context.Context, x *Outside, c Call, a struct {
		Code     string `json:"code"`
		Language string `json:"language"`
	}) Outcome {
		lang := strings.ToLower(a.Language)
		switch {
		case !slices.Contains(runCodeLanguages, lang):
			return Failed("language %q is not one run_code knows: use one of %s", a.Language, strings.Join(runCodeLanguages, ", "))
		case lang != "python":
			return Failed("run_code cannot run %s on this server: its sandbox runs Python only", lang)
		case len(a.Code) > MaxRunCodeChars:
			return Failed("the code is %d bytes, over run_code's limit of %d", len(a.Code), MaxRunCodeChars)
		case x.Runner == nil:
			return Failed("run_code cannot run on this server: it was started without a code sandbox")
		}
		args, err := json.Marshal(map[string]any{"code": a.Code, "max_output_chars": MaxRunCodeOutputChars})
		if err != nil {
			return Failed("the code could not be encoded: %v", err)
		}
		return x.Runner.Run(ctx, Job{Source: runCodeProgram, Name: "run_code", Args: args})
	})
