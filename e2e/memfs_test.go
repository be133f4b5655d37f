package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// TestLettaCLIMemfs: `letta --memfs -p ...` (what `/memfs enable` does,
// headless) against kelpie as its memory server. letta-code tags the
// agent, recompiles it and clones the agent's memory repository with
// Debian's git; the model then calls letta-code's memory_apply_patch,
// which letta-code runs on its clone and commits, and pushes after the
// turn: the new memory file is a block of the agent on kelpie, in the
// system message its next turn is sent.
func TestLettaCLIMemfs(t *testing.T) {
	const fact = "The user drinks green tea every morning."
	patch := "*** Begin Patch\n*** Add File: tea.md\n+" + fact + "\n*** End Patch"
	args, _ := json.Marshal(map[string]string{"reason": "Remember the tea", "input": patch})
	run := runLettaWith(t, "remember that I drink green tea every morning", []string{"--memfs"},
		[]string{"LETTA_MEMFS_LOCAL=1", "LETTA_MEMFS_BASE_URL={proxy}"},
		func(llmSrv *llmtest.Server) {
			llmSrv.Script(
				llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "call_mem_1", Name: "memory_apply_patch", Arguments: string(args)}}},
				llmtest.Reply{Text: "noted"},
			)
			llmSrv.SetDefault(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "unexpected extra request"} })
		})
	for _, r := range run.llm.Requests() {
		for _, m := range r.Messages {
			if m.Role == "tool" {
				t.Logf("tool result the model got: %q", m.Content)
			}
		}
	}
	var cloned, pushed bool
	for _, e := range run.traffic.list() {
		cloned = cloned || strings.HasSuffix(e.Path, "/state.git/git-upload-pack") && e.Status == 200
		pushed = pushed || strings.HasSuffix(e.Path, "/state.git/git-receive-pack") && e.Status == 200
	}
	if !cloned || !pushed {
		t.Errorf("letta-code fetched the agent's memory repository: %v; pushed to it: %v", cloned, pushed)
	}
	agentID := run.result.AgentID
	var block struct {
		Value string `json:"value"`
	}
	getJSON(t, run.kelpie+"/v1/agents/"+agentID+"/core-memory/blocks/tea", &block)
	if !strings.Contains(block.Value, fact) {
		t.Errorf("block tea = %q, want the patched fact", block.Value)
	}
	// The CLI's own view: its clone is clean and not ahead of kelpie's
	// repository (the push went through), and a pull from it works.
	if out, code := lettaCommand(t, run, "memory", "status", "--agent", agentID); code != 0 || !strings.Contains(out, `"summary": "clean"`) {
		t.Errorf("letta memory status: exit %d: %s", code, out)
	}
	if out, code := lettaCommand(t, run, "memory", "pull", "--agent", agentID); code != 0 {
		t.Errorf("letta memory pull: exit %d: %s", code, out)
	}
	export := filepath.Join(t.TempDir(), "export")
	if out, code := lettaCommand(t, run, "memory", "export", "--agent", agentID, "--out", export); code != 0 {
		t.Errorf("letta memory export: exit %d: %s", code, out)
	}
	exported, err := os.ReadFile(filepath.Join(export, "tea.md"))
	if err != nil || !strings.Contains(string(exported), fact) {
		t.Errorf("letta memory export: tea.md = %q, %v; want the patched fact", exported, err)
	}
	var agent struct {
		MessageIDs []string `json:"message_ids"`
	}
	getJSON(t, run.kelpie+"/v1/agents/"+agentID, &agent)
	if len(agent.MessageIDs) == 0 {
		t.Fatal("the agent has no system message")
	}
	var sys []struct {
		Content string `json:"content"`
	}
	getJSON(t, run.kelpie+"/v1/messages/"+agent.MessageIDs[0], &sys)
	if len(sys) != 1 || !strings.Contains(sys[0].Content, fact) {
		t.Errorf("the system message the next turn is sent does not hold the pushed memory:\n%+v", sys)
	}
}

// lettaCommand runs the letta CLI again with run's environment (its HOME,
// kelpie behind the proxy) and returns its stdout and exit code.
func lettaCommand(t *testing.T, run *lettaRun, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	bin, err := filepath.Abs(filepath.Join("node_modules", ".bin", "letta"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := command(t, ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = run.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("letta %v: %v\n%s", args, err, stderr.String())
	}
	t.Logf("letta %v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
	return stdout.String(), code
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
