package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

// TestSDKFolders uploads a Markdown file and a PDF to a folder with the
// SDK, attaches it to an agent and has the agent grep and open the files
// (sdk/folders.test.mjs).
func TestSDKFolders(t *testing.T) {
	npmInstall(t)
	llmSrv, ctl, k := startWithLLM(t)
	pdf := filepath.Join(t.TempDir(), "pilot.pdf")
	if err := os.WriteFile(pdf, kelpietest.PDF("Crew list", "The pilot is Ada Lovelace."), 0o600); err != nil {
		t.Fatal(err)
	}
	nodeTest(t, filepath.Join("sdk", "folders.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL(), "KELPIE_TEST_PDF="+pdf)
	checkLLMRequests(t, llmSrv.Requests(), "gpt-4o-mini")
}
