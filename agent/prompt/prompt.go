// Package prompt renders what a model sees of an agent: its system prompt
// with its memory blocks and memory metadata (the layout of Letta's
// Memory.compile, written afresh for Kelpie), the default instructions of
// each agent type, and times in the agent's time zone.
//
// Guarantees: rendering is a pure function of its inputs (the same record,
// blocks and metadata give the same text), and it never fails: a missing
// or unknown time zone renders in UTC.
package prompt

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kelpie/kelpie/schema"
)

// defaultSystem is the system prompt of an agent created without one.
// Kelpie writes its own; the agent's memory blocks are rendered after it.
const defaultSystem = `<base_instructions>
You are a helpful agent with a persistent memory. You remember across conversations.
<memory>
Your memory has two parts:
- Memory blocks: labelled sections (each with a description and a value) that are always in your context, below these instructions. Each block has a size limit. Keep them accurate and concise: edit them with your memory tools when you learn something worth keeping.
- External memory: past messages and archival passages that are not in your context; search them with your tools when they may help.
</memory>
Keep working, calling tools as needed, until the task is done or you need the user's input. To hand control back, answer without calling a tool.
</base_instructions>`

// memgptSystem is the system prompt of memgpt_agent and memgpt_v2_agent
// agents created without one: those agents talk to the user only through
// the send_message tool.
const memgptSystem = `<base_instructions>
You are a helpful agent with a persistent memory. You remember across conversations.
<control_flow>
Everything you write outside a tool call is your private thinking: the user never sees it. To say something to the user, call send_message; calling it ends your turn. Call your other tools first when you need them: after each one you get its result and may continue.
</control_flow>
<memory>
Your memory has two parts:
- Memory blocks: labelled sections (each with a description and a value) that are always in your context, below these instructions. Each block has a size limit. Keep them accurate and concise: edit them with your memory tools when you learn something worth keeping.
- External memory: past messages and archival passages that are not in your context; search them with your tools when they may help.
</memory>
</base_instructions>`

// SystemFor is the default system prompt of an agent type.
func SystemFor(agentType string) string {
	if IsMemGPT(agentType) {
		return memgptSystem
	}
	return defaultSystem
}

// IsMemGPT reports whether agents of the type answer through send_message.
func IsMemGPT(agentType string) bool {
	return agentType == "memgpt_agent" || agentType == "memgpt_v2_agent"
}

// rendersMemory reports whether the agent type sees its memory blocks.
func rendersMemory(agentType string) bool {
	return agentType != "react_agent" && agentType != "workflow_agent"
}

// lineNumbered reports whether blocks are rendered with line numbers: for
// Anthropic models of the agent types whose memory tools edit by line.
func lineNumbered(a *schema.Agent) bool {
	switch a.AgentType {
	case "sleeptime_agent", "memgpt_v2_agent", "letta_v1_agent":
		return a.LLMConfig.ModelEndpointType == "anthropic"
	}
	return false
}

// Meta is what the memory metadata section reports.
type Meta struct {
	ConversationID   string // "" for the agent's default conversation
	Recompiled       time.Time
	PreviousMessages int // messages in recall memory but not in the context
	Passages         int
	PassageTags      []string
	// ToolRules is the <tool_usage_rules> section stating the agent's
	// tool rules ("" for none), shown after its memory as in Letta.
	ToolRules string
	// Directories are the folders attached to the agent; nil for none.
	Directories *Directories
}

// Compile renders the system prompt the model sees: the agent's prompt,
// its memory blocks (in attachment order) and the memory metadata.
func Compile(a *schema.Agent, blocks []*schema.Block, meta Meta) string {
	return compile(a, blocks, meta, true)
}

// CompileMemory is Compile with an empty memory metadata section: all
// that SameMemory compares of it, for less than rendering the metadata
// (every turn's start checks its system message so).
func CompileMemory(a *schema.Agent, blocks []*schema.Block, meta Meta) string {
	return compile(a, blocks, meta, false)
}

// compile is Compile; without metadata, its section is left empty.
func compile(a *schema.Agent, blocks []*schema.Block, meta Meta, metadata bool) string {
	var mem strings.Builder
	mem.Grow(compiledSize(a, blocks, meta))
	// The usual prompt has no placeholder: it is written first, so that
	// the prompt is built in one buffer and not copied again.
	placeholder := strings.Contains(a.System, "{CORE_MEMORY}")
	if !placeholder {
		mem.WriteString(a.System)
		mem.WriteString("\n\n")
	}
	if rendersMemory(a.AgentType) {
		renderBlocks(&mem, blocks, lineNumbered(a))
	}
	if meta.ToolRules != "" {
		mem.WriteString("\n\n" + meta.ToolRules)
	}
	renderDirectories(&mem, meta.Directories, !rendersMemory(a.AgentType))
	mem.WriteString("\n\n")
	if metadata {
		renderMetadata(&mem, a, meta)
	} else {
		mem.WriteString(metadataOpen + metadataClose)
	}
	if placeholder {
		return strings.ReplaceAll(a.System, "{CORE_MEMORY}", mem.String())
	}
	return mem.String()
}

// compiledSize is about the size of the prompt Compile renders (a little
// more, as a rule): the lengths of its variable parts and a margin for the
// fixed text around them.
func compiledSize(a *schema.Agent, blocks []*schema.Block, meta Meta) int {
	const fixed, perBlock = 512, 256
	n := fixed + len(a.System) + len(meta.ToolRules)
	for _, b := range blocks {
		n += perBlock + 2*len(b.Label) + len(b.Value)
		if b.Description != nil {
			n += len(*b.Description)
		}
	}
	return n
}

func renderBlocks(b *strings.Builder, blocks []*schema.Block, numbered bool) {
	if len(blocks) == 0 {
		return
	}
	b.WriteString("<memory_blocks>\nThe following memory blocks are currently engaged in your core memory unit:\n\n")
	for i, blk := range blocks {
		label := blk.Label
		if label == "" {
			label = "block"
		}
		if i > 0 {
			b.WriteString("\n")
		}
		description := ""
		if blk.Description != nil {
			description = *blk.Description
		}
		// Written piece by piece, not with fmt: every agent created and
		// every turn compiles its blocks.
		writeAll(b, "<", label, ">\n<description>\n", description, "\n</description>\n<metadata>\n")
		if blk.ReadOnly {
			b.WriteString("- read_only=true\n")
		}
		writeAll(b, "- chars_current=", strconv.Itoa(utf8.RuneCountInString(blk.Value)),
			"\n- chars_limit=", strconv.Itoa(blk.Limit), "\n</metadata>\n")
		renderValue(b, blk.Value, numbered)
		writeAll(b, "</", label, ">\n")
	}
	b.WriteString("\n</memory_blocks>")
}

func renderValue(b *strings.Builder, value string, numbered bool) {
	if !numbered {
		writeAll(b, "<value>\n", value, "\n</value>\n")
		return
	}
	b.WriteString("<warning>\n# NOTE: Line numbers shown below (with arrows like '1→') are to help during editing. Do NOT include line number prefixes in your memory edit tool calls.\n</warning>\n")
	b.WriteString("<value>\n")
	if value != "" {
		for n, line := range strings.Split(value, "\n") {
			fmt.Fprintf(b, "%d→ %s\n", n+1, line)
		}
	}
	b.WriteString("</value>\n")
}

func writeAll(b *strings.Builder, parts ...string) {
	for _, p := range parts {
		b.WriteString(p)
	}
}

func renderMetadata(b *strings.Builder, a *schema.Agent, meta Meta) {
	conv := meta.ConversationID
	if conv == "" {
		conv = "default"
	}
	lines := []string{
		metadataOpen,
		"- AGENT_ID: " + a.ID,
		"- CONVERSATION_ID: " + conv,
		"- System prompt last recompiled: " + Clock(meta.Recompiled, a.Timezone),
		fmt.Sprintf("- %d previous messages between you and the user are stored in recall memory (use tools to access them)", meta.PreviousMessages),
	}
	if meta.Passages > 0 {
		lines = append(lines, fmt.Sprintf("- %d total memories you created are stored in archival memory (use tools to access them)", meta.Passages))
	}
	if len(meta.PassageTags) > 0 {
		lines = append(lines, "- Available archival memory tags: "+strings.Join(meta.PassageTags, ", "))
	}
	lines = append(lines, metadataClose)
	b.WriteString(strings.Join(lines, "\n"))
}

// Clock shows t to a model, in the time zone named tz (UTC when tz is
// empty or unknown).
func Clock(t time.Time, tz string) string {
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" {
		loc = time.UTC
	}
	return t.In(loc).Format("2006-01-02 03:04:05 PM MST-0700")
}

// EstimateTokens estimates the tokens of s: 4 bytes each.
//
// It takes bytes as they are (a tool's JSON schema, counted at every step):
// converting them to a string would copy them.
func EstimateTokens[T ~string | ~[]byte](s T) int { return (len(s) + 3) / 4 }

// SameMemory reports whether two compiled system prompts show the same
// instructions and memory: they differ at most in their memory metadata
// (counts and times that change with every message, and that alone do not
// call for a recompile, as in Letta).
func SameMemory(a, b string) bool {
	a1, a2 := aroundMetadata(a)
	b1, b2 := aroundMetadata(b)
	return equalJoined(a1, a2, b1, b2)
}

const (
	metadataOpen  = "<memory_metadata>"
	metadataClose = "</memory_metadata>"
)

// aroundMetadata returns what comes before and after s's memory metadata
// section (s and "" when it has none).
func aroundMetadata(s string) (before, after string) {
	i := strings.Index(s, metadataOpen)
	j := strings.Index(s, metadataClose)
	if i < 0 || j < i {
		return s, ""
	}
	return s[:i], s[j+len(metadataClose):]
}

// equalJoined reports whether a1+a2 == b1+b2, without joining them: a
// prompt is compared at every turn's start.
func equalJoined(a1, a2, b1, b2 string) bool {
	if len(a1)+len(a2) != len(b1)+len(b2) {
		return false
	}
	if len(a1) > len(b1) {
		a1, a2, b1, b2 = b1, b2, a1, a2
	}
	n := len(b1) - len(a1) // b1 is a1, then the first n bytes of a2
	return b1[:len(a1)] == a1 && b1[len(a1):] == a2[:n] && a2[n:] == b2
}

// Parts are the sections of a compiled system prompt, each with its tags.
type Parts struct {
	Instructions string // the base instructions: the agent's own prompt
	Memory       string // <memory_blocks>...</memory_blocks>
	Metadata     string // <memory_metadata>...</memory_metadata>
}

// Sections cuts a compiled system prompt into its sections: the
// instructions are the <base_instructions> element when there is one, else
// what comes before the first section (Letta's reading).
func Sections(s string) Parts {
	element := func(tag string) string {
		i := strings.Index(s, "<"+tag+">")
		j := strings.Index(s, "</"+tag+">")
		if i < 0 || j < i {
			return ""
		}
		return s[i : j+len(tag)+3]
	}
	p := Parts{Instructions: element("base_instructions"), Memory: element("memory_blocks"), Metadata: element("memory_metadata")}
	if p.Instructions == "" {
		end := len(s)
		for _, tag := range []string{"<memory_blocks>", "<tool_usage_rules>", "<memory_metadata>"} {
			if i := strings.Index(s, tag); i >= 0 {
				end = min(end, i)
			}
		}
		p.Instructions = strings.TrimSpace(s[:end])
	}
	return p
}
