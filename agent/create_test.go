package agent_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Spec: a create answers the agent exactly as a read of it finds it, with
// its new and existing blocks in attachment order, though the answer is
// rendered from what the create wrote rather than read back; an update
// answers as a read does too.
func TestWritesAnswerWhatAReadFinds(t *testing.T) {
	svc, err := agent.New(agent.Config{Store: kv.NewDB(kv.NewMemEngine()), Runtime: churn, DefaultModel: "openai/gpt-4o-mini",
		Clock: kelpietest.NewStepClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	label, value := "shared", "one block, two agents"
	shared, err := svc.Blocks.Create(ctx, letta.CreateBlock{Label: &label, Value: &value})
	if err != nil {
		t.Fatal(err)
	}
	// Custom tools named twice (by name and by id) and an identity: the
	// answer lists each once, as a read does.
	var toolIDs []string
	for _, name := range []string{"zeta_tool", "alpha_tool"} {
		src := "def " + name + "():\n    \"\"\"Does nothing.\"\"\"\n    return 'ok'\n"
		tl, err := svc.Tools.Upsert(ctx, letta.ToolCreate{SourceCode: &src,
			JSONSchema: map[string]any{"name": name, "description": "Does nothing.", "parameters": map[string]any{"type": "object", "properties": map[string]any{}}}})
		if err != nil {
			t.Fatal(err)
		}
		toolIDs = append(toolIDs, tl.ID)
	}
	key, who, kind := "ada", "Ada", "user"
	identity, err := svc.Identities.Create(ctx, letta.IdentityRequest{IdentifierKey: &key, Name: &who, IdentityType: &kind})
	if err != nil {
		t.Fatal(err)
	}
	req := createReq("answers", "Ada")
	req.BlockIDs = []string{shared.ID}
	req.Tools = []string{"zeta_tool", "alpha_tool", "send_message"}
	req.ToolIDs = toolIDs
	req.IdentityIDs = []string{identity.ID}
	created, err := svc.Agents.CreateEncoded(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	st, err := created.Decode()
	if err != nil {
		t.Fatal(err)
	}
	read := func() []byte {
		t.Helper()
		got, err := svc.Agents.Get(ctx, st.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		data, err := schema.Encode(got)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if r := read(); !bytes.Equal(created.JSON(), r) {
		t.Errorf("create answered\n%s\na read finds\n%s", created.JSON(), r)
	}
	var labels []string
	for _, b := range st.Memory.Blocks {
		labels = append(labels, b.Label)
	}
	if len(labels) != 3 || labels[0] != "human" || labels[1] != "persona" || labels[2] != "shared" {
		t.Errorf("blocks in the answer: %v, want human, persona, shared", labels)
	}
	if n := len(st.Tools); n < 3 {
		t.Errorf("the answer lists %d tools, want the base tools, send_message and both custom tools", n)
	}

	// The system message stored at creation, compiled from the blocks the
	// create wrote, is what compiling from storage gives (the clock
	// stands still, so both carry the same time).
	sys, err := svc.Messages.Get(ctx, st.MessageIDs[0])
	if err != nil {
		t.Fatal(err)
	}
	recompiled, err := svc.Agents.Recompile(ctx, st.ID, "", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := sys[0].(*letta.SystemMessage).Content; got != recompiled {
		t.Errorf("system message at creation:\n%s\nrecompiled from storage:\n%s", got, recompiled)
	}

	name := "renamed"
	updated, err := svc.Agents.UpdateEncoded(ctx, st.ID, letta.UpdateAgentRequest{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if r := read(); !bytes.Equal(updated.JSON(), r) {
		t.Errorf("update answered\n%s\na read finds\n%s", updated.JSON(), r)
	}
}
