package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
)

// The simulated tool sandbox. The workload creates one custom tool,
// simNoteTool (upsertToolOp), and gives it to some agents; the scripted
// model calls it with a fresh marker as its note. The loop runs such a
// call outside the step's transaction, after the step commits (a deferred
// call), so it is where at-most-once must hold: a crash while the tool
// runs, or before its result commits, leaves the call to be answered as
// interrupted at the next turn, never run again.
//
// The sandbox records every run of every note (the ledger), and the tool
// faults of the profile make a run fail as the real sandbox reports it: a
// crash (non-zero exit), a timeout (the wall-clock limit, or the turn's
// cancellation), a flood of output. A process crash may also hit while a
// tool runs. The checker (checkTools) then holds the history to the
// ledger:
//
//   - tool-at-most-once: no note ran twice;
//   - tool-result: a successful result in the history is the result of the
//     note's one run, and a note that never ran has no successful result.

// simNoteTool is the workload's custom tool.
const simNoteTool = "sim_note"

// simNoteSource and simNoteSchema define it, as a client would.
const simNoteSource = "def sim_note(note: str) -> str:\n    \"\"\"Write a note down.\n\n    Args:\n        note: The note.\n    \"\"\"\n    return 'noted ' + note\n"

var simNoteSchema = map[string]any{
	"name": simNoteTool, "description": "Write a note down.",
	"parameters": map[string]any{"type": "object", "required": []string{"note"},
		"properties": map[string]any{"note": map[string]any{"type": "string", "description": "The note."}}},
}

// Tool faults, drawn on each run of a custom tool (the key is its note).
const (
	// ToolCrash makes the tool exit with a non-zero status after it ran.
	ToolCrash FaultKind = "tool_crash"
	// ToolTimeout makes the tool run until the sandbox's wall-clock limit
	// (or the turn's cancellation) stops it.
	ToolTimeout FaultKind = "tool_timeout"
	// ToolHugeOutput makes the tool print and return far more than any
	// limit allows.
	ToolHugeOutput FaultKind = "tool_huge_output"
)

// Limits of the simulated sandbox.
const (
	simToolWallLimit  = 50 * time.Millisecond // a run's wall-clock limit, in simulated time
	simToolHugeOutput = 1 << 20               // bytes a flooding tool prints and returns
)

// simTools is the run's sandbox: its ledger outlives incarnations.
type simTools struct {
	sys *system
	ledger
}

func newSimTools(s *system) *simTools {
	return &simTools{sys: s, ledger: newLedger()}
}

// ledger records the runs of a tool whose calls happen outside the
// store (the sandbox's, the MCP server's), by the fresh marker each call
// carries.
type ledger struct {
	mu      sync.Mutex
	runs    map[string]int    // by marker: how many times it ran
	results map[string]string // by marker: the result its last run gave
}

func newLedger() ledger { return ledger{runs: map[string]int{}, results: map[string]string{}} }

func (l *ledger) ran(marker string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[marker]++
}

func (l *ledger) gave(marker, result string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results[marker] = result
}

// toolRunner is one incarnation's runner: a run may crash the
// incarnation it runs in.
type toolRunner struct {
	t   *simTools
	inc *incarnation
}

// Derive is not used: the workload gives its tool a json_schema.
func (toolRunner) Derive(context.Context, string) (map[string]any, error) {
	return nil, &tool.DeriveError{Msg: "the simulated sandbox derives no schemas; give a json_schema"}
}

// Run runs one call of the tool: it counts the note's run, then fails it
// as a fault says or answers "noted NOTE".
func (r toolRunner) Run(ctx context.Context, job tool.Job) tool.Outcome {
	var args struct {
		Note string `json:"note"`
	}
	if err := json.Unmarshal(job.Args, &args); err != nil || job.Name != simNoteTool {
		return tool.Failed("%s(%s): the simulated sandbox runs only %s(note)", job.Name, job.Args, simNoteTool)
	}
	t := r.t
	s := t.sys
	inj, key := s.inj, []byte(args.Note)
	t.ran(args.Note)
	s.rec.event("tool run %s(%q)", job.Name, args.Note)
	if inj.fire(ProcessCrash, "", key) {
		s.crash(r.inc, "process_crash: while a tool ran")
	}
	out := tool.Outcome{Result: "noted " + args.Note, OK: true, Stdout: "noting " + args.Note + "\n"}
	switch {
	case inj.fire(ToolCrash, "", key):
		out = tool.Failed("the tool exited with status 1")
		out.Stderr = "Traceback (most recent call last):\nRuntimeError: simulated crash\n"
	case inj.fire(ToolTimeout, "", key):
		select {
		case <-ctx.Done():
		case <-s.clock.After(simToolWallLimit):
		}
		out = tool.Failed("the tool ran longer than its limit of %s and was stopped", simToolWallLimit)
	case inj.fire(ToolHugeOutput, "", key):
		flood := strings.Repeat("x", simToolHugeOutput)
		out.Result, out.Stdout = "noted "+args.Note+" "+flood, flood
	}
	t.gave(args.Note, out.Result)
	return out
}

// checkTools holds the audited histories to the sandbox's ledger and to
// the MCP server's.
func (c *checker) checkTools() {
	c.checkLedger(simNoteTool, "note", &c.sys.tools.ledger)
	c.checkLedger(simMCPTool, "key", &c.sys.mcp)
}

// checkLedger holds the histories' calls of name, whose argument arg
// carries their marker, to the ledger of its runs.
func (c *checker) checkLedger(name, arg string, l *ledger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, marker := range sortedKeys(l.runs) {
		if n := l.runs[marker]; n > 1 {
			c.report("tool-at-most-once", fmt.Sprintf("the %s call with %s %q ran %d times", name, arg, marker, n), "")
		}
	}
	if c.msg.audit == nil {
		return // the audit did not run: a liveness violation says why
	}
	for _, id := range sortedKeys(c.msg.audit.agents) {
		hist := c.msg.audit.agents[id].hist
		// A model's bad answer may give two calls one id (or reuse an
		// earlier turn's): results of such ids cannot be told apart.
		uses := map[string]int{}
		for _, m := range hist {
			if m.ToolCall != nil {
				uses[m.ToolCall.ToolCallID]++
			}
		}
		calls := map[string]string{} // call id -> its marker
		for _, m := range hist {
			switch {
			case m.ToolCall != nil && m.ToolCall.Name == name && uses[m.ToolCall.ToolCallID] == 1:
				var args map[string]any
				if json.Unmarshal([]byte(m.ToolCall.Arguments), &args) == nil {
					if marker, ok := args[arg].(string); ok {
						calls[m.ToolCall.ToolCallID] = marker
					}
				}
			case m.MessageType == mtToolReturn && m.Status == "success":
				marker, ok := calls[m.ToolCallID]
				if !ok {
					continue
				}
				c.count("tool_results_checked", 1)
				ran, result := l.runs[marker], l.results[marker]
				switch {
				case ran == 0:
					c.report("tool-result", fmt.Sprintf("agent %s: %s call %s (%s %q) never ran, yet its result %s says it succeeded: %q", id, name, m.ToolCallID, arg, marker, m.ID, clipString(m.ToolReturn, 200)), "")
				case !strings.HasPrefix(result, strings.TrimSuffix(m.ToolReturn, truncatedSuffix(m.ToolReturn))):
					c.report("tool-result", fmt.Sprintf("agent %s: %s call %s (%s %q) answered %q; its run gave %q", id, name, m.ToolCallID, arg, marker, clipString(m.ToolReturn, 200), clipString(result, 200)), "")
				}
			}
		}
	}
}

// truncatedSuffix is the note a result cut to its tool's return_char_limit
// ends with ("" for a whole one).
func truncatedSuffix(result string) string {
	if i := strings.LastIndex(result, "... [NOTE: function output was truncated"); i >= 0 {
		return result[i:]
	}
	return ""
}

// upsertToolOp creates the custom tool, or updates it to the same
// definition (PUT /v1/tools). Tools are not modelled: it is not a write in
// the sense of traits, and what it tells the clients is that agents may now
// be given the tool.
type upsertToolOp struct{}

func (upsertToolOp) traits() traits { return traits{} }

func (upsertToolOp) generate(_ *client, op *opRecord) {
	op.set("PUT", "/v1/tools", map[string]any{"source_code": simNoteSource, "json_schema": simNoteSchema})
}

func (upsertToolOp) parse(op *opRecord) error {
	var t struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(op.Resp, &t); err != nil {
		return err
	}
	if t.Name != simNoteTool {
		return fmt.Errorf("the upsert of %s answered the tool %q", simNoteTool, t.Name)
	}
	return nil
}

func (upsertToolOp) learn(w *world, op, _ *opRecord) {
	if op.Out == okOutcome {
		w.toolReady = true
	}
}

func (upsertToolOp) model(*modelBuilder, *opRecord, modelResult) {}
