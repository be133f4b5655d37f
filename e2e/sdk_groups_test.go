package e2e

import (
	"path/filepath"
	"testing"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

// TestSDKAgentFile exports an agent from one server with the SDK and
// imports it into a fresh one (sdk/agentfile.test.mjs).
func TestSDKAgentFile(t *testing.T) {
	npmInstall(t)
	llmSrv, ctl, k := startWithLLM(t)
	second := kelpietest.Start(t, kelpieBin(t), []string{
		"OPENAI_BASE_URL=" + llmSrv.OpenAIBaseURL(),
		"OPENAI_API_KEY=" + llmAPIKey,
	}, "--storage", "memory")
	nodeTest(t, filepath.Join("sdk", "agentfile.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL(), "KELPIE_SECOND_URL="+second.URL)
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
