package prompt

import (
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Spec: the system prompt is the agent's instructions, then its blocks in
// order (label, description, size and limit, value), then the memory
// metadata, exactly in this layout.
func TestCompile(t *testing.T) {
	desc := "What I know of the user."
	a := &schema.Agent{ID: "agent-1", System: "Be brief.", AgentType: "letta_v1_agent", Timezone: "UTC"}
	blocks := []*schema.Block{
		{Block: letta.Block{Label: "human", Value: "Ada", Limit: 100, Description: &desc}},
		{Block: letta.Block{Label: "persona", Value: "Kelp", Limit: 50, ReadOnly: true}},
	}
	at := time.Date(2025, 5, 1, 15, 4, 5, 0, time.UTC)
	got := Compile(a, blocks, Meta{Recompiled: at, PreviousMessages: 3})
	want := "Be brief.\n\n<memory_blocks>\nThe following memory blocks are currently engaged in your core memory unit:\n\n" +
		"<human>\n<description>\nWhat I know of the user.\n</description>\n<metadata>\n- chars_current=3\n- chars_limit=100\n</metadata>\n<value>\nAda\n</value>\n</human>\n" +
		"\n<persona>\n<description>\n\n</description>\n<metadata>\n- read_only=true\n- chars_current=4\n- chars_limit=50\n</metadata>\n<value>\nKelp\n</value>\n</persona>\n" +
		"\n</memory_blocks>\n\n<memory_metadata>\n- AGENT_ID: agent-1\n- CONVERSATION_ID: default\n" +
		"- System prompt last recompiled: 2025-05-01 03:04:05 PM UTC+0000\n" +
		"- 3 previous messages between you and the user are stored in recall memory (use tools to access them)\n</memory_metadata>"
	if got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
	// No blocks: no wrapper. Anthropic letta_v1 agents get line numbers.
	if got := Compile(a, nil, Meta{Recompiled: at}); !strings.HasPrefix(got, "Be brief.\n\n\n\n<memory_metadata>") {
		t.Errorf("no blocks: %q", got)
	}
	a.LLMConfig.ModelEndpointType = "anthropic"
	blocks[0].Value = "a\nb"
	if got := Compile(a, blocks[:1], Meta{Recompiled: at}); !strings.Contains(got, "</warning>\n<value>\n1→ a\n2→ b\n</value>") {
		t.Errorf("line numbers: %q", got)
	}
}

// Spec: {CORE_MEMORY} in the instructions is where memory goes.
func TestCompileCoreMemoryPlaceholder(t *testing.T) {
	a := &schema.Agent{ID: "agent-1", System: "Before.\n{CORE_MEMORY}\nAfter.", AgentType: "letta_v1_agent"}
	got := Compile(a, nil, Meta{})
	if !strings.HasPrefix(got, "Before.\n\n\n<memory_metadata>") || !strings.HasSuffix(got, "</memory_metadata>\nAfter.") {
		t.Errorf("placeholder: %q", got)
	}
}

// Spec: a bad time zone shows times in UTC rather than failing.
func TestClockUnknownZone(t *testing.T) {
	at := time.Date(2025, 5, 1, 15, 4, 5, 0, time.UTC)
	if got := Clock(at, "Mars/Olympus"); got != "2025-05-01 03:04:05 PM UTC+0000" {
		t.Errorf("Clock = %q", got)
	}
	if got := Clock(at, "Europe/Paris"); got != "2025-05-01 05:04:05 PM CEST+0200" {
		t.Errorf("Clock = %q", got)
	}
}

// SameMemory tells a compiled prompt from one with other memory, whatever
// their metadata, and CompileMemory compares as Compile does; the halves
// around the metadata are compared as if joined.
func TestSameMemory(t *testing.T) {
	a := &schema.Agent{ID: "agent-1", System: "Be brief.", AgentType: "letta_v1_agent", Timezone: "UTC"}
	blocks := []*schema.Block{{Block: letta.Block{Label: "human", Value: "Ada", Limit: 100}}}
	stored := Compile(a, blocks, Meta{Recompiled: time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), PreviousMessages: 7, Passages: 2})
	for _, c := range []struct {
		name string
		a    *schema.Agent
		want bool
	}{
		{"same", a, true},
		{"placeholder", &schema.Agent{ID: "agent-1", System: "Be {CORE_MEMORY} brief.", AgentType: "letta_v1_agent"}, false},
	} {
		for _, compile := range []func(*schema.Agent, []*schema.Block, Meta) string{Compile, CompileMemory} {
			if got := SameMemory(stored, compile(c.a, blocks, Meta{})); got != c.want {
				t.Errorf("%s: SameMemory = %v, want %v", c.name, got, c.want)
			}
		}
	}
	edited := []*schema.Block{{Block: letta.Block{Label: "human", Value: "Bob", Limit: 100}}}
	if SameMemory(stored, CompileMemory(a, edited, Meta{})) {
		t.Error("an edited block compares as the same memory")
	}
	placeholder := &schema.Agent{ID: "agent-1", System: "Be {CORE_MEMORY} brief.", AgentType: "letta_v1_agent"}
	if !SameMemory(Compile(placeholder, blocks, Meta{PreviousMessages: 3}), CompileMemory(placeholder, blocks, Meta{})) {
		t.Error("a prompt with a placeholder differs from itself")
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"x<memory_metadata>1</memory_metadata>yz", "xy<memory_metadata>2</memory_metadata>z", true},
		{"<memory_metadata>1</memory_metadata>xyz", "xyz<memory_metadata></memory_metadata>", true},
		{"x<memory_metadata>1</memory_metadata>yz", "xy<memory_metadata>2</memory_metadata>", false},
		{"xyz", "xyz", true},
		{"xyz", "xzy", false},
	} {
		if got := SameMemory(c.a, c.b); got != c.want {
			t.Errorf("SameMemory(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
