package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/sandbox"
)

// run runs a tool whose body is body (indented four spaces) with no
// arguments.
func run(t *testing.T, s *sandbox.Sandbox, body string, env map[string]string) tool.Outcome {
	t.Helper()
	src := "def tool():\n"
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		src += "    " + line + "\n"
	}
	return s.Run(context.Background(), tool.Job{Source: src, Name: "tool", Env: env})
}

// Spec: a tool runs with its arguments, its return value is the result
// (rendered as Letta renders it), and what it prints is kept apart.
func TestRunReturnsResult(t *testing.T) {
	s := newSandbox(t, sandbox.Config{})
	src := "def add(a: int, b: int):\n    print('adding')\n    return {'sum': a + b}\n"
	out := s.Run(context.Background(), tool.Job{Source: src, Name: "add", Args: json.RawMessage(`{"a":2,"b":3}`)})
	if !out.OK || out.Result != `{"sum": 5}` || out.Stdout != "adding\n" {
		t.Errorf("got %+v", out)
	}
	if out := run(t, s, "return None", nil); !out.OK || out.Result != "None" {
		t.Errorf("None: %+v", out)
	}
	if out := run(t, s, "raise ValueError('bad input')", nil); out.OK || out.Result != "Error: ValueError: bad input" || !strings.Contains(out.Stderr, "Traceback") {
		t.Errorf("exception: %+v", out)
	}
	out = s.Run(context.Background(), tool.Job{Source: src, Name: "nope"})
	if out.OK || !strings.Contains(out.Result, "defines no function named nope") {
		t.Errorf("missing function: %+v", out)
	}
	out = s.Run(context.Background(), tool.Job{Source: src, Name: "add", Args: json.RawMessage(`{"a":1}`)})
	if out.OK || !strings.Contains(out.Result, "TypeError") {
		t.Errorf("missing argument: %+v", out)
	}
}

// Spec: every limit, when a tool trips it, ends the call with an error
// result saying which, and the call's processes are gone.
func TestRunLimits(t *testing.T) {
	s := newSandbox(t, sandbox.Config{Limits: sandbox.Limits{
		CPUTime: time.Second, WallTime: 6 * time.Second, MemoryBytes: 256 << 20,
		Processes: 8, FileBytes: 1 << 20, TmpBytes: 4 << 20, OutputBytes: 64 << 10,
	}})
	cases := []struct {
		name, body, want string
	}{
		{"hang (wall clock)", "import time\ntime.sleep(60)", "did not finish within 6s"},
		{"busy loop (CPU time)", "while True: pass", "more than 1s of CPU time"},
		{"memory", "x = bytearray(1 << 30)\nreturn len(x)", "MemoryError"},
		{"fork bomb (processes)", "import os\nwhile True: os.fork()", "BlockingIOError"},
		{"prints 1 GB (output)", "import sys\nwhile True: sys.stdout.write('x' * 65536)", "printed more than 65536 bytes"},
		{"huge file (file size)", "open('/tmp/f', 'wb').write(b'x' * (2 << 20))", "File too large"},
		{"fills /tmp", "for i in range(8):\n    open('/tmp/f%d' % i, 'wb').write(b'x' * (1 << 20))", "No space left on device"},
		{"crash (signal)", "import os\nos.abort()", "crashed (signal aborted)"},
		{"exits without a result", "import os\nos._exit(3)", "exited with status 3 without a result"},
		{"huge result", "return 'x' * (5 << 20)", "returned more than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			out := run(t, s, c.body, nil)
			if out.OK || !strings.HasPrefix(out.Result, "Error: ") || !strings.Contains(out.Result, c.want) {
				t.Errorf("got %q (stderr %q), want an error with %q", clip(out.Result), clip(out.Stderr), c.want)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// Spec: a tool has no network unless the sandbox allows it: even the
// loopback of the host is out of reach.
func TestRunNetworkDenied(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	body := fmt.Sprintf("import socket\ns = socket.create_connection(('127.0.0.1', %d), timeout=2)\nreturn s.recv(5).decode()", port)
	s := newSandbox(t, sandbox.Config{})
	if out := run(t, s, body, nil); out.OK || !strings.Contains(out.Result, "ConnectionRefusedError") {
		t.Errorf("without network: %+v", out)
	}
	// With the network shared, the same call reaches the listener: the
	// refusal above is the sandbox's doing.
	open := newSandbox(t, sandbox.Config{Network: true})
	if out := run(t, open, body, nil); !out.OK || out.Result != "hello" {
		t.Errorf("with network: %+v", out)
	}
}

// Spec: the server's files (its data directory) are invisible to a tool,
// the system is read-only, and the tool's environment is exactly what the
// job gives it.
func TestRunIsolation(t *testing.T) {
	dataDir := t.TempDir()
	secret := filepath.Join(dataDir, "store.db")
	if err := os.WriteFile(secret, []byte("agent data"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KELPIE_SERVER_SECRET", "do-not-leak")
	s := newSandbox(t, sandbox.Config{})
	out := run(t, s, fmt.Sprintf("import os\nreturn str(os.path.exists(%q)) + ' ' + str(os.path.exists(%q))", secret, dataDir), nil)
	if !out.OK || out.Result != "False False" {
		t.Errorf("data dir seen: %+v", out)
	}
	out = run(t, s, "open('/usr/kelpie-was-here', 'w')", nil)
	if out.OK || !strings.Contains(out.Result, "Read-only file system") {
		t.Errorf("wrote to /usr: %+v", out)
	}
	out = run(t, s, "import os\nreturn os.environ.get('API_TOKEN', '-') + ' ' + os.environ.get('KELPIE_SERVER_SECRET', '-')", map[string]string{"API_TOKEN": "t0k"})
	if !out.OK || out.Result != "t0k -" {
		t.Errorf("environment: %+v", out)
	}
	out = run(t, s, "open('/tmp/x', 'w').write('ok')\nreturn open('/tmp/x').read()", nil)
	if !out.OK || out.Result != "ok" {
		t.Errorf("private /tmp: %+v", out)
	}
}

// Spec: a cancelled request stops the tool at once.
func TestRunCancelled(t *testing.T) {
	s := newSandbox(t, sandbox.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	out := s.Run(ctx, tool.Job{Source: "def tool():\n    import time\n    time.sleep(60)\n", Name: "tool"})
	if out.OK || !strings.Contains(out.Result, "cancelled") || time.Since(start) > 5*time.Second {
		t.Errorf("got %+v after %s", out, time.Since(start))
	}
}

func clip(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// Spec: when a call ends, nothing it started lives on, not even a process
// that left its session (under a root server, which gives each call a
// user id of its own).
func TestRunLeavesNoProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("calls have user ids of their own only under root")
	}
	const base = 1_500_000 // below every default range: no other server uses it
	s := newSandbox(t, sandbox.Config{UIDBase: base, Concurrency: 1})
	out := run(t, s, "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n    os._exit(0)\nreturn 'parent done'", nil)
	if !out.OK || out.Result != "parent done" {
		t.Fatalf("got %+v", out)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		if strings.Contains(string(data), fmt.Sprintf("\nUid:\t%d\t", base)) && !strings.Contains(string(data), "\nState:\tZ") {
			t.Errorf("process %s of the call lives on:\n%s", e.Name(), clip(string(data)))
		}
	}
}
