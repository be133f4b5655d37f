package agent

import (
	"context"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/agent/memfs"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// The context window's operations: recompiling a context's system message,
// reading one message. (See package window.)

// recompilePayload is the payload of opRecompile.
type recompilePayload struct {
	ConversationID string `json:"conversation_id,omitempty"`
	// IfChanged recompiles only when the agent's instructions or memory
	// changed (a follow-up of an edit); else always.
	IfChanged bool `json:"if_changed,omitempty"`
	DryRun    bool `json:"dry_run,omitempty"`
}

// Recompile recompiles the system message of an agent's default
// conversation (convID empty) or of one of its conversations from the
// agent's current instructions and memory, stores it in place unless
// dryRun, and returns its text.
func (s *Agents) Recompile(ctx context.Context, agentID, convID string, dryRun bool) (string, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return "", err
	}
	var text string
	err := s.c.invoke(ctx, schema.AgentActor(agentID), opRecompile, recompilePayload{ConversationID: convID, DryRun: dryRun}, &text)
	return text, err
}

// recompileAfterEdit brings an agent's default system message up to date
// after an edit of its memory made outside its actor (a block edited by
// label runs on the block's actor), as Letta rebuilds it after such an
// edit. It is a transaction of its own: if it fails, the edit stands and
// the agent's next turn recompiles the message (see window).
func (s *Agents) recompileAfterEdit(ctx context.Context, agentID string) {
	err := s.c.invoke(WithIdempotencyKey(ctx, ""), schema.AgentActor(agentID), opRecompile, recompilePayload{IfChanged: true}, nil)
	if err != nil {
		s.c.log.WarnContext(ctx, "agent: could not recompile the system message after a memory edit; the next turn will", "agent", agentID, "error", err)
	}
}

func recompile(_ *core, call *actor.Call, a *schema.Agent, p recompilePayload) ([]byte, error) {
	o := window.Owner{Agent: a}
	if p.ConversationID != "" {
		conv, err := schema.GetAgentConversation(call.Txn, a.ID, p.ConversationID)
		if err != nil {
			return nil, err
		}
		o.Conv = conv
	}
	when := window.Always
	if p.IfChanged {
		if o.Context().SystemID == "" {
			return schema.Encode("")
		}
		when = window.IfChanged
	} else if !p.DryRun && o.Context().SystemID == "" {
		// A context without a system message gets one appended.
		if err := needSettled(call.Txn, a.ID); err != nil {
			return nil, err
		}
	}
	m, written, err := window.Refresh(call.Txn, o, call.Now, when, p.DryRun)
	if err != nil {
		return nil, err
	}
	if !p.DryRun && p.ConversationID == "" {
		// The follow-up of an edit made on a block's actor: the edit
		// becomes a commit of the agent's memory repository.
		if _, err := memfs.SyncAgent(call.Txn, a, nil, call.Now, "Update the agent's memory"); err != nil {
			return nil, err
		}
	}
	if written {
		if err := storeOwner(call, o); err != nil {
			return nil, err
		}
	}
	return schema.Encode(m.Text)
}

// needSettled refuses, while tool calls wait for their results, an
// operation that would append to the agent's history anything but those
// results (see loop.Settled).
func needSettled(txn kv.Txn, agentID string) error {
	settled, err := loop.Settled(txn, agentID)
	if err == nil && !settled {
		return letta.Conflictf("the agent is waiting for the results of its tool calls: send them (an approval reply) first")
	}
	return err
}

// storeOwner stores the record a context belongs to.
func storeOwner(call *actor.Call, o window.Owner) error {
	if o.Conv != nil {
		return schema.PutConversation(call.Txn, o.Conv)
	}
	call.SetState(o.Agent)
	return nil
}

// Get returns a stored message as the messages it shows as (Letta's
// retrieve_message: a list).
func (s *Messages) Get(ctx context.Context, messageID string) ([]letta.Message, error) {
	if err := letta.CheckID("message_id", "message", messageID); err != nil {
		return nil, err
	}
	var out []letta.Message
	err := s.c.read(ctx, func(txn kv.Txn) error {
		agentID, seq, err := schema.LocateMessage(txn, messageID)
		if letta.KindOf(err) == letta.KindNotFound {
			return letta.NotFoundf("Message with id %s not found.", messageID)
		}
		if err != nil {
			return err
		}
		m, err := schema.GetMessage(txn, agentID, seq)
		if err == nil {
			out = message.Render(m)
		}
		return err
	})
	return out, err
}

// Context returns the overview of a context's window (Letta's
// ContextWindowOverview): its system message as it would be compiled now,
// cut into its sections, its summary and messages, and the tools, each with
// its estimated tokens (4 bytes a token, the estimate a step's request is
// fitted with).
func (s *Agents) Context(ctx context.Context, agentID, convID string) (*letta.ContextWindowOverview, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if convID != "" {
		if err := letta.CheckID("conversation_id", "conv", convID); err != nil {
			return nil, err
		}
	}
	var out *letta.ContextWindowOverview
	err := s.c.read(ctx, func(txn kv.Txn) error {
		o, err := window.Load(txn, agentID, convID)
		if err != nil {
			return err
		}
		out, err = overview(txn, o, s.c.clock.Now().UTC())
		return err
	})
	return out, err
}

func overview(txn kv.Txn, o window.Owner, now time.Time) (*letta.ContextWindowOverview, error) {
	system, err := window.Compile(txn, o, now)
	if err != nil {
		return nil, err
	}
	summary, err := window.Summary(txn, o)
	if err != nil {
		return nil, err
	}
	msgs, err := window.Messages(txn, o)
	if err != nil {
		return nil, err
	}
	passages, _, err := schema.PassageStats(txn, o.AgentID())
	if err != nil {
		return nil, err
	}
	total, err := schema.LastSeq(txn, o.AgentID())
	if err != nil {
		return nil, err
	}
	a := o.Agent
	sec := prompt.Sections(system)
	ov := &letta.ContextWindowOverview{
		ContextWindowSizeMax: a.LLMConfig.ContextWindow, NumArchivalMemory: passages, NumRecallMemory: int(total),
		SystemPrompt: sec.Instructions, CoreMemory: sec.Memory, ExternalMemorySummary: sec.Metadata,
		FunctionsDefinitions: []letta.OpenAITool{}, Messages: []letta.RawMessage{},
	}
	sysMsg := &schema.Message{ID: o.Context().SystemID, AgentID: a.ID, Role: schema.RoleSystem, Text: system, ConversationID: o.ConvID(), CreatedAt: now}
	ov.Messages = append(ov.Messages, rawMessage(sysMsg))
	if summary != nil {
		ov.SummaryMemory = &summary.Text
		ov.NumTokensSummaryMemory = prompt.EstimateTokens(summary.Text)
		ov.Messages = append(ov.Messages, rawMessage(summary))
	}
	for _, m := range msgs {
		ov.Messages = append(ov.Messages, rawMessage(m))
		ov.NumTokensMessages += loop.MessageTokens(m)
	}
	tools, err := offeredTools(txn, a)
	if err != nil {
		return nil, err
	}
	for _, t := range tool.Schemas(tools, nil) {
		ov.FunctionsDefinitions = append(ov.FunctionsDefinitions, letta.OpenAITool{Type: "function",
			Function: letta.OpenAIFunction{Name: t.Name, Description: t.Description, Parameters: t.Parameters}})
		ov.NumTokensFunctionsDefinitions += loop.ToolTokens(t)
	}
	ov.NumMessages = len(ov.Messages)
	ov.NumTokensSystem = prompt.EstimateTokens(sec.Instructions)
	ov.NumTokensCoreMemory = prompt.EstimateTokens(sec.Memory)
	ov.NumTokensExternalMemorySummary = prompt.EstimateTokens(sec.Metadata)
	ov.ContextWindowSizeCurrent = ov.NumTokensSystem + ov.NumTokensCoreMemory + ov.NumTokensExternalMemorySummary +
		ov.NumTokensSummaryMemory + ov.NumTokensMessages + ov.NumTokensFunctionsDefinitions
	return ov, nil
}

// rawMessage renders a stored message in Letta's own message shape.
func rawMessage(m *schema.Message) letta.RawMessage {
	r := letta.RawMessage{
		ID: m.ID, AgentID: m.AgentID, Role: m.Role, Content: []letta.TextContent{}, Name: m.Name,
		CreatedAt: letta.Timestamp{Time: m.CreatedAt},
	}
	if m.Text != "" {
		r.Content = append(r.Content, letta.TextContent{Type: "text", Text: m.Text})
	}
	for _, tc := range m.ToolCalls {
		var c letta.OpenAIToolCall
		c.ID, c.Type, c.Function.Name, c.Function.Arguments = tc.ID, "function", tc.Name, tc.Arguments
		r.ToolCalls = append(r.ToolCalls, c)
	}
	optional := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	r.ToolCallID, r.StepID, r.RunID = optional(m.ToolCallID), optional(m.StepID), optional(m.RunID)
	r.Otid, r.ConversationID = optional(m.Otid), optional(m.ConversationID)
	return r
}

// ResetMessages empties the context of an agent's default conversation but
// for its system message, recompiled (Letta's reset-messages): the messages
// stay stored and searchable. Kelpie gives agents no initial messages, so
// there are none to add back.
func (s *Agents) ResetMessages(ctx context.Context, agentID string) (*letta.AgentState, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	var st letta.AgentState
	if err := s.c.invoke(ctx, schema.AgentActor(agentID), opResetMessages, struct{}{}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func resetMessages(_ *core, call *actor.Call, a *schema.Agent, _ struct{}) ([]byte, error) {
	if a.Context.SystemID == "" {
		if err := needSettled(call.Txn, a.ID); err != nil {
			return nil, err
		}
	}
	last, err := schema.LastSeq(call.Txn, a.ID)
	if err != nil {
		return nil, err
	}
	if err := schema.EvictContext(call.Txn, a.ID, 0, 0); err != nil {
		return nil, err
	}
	// Emptied, the context is indexed from now on, whenever it was stored.
	a.Context = schema.Context{SystemID: a.Context.SystemID, SystemSeq: a.Context.SystemSeq, Start: last + 1, Indexed: true}
	if _, _, err := window.Refresh(call.Txn, window.Owner{Agent: a}, call.Now, window.Always, false); err != nil {
		return nil, err
	}
	call.SetState(a)
	return renderCommitted(call.Txn, a)
}

// CompactionSettings are a compaction's settings (Letta's): a request's
// fields override the agent's.
type CompactionSettings = loop.CompactionSettings

// CompactResult is what a compaction did (Letta's CompactionResponse).
type CompactResult = loop.CompactResult

// Summarize compacts the context of an agent's default conversation
// (convID empty) or of one of its conversations: its older messages are
// replaced in it by a summary the agent's model writes (see loop.Compact).
// allowEmpty answers a context with nothing to summarise with its current
// state (Letta's /summarize) instead of a 400 (its /compact).
func (s *Agents) Summarize(ctx context.Context, agentID, convID string, settings CompactionSettings, allowEmpty bool) (*CompactResult, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	return s.c.turns.Compact(ctx, agentID, convID, settings, allowEmpty)
}
