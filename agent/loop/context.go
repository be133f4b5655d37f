package loop

import (
	"fmt"
	"slices"
	"time"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

// The context-window rule. A step sends the model the compiled system prompt
// (instructions, memory blocks, memory metadata), the tool schemas, and as
// much recent history of the conversation as fits:
//
//   - tokens are estimated at 4 bytes each, plus 4 per message and per tool
//     call;
//   - the budget is the model's context window, less the output reserve
//     (max_tokens, at most a quarter of the window), the system prompt and
//     the tool schemas; if that is negative the turn stops with
//     context_window_overflow_in_system_prompt;
//   - history is cut into units never split: a user (or system) message, or
//     an assistant message together with every tool result answering it;
//   - the current turn's units are always sent; earlier units are added
//     newest first while they fit, and the first one that does not fit ends
//     the history (nothing older is sent, so the history has no gaps);
//   - at most maxContextMessages recent messages are considered;
//   - nothing is summarised: messages left out stay in recall memory, and
//     the memory metadata says how many were left out and that
//     conversation_search finds them;
//   - if the provider still rejects the prompt as too long, the step is
//     retried with half the history budget, twice at most.
const (
	maxContextMessages    = 2000
	defaultMaxOutput      = 4096 // tokens reserved for the answer when max_tokens is unset
	metadataSlack         = 64   // tokens allowed for the memory metadata before it is final
	perMessageTokens      = 4
	perToolSchemaOverhead = 8
)

func llmMessageTokens(m llm.Message) int {
	n := perMessageTokens + prompt.EstimateTokens(m.Content)
	for _, tc := range m.ToolCalls {
		n += perMessageTokens + prompt.EstimateTokens(tc.Name) + prompt.EstimateTokens(tc.Arguments)
	}
	return n
}

type builtRequest struct {
	req       llm.Request
	agentType string
	tokens    int // estimated prompt size
}

// contextInputs is what one step's request is made of, read in one
// snapshot.
type contextInputs struct {
	agent    *schema.Agent
	blocks   []*schema.Block
	passages []*schema.Passage
	total    uint64 // the agent's messages, in every conversation
	units    []historyUnit
	scanned  int // messages of the conversation read into units
}

func (r *turnRun) buildRequest(budgetFactor float64) (*builtRequest, error) {
	var out *builtRequest
	err := r.m.cfg.Store.Read(r.ctx, func(txn kv.Txn) error {
		in, err := readContext(txn, r.agentID, r.convID)
		if err != nil {
			return err
		}
		out, err = r.fit(in, budgetFactor)
		return err
	})
	return out, err
}

func readContext(txn kv.Txn, agentID, convID string) (*contextInputs, error) {
	var in contextInputs
	var err error
	if in.agent, err = schema.GetAgent(txn, agentID); err != nil {
		return nil, err
	}
	if in.blocks, err = memory.AgentBlocks(txn, agentID); err != nil {
		return nil, err
	}
	if in.passages, err = memory.Passages(txn, agentID); err != nil {
		return nil, err
	}
	if in.total, err = schema.LastSeq(txn, agentID); err != nil {
		return nil, err
	}
	in.units, in.scanned, err = historyUnits(txn, agentID, convID)
	return &in, err
}

// fit chooses the history that fits and compiles the request.
func (r *turnRun) fit(in *contextInputs, budgetFactor float64) (*builtRequest, error) {
	a := in.agent
	tools := tool.Schemas(a, r.client)
	toolTokens := 0
	for _, t := range tools {
		toolTokens += perToolSchemaOverhead + prompt.EstimateTokens(t.Name) + prompt.EstimateTokens(t.Description) + prompt.EstimateTokens(string(t.Parameters))
	}
	window := a.LLMConfig.ContextWindow
	if window <= 0 {
		window = DefaultContextWindow
	}
	maxOut := defaultMaxOutput
	if a.LLMConfig.MaxTokens != nil && *a.LLMConfig.MaxTokens > 0 {
		maxOut = *a.LLMConfig.MaxTokens
	}
	reserve := min(maxOut, window/4)

	// Choose the history first (the metadata counts what was left out),
	// allowing for the metadata's size with a margin.
	meta := prompt.Meta{ConversationID: r.convID, Recompiled: recompiled(a, in.blocks), Passages: len(in.passages), PassageTags: memory.Tags(in.passages)}
	system := prompt.Compile(a, in.blocks, meta)
	available := window - reserve - (perMessageTokens + prompt.EstimateTokens(system) + metadataSlack) - toolTokens
	if available < 0 {
		return nil, &stepError{letta.StopContextOverflow, fmt.Sprintf(
			"the system prompt and tools take about %d tokens, more than the %d-token context window leaves after reserving %d for the answer",
			prompt.EstimateTokens(system)+toolTokens, window, reserve)}
	}
	chosen, used, included := r.chooseHistory(in.units, int(float64(available)*budgetFactor))
	meta.PreviousMessages = max(int(in.total)-included, 0)
	meta.DroppedMessages = in.scanned - included
	system = prompt.Compile(a, in.blocks, meta)

	req := llm.Request{Model: r.model, Tools: tools, MaxTokens: reserve}
	req.Messages = append(req.Messages, llm.Message{Role: llm.RoleSystem, Content: system})
	for _, msgs := range slices.Backward(chosen) {
		req.Messages = append(req.Messages, msgs...)
	}
	return &builtRequest{req: req, agentType: a.AgentType, tokens: perMessageTokens + prompt.EstimateTokens(system) + toolTokens + used}, nil
}

// DefaultContextWindow is the context window of an agent whose llm_config
// has none, in tokens.
const DefaultContextWindow = 32_768

// recompiled is when the system prompt last changed: the latest update of
// the agent or its blocks.
func recompiled(a *schema.Agent, blocks []*schema.Block) time.Time {
	at := a.UpdatedAt
	for _, b := range blocks {
		if b.UpdatedAt.After(at) {
			at = b.UpdatedAt
		}
	}
	return at
}

// chooseHistory picks units (newest first) while they fit in budget; the
// current turn's always do. It returns them newest first, the tokens they
// take and how many stored messages they hold.
func (r *turnRun) chooseHistory(units []historyUnit, budget int) (chosen [][]llm.Message, used, included int) {
	for _, u := range units {
		msgs := u.llmMessages()
		n := 0
		for _, m := range msgs {
			n += llmMessageTokens(m)
		}
		if !u.current(r.turn.runID) && used+n > budget {
			break
		}
		used += n
		included += len(u.msgs)
		chosen = append(chosen, msgs)
	}
	return chosen, used, included
}

// historyUnit is a piece of history never split: a user or system message,
// or an assistant message with the tool results answering it.
type historyUnit struct{ msgs []*schema.Message }

func (u historyUnit) current(runID string) bool {
	return slices.ContainsFunc(u.msgs, func(m *schema.Message) bool { return m.RunID == runID })
}

func (u historyUnit) llmMessages() []llm.Message {
	lead := u.msgs[0]
	switch lead.Role {
	case schema.RoleUser:
		return []llm.Message{{Role: llm.RoleUser, Content: lead.Text, Images: storedImages(lead.Content)}}
	case schema.RoleSystem:
		return []llm.Message{{Role: llm.RoleSystem, Content: lead.Text}}
	}
	am := llm.Message{Role: llm.RoleAssistant, Content: lead.Text}
	for _, tc := range lead.ToolCalls {
		am.ToolCalls = append(am.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
	}
	if am.Content == "" && len(am.ToolCalls) == 0 {
		return nil // an empty answer: nothing to show the model
	}
	out := []llm.Message{am}
	answered := map[string]bool{}
	for _, m := range u.msgs[1:] {
		answered[m.ToolCallID] = true
		out = append(out, llm.Message{Role: llm.RoleTool, Content: m.Text, ToolCallID: m.ToolCallID})
	}
	for _, tc := range lead.ToolCalls {
		if !answered[tc.ID] {
			// Never stored this way (a call is answered in the commit that
			// records it, or by the repair at the next turn), but a model
			// API rejects an unanswered call, so answer it here too.
			out = append(out, llm.Message{Role: llm.RoleTool, Content: "Error: no result was recorded for this tool call.", ToolCallID: tc.ID})
		}
	}
	return out
}

// historyUnits reads the recent history of a conversation, newest unit
// first. scanned is how many messages of the conversation were read.
func historyUnits(txn kv.Txn, agentID, convID string) (units []historyUnit, scanned int, err error) {
	var results []*schema.Message // tool results waiting for their call, newest first
	err = kv.ScanEach(txn, kv.PrefixRange(message.HistoryOf(agentID, convID)), true, func(p kv.KeyValue) (bool, error) {
		m, err := message.At(txn, agentID, convID, p)
		if err != nil {
			return false, err
		}
		if convID == "" && m.ConversationID != "" {
			return true, nil // another conversation's
		}
		scanned++
		switch m.Role {
		case schema.RoleTool:
			results = append(results, m)
		case schema.RoleAssistant:
			slices.Reverse(results)
			units = append(units, historyUnit{msgs: append([]*schema.Message{m}, results...)})
			results = nil
		default:
			results = nil // results whose call is gone: never sent alone
			units = append(units, historyUnit{msgs: []*schema.Message{m}})
		}
		return scanned < maxContextMessages, nil
	})
	return units, scanned, err
}
