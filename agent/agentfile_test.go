package agent_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// customTool stores a custom tool "shout" (schema given, so no runner is
// needed) and returns it.
func (e *env) customTool() *letta.Tool {
	e.t.Helper()
	src := "def shout(text: str) -> str:\n    \"\"\"Shout.\"\"\"\n    return text.upper()\n"
	js := map[string]any{"name": "shout", "description": "Shout.", "parameters": map[string]any{
		"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}, "required": []any{"text"}}}
	tl, err := e.svc.Tools.Upsert(e.ctx, letta.ToolCreate{SourceCode: &src, JSONSchema: js})
	if err != nil {
		e.t.Fatal(err)
	}
	return tl
}

// roundTrip encodes a file as JSON and decodes it, as a client saving and
// uploading it would.
func roundTrip(t *testing.T, f *letta.AgentFile) *letta.AgentFile {
	t.Helper()
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var out letta.AgentFile
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// Spec: an exported agent imported (into the same server or another) is
// the same agent under new ids: its instructions, model, blocks (values,
// limits), tools (built-in and custom with their source) and its context
// (the same messages in the same order, tool calls next to their results),
// with "_copy" appended to its name as Letta does.
func TestAgentFileRoundTrip(t *testing.T) {
	e := newEnv(t)
	tl := e.customTool()
	req := createReq("Exporter", "The user is Ada.")
	req.ToolIDs = []string{tl.ID}
	req.Secrets = map[string]string{"API_KEY": "s3cret"}
	a := e.agent(req)
	e.llm.then(call("c1", "memory_insert", map[string]any{"label": "human", "new_str": "Likes tea."}), reply("Noted."))
	withNote := userMsg("I like tea.")
	withNote.Messages = append([]letta.MessageCreate{{Role: "system", Content: json.RawMessage(`"A system note."`)}}, withNote.Messages...)
	e.send(a.ID, withNote)

	f, err := e.svc.Agents.Export(e.ctx, a.ID, agent.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Agents) != 1 || f.Agents[0].ID != "agent-0" || len(f.Blocks) != 2 || f.Blocks[0].ID != "block-0" {
		t.Fatalf("export: %d agents, %d blocks: %+v", len(f.Agents), len(f.Blocks), f.Agents)
	}
	if got := f.Agents[0].Secrets["API_KEY"]; got != "" {
		t.Errorf("a secret's value was exported: %q", got)
	}
	fa := f.Agents[0]
	if len(fa.Messages) != 6 || fa.Messages[0].Role != "system" || fa.Messages[1].Role != "system" ||
		!slices.Equal(fa.InContextMessageIDs, []string{"message-0", "message-1", "message-2", "message-3", "message-4", "message-5"}) {
		t.Fatalf("exported messages: %s", jsonText(fa.Messages))
	}

	ids, err := e.svc.Agents.Import(e.ctx, roundTrip(t, f), agent.ImportOptions{AppendCopySuffix: true, OverrideExistingTools: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] == a.ID {
		t.Fatalf("imported ids %v", ids)
	}
	b, err := e.svc.Agents.Get(e.ctx, ids[0], true)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := e.svc.Agents.Get(e.ctx, a.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "Exporter_copy" || b.System != orig.System || b.LLMConfig.Model != orig.LLMConfig.Model {
		t.Errorf("imported agent %q, system equal %v, model %q", b.Name, b.System == orig.System, b.LLMConfig.Model)
	}
	for i := range orig.Blocks {
		ob, nb := orig.Blocks[i], b.Blocks[i]
		if ob.Label != nb.Label || ob.Value != nb.Value || ob.Limit != nb.Limit || ob.ID == nb.ID {
			t.Errorf("block %d: %+v imported as %+v", i, ob, nb)
		}
	}
	if got, want := toolNames(b.Tools), toolNames(orig.Tools); !slices.Equal(got, want) {
		t.Errorf("imported tools %v, want %v", got, want)
	}
	om, err := e.svc.Messages.List(e.ctx, a.ID, agent.MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	nm, err := e.svc.Messages.List(e.ctx, ids[0], agent.MessageFilter{}, letta.Page{Order: letta.Asc, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	// The system messages differ: each names its own agent.
	if got, want := shapes(nm[1:]), shapes(om[1:]); !slices.Equal(got, want) {
		t.Errorf("imported history\n%v\nwant\n%v", got, want)
	}
	if len(b.MessageIDs) != len(orig.MessageIDs) {
		t.Errorf("imported context holds %d messages, the original %d", len(b.MessageIDs), len(orig.MessageIDs))
	}
	e.checkStore()

	// The imported agent works: a turn sees the imported history.
	e.llm.then(reply("Still tea."))
	e.send(ids[0], userMsg("What do I like?"))
	last := e.llm.request(e.llm.calls() - 1)
	if n := len(last.Messages); n != 7 || last.Messages[1].Content != "A system note." {
		t.Errorf("the imported agent's next turn sent %d messages, want system + 5 imported (the system note first) + 1 new: %+v", n, last.Messages)
	}
}

func toolNames(tools []any) []string {
	var out []string
	for _, t := range tools {
		data, _ := json.Marshal(t)
		var lt letta.Tool
		_ = json.Unmarshal(data, &lt)
		out = append(out, lt.Name+"/"+lt.ToolType)
	}
	slices.Sort(out)
	return out
}

// shapes are the messages' types and texts, without ids or times.
func shapes(ms []letta.Message) []string {
	var out []string
	for _, m := range ms {
		data, _ := json.Marshal(m)
		var v map[string]any
		_ = json.Unmarshal(data, &v)
		delete(v, "id")
		delete(v, "date")
		delete(v, "otid")
		delete(v, "run_id")
		delete(v, "step_id")
		delete(v, "seq_id")
		s, _ := json.Marshal(v)
		out = append(out, string(s))
	}
	return out
}

// Spec: an import is one transaction. A commit that fails leaves nothing
// (no agent, block, tool or message); a commit applied whose answer was
// lost leaves the whole import, never a part; a file the server cannot
// import whole is refused before anything is written.
func TestAgentFileImportAllOrNothing(t *testing.T) {
	e := newEnv(t)
	tl := e.customTool()
	req := createReq("Source", "The user is Ada.")
	req.ToolIDs = []string{tl.ID}
	a := e.agent(req)
	e.send(a.ID, userMsg("hello"))
	f, err := e.svc.Agents.Export(e.ctx, a.ID, agent.ExportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Tools.Delete(e.ctx, tl.ID); err != nil {
		t.Fatal(err)
	}
	counts := func() [3]int {
		na, _ := e.svc.Agents.Count(e.ctx, agent.AgentFilter{})
		nb, _ := e.svc.Blocks.Count(e.ctx)
		nt, _ := e.svc.Tools.Count(e.ctx, agent.ToolFilter{})
		return [3]int{na, nb, nt}
	}
	before := counts()

	e.eng.arm(1) // the import's commit is dropped
	if _, err := e.svc.Agents.Import(e.ctx, roundTrip(t, f), agent.ImportOptions{}); err == nil {
		t.Fatal("an import whose commit failed succeeded")
	}
	if got := counts(); got != before {
		t.Fatalf("a failed import left agents/blocks/tools %v, before %v", got, before)
	}
	e.checkStore()

	// A file naming a tool this server lacks is refused whole.
	bad := roundTrip(t, f)
	bad.Tools = append(bad.Tools, letta.Tool{ID: "tool-9", Name: "send_carrier_pigeon", ToolType: "letta_builtin"})
	bad.Agents[0].ToolIDs = append(bad.Agents[0].ToolIDs, "tool-9")
	_, err = e.svc.Agents.Import(e.ctx, bad, agent.ImportOptions{})
	if letta.KindOf(err) != letta.KindInvalid {
		t.Fatalf("import with an unknown built-in tool: %v", err)
	}
	if got := counts(); got != before {
		t.Fatalf("a refused import left agents/blocks/tools %v, before %v", got, before)
	}

	e.eng.arm(2) // applied, answer lost: the retry's outcome is all of it
	_, err = e.svc.Agents.Import(e.ctx, roundTrip(t, f), agent.ImportOptions{})
	got := counts()
	if err == nil {
		t.Fatal("the lost answer was not reported")
	}
	if got != [3]int{before[0] + 1, before[1] + 2, before[2] + 1} {
		t.Fatalf("an import applied with its answer lost left %v, before %v: not the whole import", got, before)
	}
	e.checkStore()
}
