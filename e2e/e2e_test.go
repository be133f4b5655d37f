// Package e2e drives a real kelpie process with Letta's official clients:
// the @letta-ai/letta-client TypeScript SDK and the letta CLI, installed
// from npm at the versions pinned in package-lock.json.
package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

var (
	installOnce sync.Once
	installErr  error
	installOut  []byte
)

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

// nodeTest runs a node:test file against base and fails t with its output
// if any test in it fails.
func nodeTest(t *testing.T, file, base string) {
	t.Helper()
	cmd := exec.Command("node", "--test", "--test-reporter=spec", file)
	cmd.Env = append(os.Environ(), "KELPIE_BASE_URL="+base)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test %s:\n%s", file, out)
	if err != nil {
		t.Fatalf("node --test %s: %v", file, err)
	}
}

// TestSDKAgentsAndBlocks runs the SDK through agents and memory blocks.
func TestSDKAgentsAndBlocks(t *testing.T) {
	npmInstall(t)
	srv := kelpietest.Start(t, kelpietest.Build(t), nil, "--storage", "memory")
	nodeTest(t, filepath.Join("sdk", "agents.test.mjs"), srv.URL)
}
