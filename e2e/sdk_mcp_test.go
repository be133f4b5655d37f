package e2e

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/internal/mcptest"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// TestSDKMCPServers registers the tests' MCP server (this test binary over
// stdio, and over streamable HTTP on loopback) with the SDK, attaches one
// of its tools to an agent, has the model call it in a turn, runs a tool
// directly, refreshes and deletes the servers.
func TestSDKMCPServers(t *testing.T) {
	npmInstall(t)
	llmSrv := llmtest.NewServer(t)
	ctl := newLLMControl(t, llmSrv)
	k := kelpietest.Start(t, kelpieBin(t), []string{
		"OPENAI_BASE_URL=" + llmSrv.OpenAIBaseURL(),
		"OPENAI_API_KEY=" + llmAPIKey,
	}, "--storage", "memory", "--log-level", "debug", "--mcp-allow-private-urls")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kelpie logs:\n%s", k.Logs())
		}
	})
	cmd, args, env := mcptest.Stdio(t)
	argsJSON, _ := json.Marshal(args)
	envJSON, _ := json.Marshal(env)
	remote := mcptest.StartHTTP(t, map[string]string{"Authorization": "Bearer e2e-token"})
	nodeTest(t, filepath.Join("sdk", "mcp.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL(),
		"MCP_COMMAND="+cmd, "MCP_ARGS="+string(argsJSON), "MCP_ENV="+string(envJSON), "MCP_HTTP_URL="+remote.URL+"/mcp")
	checkLLMRequests(t, llmSrv.Requests(), "gpt-4o-mini")
}
