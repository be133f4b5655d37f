package api

import (
	"os"
	"testing"

	"github.com/kelpie/kelpie/internal/mcptest"
)

// TestMain lets this test binary serve as the tests' stdio MCP server.
func TestMain(m *testing.M) {
	mcptest.ServeStdioIfAsked()
	os.Exit(m.Run())
}
