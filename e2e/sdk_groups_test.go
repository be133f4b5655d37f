package e2e

import (
	"path/filepath"
	"testing"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/internal/mcptest"
)

// TestSDKAgentFile exports an agent from one server with the SDK and
// imports it into a fresh one (sdk/agentfile.test.mjs), with the MCP
// server of its tools (on loopback, which both servers are let reach).
func TestSDKAgentFile(t *testing.T) {
	npmInstall(t)
	const mcpPrivate = "KELPIE_MCP_ALLOW_PRIVATE_URLS=true"
	llmSrv, ctl, k := startWithLLM(t, mcpPrivate)
	second := kelpietest.Start(t, kelpieBin(t), []string{
		"OPENAI_BASE_URL=" + llmSrv.OpenAIBaseURL(),
		"OPENAI_API_KEY=" + llmAPIKey,
		mcpPrivate,
	}, "--storage", "memory")
	remote := mcptest.StartHTTP(t, map[string]string{"Authorization": "Bearer e2e-token"})
	nodeTest(t, filepath.Join("sdk", "agentfile.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL(), "KELPIE_SECOND_URL="+second.URL,
		"MCP_HTTP_URL="+remote.URL+"/mcp")
	checkLLMRequests(t, llmSrv.Requests(), "gpt-4o-mini")
}

// TestSDKSleeptime has a sleep-time agent edit its main agent's memory
// after a turn (sdk/sleeptime.test.mjs).
func TestSDKSleeptime(t *testing.T) {
	npmInstall(t)
	llmSrv, ctl, k := startWithLLM(t)
	nodeTest(t, filepath.Join("sdk", "sleeptime.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL())
	checkLLMRequests(t, llmSrv.Requests(), "gpt-4o-mini")
}
