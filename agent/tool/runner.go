package tool

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Runner runs custom tools: Python functions, each call in an isolated
// process of its own. package sandbox has the one Kelpie serves with (cmd
// wires it; the simulation cannot run processes).
type Runner interface {
	// Derive returns the JSON schema of the function defined in source, as
	// Letta derives it (name, description and parameters). Source that
	// yields no schema is a *DeriveError.
	Derive(ctx context.Context, source string) (map[string]any, error)
	// Run runs one call. Whatever the tool does (fails, hangs, floods its
	// output), Run returns an Outcome the model can read.
	Run(ctx context.Context, job Job) Outcome
}

// Job is one call of a custom tool.
type Job struct {
	Source string          // Python source defining the function
	Name   string          // the function to call
	Args   json.RawMessage // its keyword arguments, a JSON object
	// Env is the tool's environment (the agent's variables and secrets):
	// nothing else of the server's environment reaches it.
	Env map[string]string
}

// Outcome is how a call ended: the result the model reads (an error
// starts "Error: "), and what the tool printed.
type Outcome struct {
	Result         string
	OK             bool
	Stdout, Stderr string
}

// Failed is the outcome of a call that could not run or did not finish.
func Failed(format string, args ...any) Outcome {
	return Outcome{Result: "Error: " + fmt.Sprintf(format, args...)}
}

// DeriveError says why a tool's source yields no schema.
type DeriveError struct{ Msg string }

func (e *DeriveError) Error() string { return "Schema generation failed: " + e.Msg }

// Truncate cuts a result to limit characters, saying so as Letta does.
func Truncate(result string, limit int) string {
	n := utf8.RuneCountInString(result)
	if limit <= 0 || n <= limit {
		return result
	}
	return fmt.Sprintf("%s... [NOTE: function output was truncated since it exceeded the character limit (%d > %d)]", string([]rune(result)[:limit]), n, limit)
}

// Status is a result's status as Letta names it.
func Status(ok bool) string {
	if ok {
		return "success"
	}
	return "error"
}
