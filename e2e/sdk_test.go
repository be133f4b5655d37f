package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/llm/llmtest"
)

// llmAPIKey is the OpenAI key kelpie is given; the double records it.
const llmAPIKey = "test"

// startWithLLM starts a scripted model double, its control API for the node
// tests, and kelpie configured (through OPENAI_BASE_URL and OPENAI_API_KEY)
// to use the double as its "openai" provider.
func startWithLLM(t *testing.T, env ...string) (*llmtest.Server, *llmControl, *kelpietest.Server) {
	t.Helper()
	llmSrv := llmtest.NewServer(t)
	ctl := newLLMControl(t, llmSrv)
	k := kelpietest.Start(t, kelpieBin(t), append([]string{
		"OPENAI_BASE_URL=" + llmSrv.OpenAIBaseURL(),
		"OPENAI_API_KEY=" + llmAPIKey,
	}, env...), "--storage", "memory", "--log-level", "debug")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kelpie logs:\n%s", k.Logs())
		}
	})
	return llmSrv, ctl, k
}

// checkLLMRequests fails t if kelpie sent the double a request it rejected,
// or one without the configured key or for another model than want.
func checkLLMRequests(t *testing.T, reqs []llmtest.Request, model string) {
	t.Helper()
	for i, r := range reqs {
		if r.Rejected != "" {
			t.Errorf("LLM request %d was invalid for the OpenAI API: %s\nbody: %s", i, r.Rejected, r.Body)
		}
		if r.APIKey != llmAPIKey {
			t.Errorf("LLM request %d: API key %q, want %q from OPENAI_API_KEY", i, r.APIKey, llmAPIKey)
		}
		if r.Model != model {
			t.Errorf("LLM request %d: model %q, want %q", i, r.Model, model)
		}
	}
}

// TestSDKAgentsAndBlocks runs the SDK through agents and memory blocks.
func TestSDKAgentsAndBlocks(t *testing.T) {
	npmInstall(t)
	srv := kelpietest.Start(t, kelpieBin(t), nil, "--storage", "memory")
	nodeTest(t, filepath.Join("sdk", "agents.test.mjs"), srv.URL)
}

// TestSDKMessages runs the SDK through a conversation with an agent: a
// plain send, streams, the message history, a block edit seen by the next
// turn's prompt, and deleting the agent.
func TestSDKMessages(t *testing.T) {
	npmInstall(t)
	llmSrv, ctl, k := startWithLLM(t)
	mark := fmt.Sprintf("likes-tea-%d", time.Now().UnixNano())
	nodeTest(t, filepath.Join("sdk", "messages.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL(), "BLOCK_MARK="+mark)

	reqs := llmSrv.Requests()
	if len(reqs) == 0 {
		t.Fatal("kelpie sent the model no request")
	}
	checkLLMRequests(t, reqs, "gpt-4o-mini")
	// The block edit: no prompt before it has the new value, the
	// next turn's (the last request) does, in its system prompt.
	first := -1
	for i, r := range reqs {
		if strings.Contains(r.System, mark) {
			first = i
			break
		}
	}
	if first < 0 {
		t.Fatalf("no system prompt contains the edited block value %q; last system prompt:\n%s", mark, reqs[len(reqs)-1].System)
	}
	if last := reqs[len(reqs)-1]; !strings.Contains(last.System, mark) {
		t.Errorf("the last turn's system prompt lacks the edited block value %q:\n%s", mark, last.System)
	}
	if first != len(reqs)-1 {
		t.Logf("the edited value first appears in request %d of %d", first+1, len(reqs))
	}
	if n := llmSrv.Pending(); n != 0 {
		t.Errorf("%d scripted replies were never asked for", n)
	}
}

// TestSDKMemoryTool has the model edit a memory block with a tool call and
// checks the edit through the SDK and in the next step's prompt.
func TestSDKMemoryTool(t *testing.T) {
	npmInstall(t)
	llmSrv, ctl, k := startWithLLM(t)
	nodeTest(t, filepath.Join("sdk", "memory_tool.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL())

	reqs := llmSrv.Requests()
	checkLLMRequests(t, reqs, "gpt-4o-mini")
	// The step after the memory_replace call sends its result and shows the
	// edited block in the system prompt.
	var after *llmtest.Request
	for i := range reqs {
		for _, m := range reqs[i].Messages {
			if m.Role == "tool" && m.ToolCallID == "call_memory_1" && after == nil {
				after = &reqs[i]
			}
		}
	}
	if after == nil {
		t.Fatalf("no LLM request sends the result of tool call call_memory_1 (%d requests)", len(reqs))
	}
	if !strings.Contains(after.System, "Grace Hopper") {
		t.Errorf("the step after memory_replace does not show the edited block in its system prompt:\n%s", after.System)
	}
	if n := llmSrv.Pending(); n != 0 {
		t.Errorf("%d scripted replies were never asked for", n)
	}
}

// TestSDKArchival runs the SDK through archival memory with embeddings
// from the double: semantic search, shared archives, /v1/passages/search
// and the archival tools.
func TestSDKArchival(t *testing.T) {
	npmInstall(t)
	llmSrv, ctl, k := startWithLLM(t)
	nodeTest(t, filepath.Join("sdk", "archival.test.mjs"), k.URL, "LLM_CONTROL_URL="+ctl.URL())
	checkLLMRequests(t, llmSrv.Requests(), "gpt-4o-mini")
	if reqs, texts := llmSrv.EmbeddingCalls(); reqs == 0 || texts == 0 {
		t.Errorf("kelpie asked the double for no embeddings")
	}
}
