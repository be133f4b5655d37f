package agent

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// memgptSystemPrompt is the system prompt of memgpt_agent and
// memgpt_v2_agent agents created without one: those agents talk to the user
// only through the send_message tool. Kelpie writes its own text.
const memgptSystemPrompt = `<base_instructions>
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

// systemPromptFor is the default system prompt of an agent type.
func systemPromptFor(agentType string) string {
	if isMemGPT(agentType) {
		return memgptSystemPrompt
	}
	return defaultSystemPrompt
}

// isMemGPT reports whether agents of the type answer through send_message.
func isMemGPT(agentType string) bool {
	return agentType == "memgpt_agent" || agentType == "memgpt_v2_agent"
}

// rendersMemory reports whether the agent type sees its memory blocks.
func rendersMemory(agentType string) bool {
	return agentType != "react_agent" && agentType != "workflow_agent"
}

// lineNumbered reports whether blocks are rendered with line numbers: for
// Anthropic models of the agent types whose memory tools edit by line.
func lineNumbered(rec *agentRecord) bool {
	switch rec.AgentType {
	case "sleeptime_agent", "memgpt_v2_agent", "letta_v1_agent":
		return rec.LLMConfig.ModelEndpointType == "anthropic"
	}
	return false
}

// promptMeta is what the memory metadata section reports.
type promptMeta struct {
	conversationID   string // "" for the agent's default conversation
	recompiled       time.Time
	previousMessages int // messages in recall memory but not in the context
	droppedMessages  int // earlier messages of this conversation left out for space
	passages         int
	passageTags      []string
}

// compileSystemPrompt renders the system prompt the model sees: the agent's
// prompt, its memory blocks and the memory metadata (the layout of Letta's
// Memory.compile, written afresh for Kelpie).
func compileSystemPrompt(rec *agentRecord, blocks []attachedBlock, meta promptMeta) string {
	var mem strings.Builder
	if rendersMemory(rec.AgentType) {
		renderBlocks(&mem, blocks, lineNumbered(rec))
	}
	mem.WriteString("\n\n")
	renderMetadata(&mem, rec, meta)
	full := mem.String()
	if strings.Contains(rec.System, "{CORE_MEMORY}") {
		return strings.ReplaceAll(rec.System, "{CORE_MEMORY}", full)
	}
	return rec.System + "\n\n" + full
}

func renderBlocks(b *strings.Builder, blocks []attachedBlock, numbered bool) {
	if len(blocks) == 0 {
		return
	}
	b.WriteString("<memory_blocks>\nThe following memory blocks are currently engaged in your core memory unit:\n\n")
	for i, ab := range blocks {
		blk := ab.block
		label := blk.Label
		if label == "" {
			label = "block"
		}
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "<%s>\n<description>\n%s\n</description>\n<metadata>\n", label, deref(blk.Description))
		if blk.ReadOnly {
			b.WriteString("- read_only=true\n")
		}
		fmt.Fprintf(b, "- chars_current=%d\n- chars_limit=%d\n</metadata>\n", utf8.RuneCountInString(blk.Value), blk.Limit)
		if numbered {
			b.WriteString("<warning>\n# NOTE: Line numbers shown below (with arrows like '1→') are to help during editing. Do NOT include line number prefixes in your memory edit tool calls.\n</warning>\n")
			b.WriteString("<value>\n")
			if blk.Value != "" {
				for n, line := range strings.Split(blk.Value, "\n") {
					fmt.Fprintf(b, "%d→ %s\n", n+1, line)
				}
			}
			b.WriteString("</value>\n")
		} else {
			fmt.Fprintf(b, "<value>\n%s\n</value>\n", blk.Value)
		}
		fmt.Fprintf(b, "</%s>\n", label)
	}
	b.WriteString("\n</memory_blocks>")
}

func renderMetadata(b *strings.Builder, rec *agentRecord, meta promptMeta) {
	loc, err := time.LoadLocation(rec.Timezone)
	if err != nil || rec.Timezone == "" {
		loc = time.UTC
	}
	conv := meta.conversationID
	if conv == "" {
		conv = "default"
	}
	lines := []string{
		"<memory_metadata>",
		"- AGENT_ID: " + rec.ID,
		"- CONVERSATION_ID: " + conv,
		"- System prompt last recompiled: " + meta.recompiled.In(loc).Format("2006-01-02 03:04:05 PM MST-0700"),
		fmt.Sprintf("- %d previous messages between you and the user are stored in recall memory (use tools to access them)", meta.previousMessages),
	}
	if meta.droppedMessages > 0 {
		lines = append(lines, fmt.Sprintf("- %d earlier messages of this conversation did not fit in your context window and are left out of it; search them with conversation_search", meta.droppedMessages))
	}
	if meta.passages > 0 {
		lines = append(lines, fmt.Sprintf("- %d total memories you created are stored in archival memory (use tools to access them)", meta.passages))
	}
	if len(meta.passageTags) > 0 {
		lines = append(lines, "- Available archival memory tags: "+strings.Join(meta.passageTags, ", "))
	}
	lines = append(lines, "</memory_metadata>")
	b.WriteString(strings.Join(lines, "\n"))
}
