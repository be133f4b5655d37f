package kelpietest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of the program name, which a test needs. When it
// is missing the test is skipped on a developer's machine, but fails under CI
// (CI set in the environment), where .ci/run installs every such program: a
// test that needs a real part must not pass by not running.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is needed and .ci/run should have installed it: %v", name, err)
	}
	t.Skipf("%s is not installed (CI installs it): %v", name, err)
	return ""
}
