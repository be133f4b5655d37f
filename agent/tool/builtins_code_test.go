package tool_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/sandbox"
	"github.com/kelpie/kelpie/schema"
)

// runCode runs run_code with runner.
func runCode(t *testing.T, runner tool.Runner, code, lang string) tool.Outcome {
	t.Helper()
	rc, ok := tool.Lookup("run_code")
	if !ok {
		t.Fatal("run_code is not a built-in tool")
	}
	args, _ := json.Marshal(map[string]string{"code": code, "language": lang})
	return rc.RunOutside(context.Background(), &tool.Outside{Runner: runner}, tool.Call{AgentID: "agent-1"}, args)
}

// execution is run_code's answer.
type execution struct {
	Results []string `json:"results"`
	Logs    struct {
		Stdout []string `json:"stdout"`
		Stderr []string `json:"stderr"`
	} `json:"logs"`
	Error *struct {
		Name, Value, Traceback string
	} `json:"error"`
}

func decodeExecution(t *testing.T, out tool.Outcome) execution {
	t.Helper()
	if !out.OK {
		t.Fatalf("run_code failed: %q", out.Result)
	}
	var e execution
	if err := json.Unmarshal([]byte(out.Result), &e); err != nil {
		t.Fatalf("run_code answered %q: %v", out.Result, err)
	}
	return e
}

// Spec: run_code runs Python in the bubblewrap sandbox and answers as
// Letta's does: the final expression's value in results, what the code
// printed in logs, and the exception it raised in error (name, value,
// traceback). It has no network.
func TestRunCodeInSandbox(t *testing.T) {
	kelpietest.NeedTool(t, "bwrap")
	box, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := decodeExecution(t, runCode(t, box, "import sys\nprint('hello')\nprint('oops', file=sys.stderr)\nx = 6\nx * 7", "python"))
	if len(e.Results) != 1 || e.Results[0] != "42" || strings.Join(e.Logs.Stdout, "") != "hello\n" || strings.Join(e.Logs.Stderr, "") != "oops\n" || e.Error != nil {
		t.Errorf("execution %+v", e)
	}
	e = decodeExecution(t, runCode(t, box, "print('before')\nraise ValueError('bad value')", "python"))
	if e.Error == nil || e.Error.Name != "ValueError" || e.Error.Value != "bad value" || !strings.Contains(e.Error.Traceback, "ValueError") || strings.Join(e.Logs.Stdout, "") != "before\n" {
		t.Errorf("execution %+v", e)
	}
	e = decodeExecution(t, runCode(t, box, "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)", "python"))
	if e.Error == nil || !strings.Contains(e.Error.Name, "Error") {
		t.Errorf("the network was reachable: %+v", e)
	}
	e = decodeExecution(t, runCode(t, box, "print('x' * 300000)", "python"))
	if e.Error == nil || e.Error.Name != "OverflowError" || !strings.Contains(e.Error.Value, "printed more than") {
		t.Errorf("output limit: %+v", e.Error)
	}
}

// Spec: run_code runs JavaScript in node, in the same sandbox, and answers
// as for Python: the last statement's value (a promise's, awaited) in
// results, what console and process.stdout/stderr got in logs, the
// exception in error; output past the limit throws in the code; the
// network is unreachable and the data directory invisible. TypeScript runs
// when node can strip its types, else it is an error result saying so.
func TestRunCodeJavaScript(t *testing.T) {
	kelpietest.NeedTool(t, "bwrap")
	kelpietest.NeedTool(t, "node")
	box, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := decodeExecution(t, runCode(t, box, "console.log('hello');\nconsole.error('oops');\nprocess.stdout.write('raw\\n');\nconst x = 6;\nx * 7", "js"))
	if len(e.Results) != 1 || e.Results[0] != "42" || strings.Join(e.Logs.Stdout, "") != "hello\nraw\n" || strings.Join(e.Logs.Stderr, "") != "oops\n" || e.Error != nil {
		t.Errorf("execution %+v", e)
	}
	e = decodeExecution(t, runCode(t, box, "setTimeout(() => console.log('later'), 10);\nPromise.resolve({a: [1, 'two']})", "js"))
	if len(e.Results) != 1 || e.Results[0] != "{ a: [ 1, 'two' ] }" || strings.Join(e.Logs.Stdout, "") != "later\n" {
		t.Errorf("async execution %+v", e)
	}
	e = decodeExecution(t, runCode(t, box, "console.log('before');\nthrow new TypeError('bad value')", "js"))
	if e.Error == nil || e.Error.Name != "TypeError" || e.Error.Value != "bad value" || !strings.Contains(e.Error.Traceback, "<code>") || strings.Join(e.Logs.Stdout, "") != "before\n" {
		t.Errorf("execution %+v", e)
	}
	e = decodeExecution(t, runCode(t, box, "console.log('x'.repeat(300000))", "js"))
	if e.Error == nil || e.Error.Name != "RangeError" || !strings.Contains(e.Error.Value, "printed more than") {
		t.Errorf("output limit: %+v", e.Error)
	}
	e = decodeExecution(t, runCode(t, box, "const net = require('net');\nnew Promise((ok, fail) => { const s = net.connect(53, '1.1.1.1', ok); s.on('error', fail); })", "js"))
	if e.Error == nil {
		t.Errorf("the network was reachable: %+v", e)
	}
	e = decodeExecution(t, runCode(t, box, "require('fs').readdirSync('/work')", "js"))
	if e.Error == nil || !strings.Contains(e.Error.Value, "ENOENT") {
		t.Errorf("the host's /work was visible: %+v", e)
	}
	out := runCode(t, box, "const n: number = 40;\nn + 2", "ts")
	if !out.OK {
		if !strings.Contains(out.Result, "cannot run TypeScript: it needs node 22.13 or later") {
			t.Errorf("TypeScript on an older node: %+v", out)
		}
		return
	}
	if e := decodeExecution(t, out); len(e.Results) != 1 || e.Results[0] != "42" {
		t.Errorf("TypeScript: %+v", e)
	}
}

// Spec: Python code run by run_code can call the agent's custom tools by
// name: their source is run first (Call.Prelude, tool.CodePrelude), as
// Letta's run_code prepends it; only run_code's calls get a prelude.
func TestRunCodeCallsCustomTools(t *testing.T) {
	kelpietest.NeedTool(t, "bwrap")
	box, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src := "def add(a: int, b: int) -> int:\n    \"\"\"Add.\n\n    Args:\n        a: one\n        b: two\n    \"\"\"\n    return a + b\n"
	tools := []*tool.Tool{{Name: "add", Custom: &schema.Tool{Tool: letta.Tool{Name: "add", SourceCode: &src}}}, {Name: "mcp_thing", Custom: &schema.Tool{}}}
	rc, _ := tool.Lookup("run_code")
	prelude := tool.CodePrelude(rc, tools)
	if prelude != src+"\n\n" {
		t.Fatalf("prelude %q", prelude)
	}
	if fw, _ := tool.Lookup("fetch_webpage"); tool.CodePrelude(fw, tools) != "" {
		t.Error("fetch_webpage got a prelude")
	}
	args, _ := json.Marshal(map[string]string{"code": "add(add(4, 5), 6)", "language": "python"})
	e := decodeExecution(t, rc.RunOutside(context.Background(), &tool.Outside{Runner: box}, tool.Call{Prelude: prelude}, args))
	if len(e.Results) != 1 || e.Results[0] != "15" || e.Error != nil {
		t.Errorf("execution %+v", e)
	}
}

// Spec: run_code_with_tools runs Python that calls the agent's custom
// tools, and answers in Letta's shape (status, the first result or
// Letta's error text, stdout, stderr with the traceback); calling one of
// the agent's other tools (built-in or MCP) raises ValueError saying why.
func TestRunCodeWithTools(t *testing.T) {
	kelpietest.NeedTool(t, "bwrap")
	box, err := sandbox.New(sandbox.Config{})
	if err != nil {
		t.Fatal(err)
	}
	src := "def add(a: int, b: int) -> int:\n    \"\"\"Add.\n\n    Args:\n        a: one\n        b: two\n    \"\"\"\n    return a + b\n"
	search, _ := tool.Lookup("conversation_search")
	tools := []*tool.Tool{search, {Name: "add", Custom: &schema.Tool{Tool: letta.Tool{Name: "add", SourceCode: &src}}}, {Name: "get-sum", Custom: &schema.Tool{}}}
	rc, _ := tool.Lookup("run_code_with_tools")
	prelude := tool.CodePrelude(rc, tools)
	run := func(code string) string {
		args, _ := json.Marshal(map[string]string{"code": code})
		out := rc.RunOutside(context.Background(), &tool.Outside{Runner: box}, tool.Call{Prelude: prelude}, args)
		if !out.OK {
			t.Fatalf("%q: %+v", code, out)
		}
		return out.Result
	}
	if got, want := run("print('hi')\nadd(add(4, 5), 6)"), `{"status": "success", "func_return": "15", "stdout": ["hi\n"], "stderr": []}`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var res struct {
		Status     string   `json:"status"`
		FuncReturn string   `json:"func_return"`
		Stderr     []string `json:"stderr"`
	}
	if err := json.Unmarshal([]byte(run("conversation_search(query='x')")), &res); err != nil {
		t.Fatal(err)
	}
	want := "Error executing function run_code_with_tools: ValueError: conversation_search cannot be called from code on this server"
	if res.Status != "error" || !strings.HasPrefix(res.FuncReturn, want) || len(res.Stderr) != 1 || !strings.Contains(res.Stderr[0], "Traceback") {
		t.Errorf("calling a built-in tool: %+v", res)
	}
	if got := run("x = 1"); got != `{"status": "success", "func_return": null, "stdout": [], "stderr": []}` {
		t.Errorf("no result: %s", got)
	}
}

// Spec: the sandbox's limits hold for run_code: CPU time, wall-clock time
// and memory each stop the code with an error result saying which.
func TestRunCodeLimits(t *testing.T) {
	kelpietest.NeedTool(t, "bwrap")
	// Two sandboxes, so that a busy machine (the CPU time accrues slowly)
	// cannot end the CPU case by its wall-clock limit first.
	cpuBound, err := sandbox.New(sandbox.Config{Limits: sandbox.Limits{CPUTime: time.Second, MemoryBytes: 256 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	wallBound, err := sandbox.New(sandbox.Config{Limits: sandbox.Limits{WallTime: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		box        *sandbox.Sandbox
		code, want string
	}{
		{cpuBound, "while True:\n    pass", "used more than 1s of CPU time"},
		{wallBound, "import time\ntime.sleep(60)", "did not finish within 2s"},
		{cpuBound, "b = bytearray(1 << 30)\nlen(b)", "MemoryError"},
		{cpuBound, "import os\nos.listdir('/work')\n1", "FileNotFoundError"},
	} {
		if out := runCode(t, c.box, c.code, "python"); !strings.Contains(out.Result, c.want) {
			t.Errorf("%q: %+v, want %q", c.code, out, c.want)
		}
	}
}

// Spec: run_code refuses what it cannot run, saying why: other languages
// than Python, code over its size limit, and any code on a server without
// a sandbox (or whose sandbox lacks bubblewrap).
func TestRunCodeRefuses(t *testing.T) {
	for _, c := range []struct{ code, lang, want string }{
		{"1", "java", "cannot run java on this server: its sandbox runs python, js, ts only"},
		{"1", "cobol", `language "cobol" is not one run_code knows`},
		{strings.Repeat("#", tool.MaxRunCodeChars+1), "python", "over run_code's limit"},
		{"1", "python", "started without a code sandbox"},
	} {
		if out := runCode(t, nil, c.code, c.lang); out.OK || !strings.Contains(out.Result, c.want) {
			t.Errorf("%s: %+v, want %q", c.lang, out, c.want)
		}
	}
	box, err := sandbox.New(sandbox.Config{Bwrap: "/nonexistent/bwrap"})
	if err != sandbox.ErrNoBubblewrap {
		t.Fatalf("New without bubblewrap: %v", err)
	}
	if out := runCode(t, box, "1", "python"); out.OK || !strings.Contains(out.Result, "bubblewrap is not installed") {
		t.Errorf("without bubblewrap: %+v", out)
	}
}

// BenchmarkRunCode measures run_code's overhead, from the call to its
// answer, for code that adds two numbers, in the bubblewrap sandbox. It
// reports the median and 99th percentile.
//
//	go test ./agent/tool/ -run '^$' -bench RunCode -benchtime 100x
func BenchmarkRunCode(b *testing.B) {
	benchmarkRunCode(b, `{"code":"1 + 2","language":"python"}`, `"results": ["3"]`)
}

// BenchmarkRunCodeJS is BenchmarkRunCode for JavaScript, which starts
// node inside the sandbox.
//
//	go test ./agent/tool/ -run '^$' -bench RunCodeJS -benchtime 20x
func BenchmarkRunCodeJS(b *testing.B) {
	if _, err := exec.LookPath("node"); err != nil {
		b.Skip(err)
	}
	benchmarkRunCode(b, `{"code":"1 + 2","language":"js"}`, `"results": ["3"]`)
}

func benchmarkRunCode(b *testing.B, args, want string) {
	box, err := sandbox.New(sandbox.Config{})
	if err != nil {
		b.Skip(err)
	}
	rc, _ := tool.Lookup("run_code")
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		out := rc.RunOutside(context.Background(), &tool.Outside{Runner: box}, tool.Call{}, json.RawMessage(args))
		if !out.OK || !strings.Contains(out.Result, want) {
			b.Fatalf("got %+v", out)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	pct := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
