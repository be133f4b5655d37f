package e2e

import (
	"path/filepath"
	"testing"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

// TestSDKCustomTool creates a tool from Python source with the SDK,
// attaches it, has the model call it in a turn (run in the real sandbox)
// and pages through the tools listings with the SDK's auto-pagination.
func TestSDKCustomTool(t *testing.T) {
	kelpietest.NeedTool(t, "bwrap")
	npmInstall(t)
	llmSrv, ctl, k := startWithLLM(t)
	nodeTest(t, filepath.Join("sdk", "custom_tool.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL())
	checkLLMRequests(t, llmSrv.Requests(), "gpt-4o-mini")
}
