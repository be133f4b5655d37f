// Package e2e drives a real kelpie process with Letta's official clients:
// the @letta-ai/letta-client TypeScript SDK and the letta CLI, installed
// from npm at the versions pinned in package-lock.json.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/mcptest"
)

var (
	installOnce sync.Once
	installErr  error
	installOut  []byte

	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// nodeTestTimeout bounds one node --test run; it guards against hangs and is
// not a performance assertion.
const nodeTestTimeout = 3 * time.Minute

func TestMain(m *testing.M) {
	mcptest.ServeStdioIfAsked() // this binary is also the tests' stdio MCP server
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// kelpieBin builds ./cmd/kelpie once per test run (the current tree) and
// returns the binary's path.
func kelpieBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "kelpie-e2e-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		buildBin = filepath.Join(buildDir, "kelpie")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/kelpie")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/kelpie: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// npmInstall installs the pinned clients once per test run, unless
// node_modules already matches the lockfile.
func npmInstall(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not on PATH: the end-to-end tests run Letta's official clients on Node.js")
	}
	installOnce.Do(func() {
		lock, err := os.Stat("package-lock.json")
		if err != nil {
			installErr = err
			return
		}
		if inst, err := os.Stat(filepath.Join("node_modules", ".package-lock.json")); err == nil && !inst.ModTime().Before(lock.ModTime()) {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		installOut, installErr = cmd.CombinedOutput()
	})
	if installErr != nil {
		t.Fatalf("npm ci: %v\n%s", installErr, installOut)
	}
}

// command returns a command run in its own process group, which is killed
// as a whole when ctx ends and once the command has exited (so nothing it
// started outlives the test).
func command(t *testing.T, ctx context.Context, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	t.Cleanup(func() {
		if cmd.Process != nil {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of the group; ESRCH if none
		}
	})
	return cmd
}

// nodeTest runs a node:test file against base and fails t with its output
// if any test in it fails. env adds "NAME=value" variables.
func nodeTest(t *testing.T, file, base string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nodeTestTimeout)
	defer cancel()
	cmd := command(t, ctx, "node", "--test", "--test-reporter=spec", file)
	cmd.Env = append(append(os.Environ(), "KELPIE_BASE_URL="+base), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test %s:\n%s", file, out)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node --test %s: still running after %v, killed", file, nodeTestTimeout)
	}
	if err != nil {
		t.Fatalf("node --test %s: %v", file, err)
	}
}
