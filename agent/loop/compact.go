package loop

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/window"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/llm"
	"github.com/kelpie/kelpie/schema"
)

// Compaction: the older history of a context is replaced in it by a
// summary the model writes, as Letta's summarizer does. The model is asked
// outside the actor; the summary is then committed in one invocation
// (OpCompact) that appends it as a summary message, moves the context's
// start past the messages it replaces (they stay stored and searchable) and
// recompiles the context's system message. That invocation checks that the
// context is still the one summarised, so a compaction never loses a
// message, and a failure anywhere before it (the model's, a crash) leaves
// the context exactly as it was.
//
// What is summarised (Letta's modes): "all" summarises every message of
// the context; "sliding_window" (the default) evicts the oldest units
// (never splitting a tool call from its results) from a share of the
// messages up, ten points at a time from sliding_window_percentage + 10%,
// until what is left fits in (1 - sliding_window_percentage) of the
// context window, and falls back to "all" when no such cut exists. The
// "self_compact_*" modes are served as their plain counterparts. The
// summary is clipped to clip_chars.
const (
	OpCompact = "compact"

	defaultSlidingWindowShare = 0.30
	defaultSummaryClipChars   = 50_000
	minTranscriptToolChars    = 2_000 // of a tool result, in the summariser's transcript
)

// CompactionSettings are the settings of a compaction (Letta's
// CompactionSettings): the agent's, with a request's fields over them.
type CompactionSettings struct {
	Model                   *string  `json:"model,omitempty"`
	Prompt                  *string  `json:"prompt,omitempty"`
	ClipChars               *int     `json:"clip_chars,omitempty"`
	Mode                    *string  `json:"mode,omitempty"`
	SlidingWindowPercentage *float64 `json:"sliding_window_percentage,omitempty"`
}

// over returns s with the fields o sets.
func (s CompactionSettings) over(o CompactionSettings) CompactionSettings {
	if o.Model != nil {
		s.Model = o.Model
	}
	if o.Prompt != nil {
		s.Prompt = o.Prompt
	}
	if o.ClipChars != nil {
		s.ClipChars = o.ClipChars
	}
	if o.Mode != nil {
		s.Mode = o.Mode
	}
	if o.SlidingWindowPercentage != nil {
		s.SlidingWindowPercentage = o.SlidingWindowPercentage
	}
	return s
}

func (s CompactionSettings) check() error {
	if s.Mode != nil {
		switch *s.Mode {
		case "all", "sliding_window", "self_compact_all", "self_compact_sliding_window":
		default:
			return letta.Invalidf("compaction_settings.mode %q: want all, sliding_window, self_compact_all or self_compact_sliding_window", letta.Clip(*s.Mode))
		}
	}
	if p := s.SlidingWindowPercentage; p != nil && (*p < 0 || *p > 1 || math.IsNaN(*p)) {
		return letta.Invalidf("compaction_settings.sliding_window_percentage %v: want 0 to 1", *p)
	}
	if c := s.ClipChars; c != nil && *c < 1 {
		return letta.Invalidf("compaction_settings.clip_chars %d: want at least 1", *c)
	}
	return nil
}

func (s CompactionSettings) all() bool { return s.Mode != nil && strings.HasSuffix(*s.Mode, "all") }

func (s CompactionSettings) share() float64 {
	if s.SlidingWindowPercentage != nil {
		return *s.SlidingWindowPercentage
	}
	return defaultSlidingWindowShare
}

// agentSettings reads an agent's stored compaction settings; settings
// that do not parse as Letta's are taken as none.
func agentSettings(a *schema.Agent) CompactionSettings {
	var s CompactionSettings
	if len(a.CompactionSettings) > 0 && json.Unmarshal(a.CompactionSettings, &s) == nil && s.check() == nil {
		return s
	}
	return CompactionSettings{}
}

// compaction is one compaction planned from a snapshot of a context.
type compaction struct {
	agent    *schema.Agent
	convID   string
	start    uint64 // the context's start as read
	prior    *schema.Message
	context  []*schema.Message // its messages after the system message and summary
	evicted  []*schema.Message // the oldest of them, to summarise
	cut      uint64            // the new start: the first message kept
	before   int               // in-context messages, the system message and summary included
	settings CompactionSettings
}

// planCompaction reads a context and chooses what to summarise; nil when
// there is nothing. keepFrom, if not 0, is a message that must stay in
// context (the first of the current turn), and so must all after it.
func planCompaction(txn kv.Txn, agentID, convID string, req CompactionSettings, keepFrom uint64) (*compaction, error) {
	o, err := window.Load(txn, agentID, convID)
	if err != nil {
		return nil, err
	}
	c := &compaction{agent: o.Agent, convID: convID, start: o.Context().Start, settings: agentSettings(o.Agent).over(req)}
	if err := c.settings.check(); err != nil {
		return nil, err
	}
	if c.prior, err = window.Summary(txn, o); err != nil {
		return nil, err
	}
	if c.context, err = window.Messages(txn, o); err != nil {
		return nil, err
	}
	c.before = len(c.context) + 1
	if c.prior != nil {
		c.before++
	}
	sys, err := window.System(txn, o)
	if err != nil {
		return nil, err
	}
	sysTokens := 0
	if sys != nil {
		sysTokens = prompt.EstimateTokens(sys.Text)
	}
	n := c.cutAt(keepFrom, sysTokens)
	if n == 0 {
		return nil, nil
	}
	c.evicted = c.context[:n]
	c.cut = c.context[n-1].Seq + 1
	if n < len(c.context) {
		c.cut = c.context[n].Seq
	}
	return c, nil
}

// cutAt is how many of the oldest messages to evict.
func (c *compaction) cutAt(keepFrom uint64, sysTokens int) int {
	bounds := unitStarts(c.context) // indexes where a unit starts, and len
	limit := len(c.context)
	if keepFrom != 0 {
		for i, m := range c.context {
			if m.Seq >= keepFrom {
				limit = i
				break
			}
		}
	}
	allowed := func(i int) bool { return i <= limit }
	if !c.settings.all() {
		share := c.settings.share()
		goal := (1 - share) * float64(contextWindowOf(c.agent))
		for evict := share + 0.10; evict < 1.0; evict += 0.10 {
			target := int(math.Round(evict * float64(len(c.context))))
			cut := 0
			for _, b := range bounds {
				if b <= target && allowed(b) && b < len(c.context) {
					cut = b
				}
			}
			if cut == 0 {
				continue
			}
			kept := sysTokens
			for _, m := range c.context[cut:] {
				kept += MessageTokens(m)
			}
			if float64(kept) < goal {
				return cut
			}
		}
	}
	// "all", or no cut of the sliding window fits: everything allowed.
	cut := 0
	for _, b := range bounds {
		if allowed(b) {
			cut = b
		}
	}
	return cut
}

// unitStarts returns the indexes of msgs at which a unit (see historyUnit)
// starts, then len(msgs): a cut at one never parts a call from its results.
func unitStarts(msgs []*schema.Message) []int {
	var out []int
	for i, m := range msgs {
		if m.Role != schema.RoleTool {
			out = append(out, i)
		}
	}
	return append(out, len(msgs))
}

func contextWindowOf(a *schema.Agent) int {
	if a.LLMConfig.ContextWindow > 0 {
		return a.LLMConfig.ContextWindow
	}
	return DefaultContextWindow
}

// summaryPrompt instructs the summariser (Kelpie's own words).
const summaryPrompt = `You write the memory of an AI agent. Below is the earlier part of a conversation between the agent and a user (with the agent's tool calls and their results), which is about to leave the agent's context window. Write a summary the agent will read instead of those messages, so that it can carry on as if it still had them: what the user asked for and told it, what was decided and done, facts and results that still matter, and what is still open. If the transcript starts with an earlier summary, fold it in. Be concise and concrete; write only the summary.`

// transcript renders the messages to summarise as text.
func (c *compaction) transcript() string {
	var b strings.Builder
	if c.prior != nil {
		fmt.Fprintf(&b, "[earlier summary]\n%s\n\n", c.prior.Text)
	}
	for _, m := range c.evicted {
		switch m.Role {
		case schema.RoleTool:
			text := m.Text
			if len(text) > minTranscriptToolChars {
				text = text[:minTranscriptToolChars] + " [...]"
			}
			fmt.Fprintf(&b, "[tool result of %s]\n%s\n\n", m.ToolName, text)
		case schema.RoleAssistant:
			if m.Text != "" {
				fmt.Fprintf(&b, "[assistant]\n%s\n", m.Text)
			}
			for _, tc := range m.ToolCalls {
				fmt.Fprintf(&b, "[assistant calls %s] %s\n", tc.Name, tc.Arguments)
			}
			b.WriteString("\n")
		default:
			fmt.Fprintf(&b, "[%s]\n%s\n\n", m.Role, m.Text)
		}
	}
	return b.String()
}

// summarise asks the model for the summary.
func (c *compaction) summarise(ctx context.Context, p llm.Provider, model string) (string, error) {
	system := summaryPrompt
	if c.settings.Prompt != nil && *c.settings.Prompt != "" {
		system = *c.settings.Prompt
	}
	req := llm.Request{Model: model, Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: system},
		{Role: llm.RoleUser, Content: c.transcript()},
	}}
	resp, err := p.Complete(ctx, req, nil)
	if err != nil {
		return "", err
	}
	summary := strings.TrimSpace(resp.Content)
	if summary == "" {
		return "", fmt.Errorf("the model answered the summary request with no text")
	}
	clip := defaultSummaryClipChars
	if c.settings.ClipChars != nil {
		clip = *c.settings.ClipChars
	}
	if r := []rune(summary); len(r) > clip {
		summary = string(r[:clip]) + "... [summary clipped]"
	}
	return summary, nil
}

// summaryText is the summary message as the model will read it.
func summaryText(evicted int, summary string) string {
	return fmt.Sprintf("Note: %d earlier messages of this conversation are no longer in your context window; they stay in recall memory, where conversation_search finds them. Their summary:\n%s", evicted, summary)
}

// CompactPayload is the payload of OpCompact: a summary to commit, and the
// context as it was read when it was made.
type CompactPayload struct {
	ConversationID string `json:"conversation_id,omitempty"`
	// RunID is the turn compacting its context; empty for a client's
	// request.
	RunID     string `json:"run_id,omitempty"`
	SummaryID string `json:"summary_id"`
	Text      string `json:"text"`
	// Start and PriorSummaryID are the context's as read: the commit is
	// refused if either changed since.
	Start          uint64 `json:"start"`
	PriorSummaryID string `json:"prior_summary_id,omitempty"`
	// Cut is the new start: the first message kept in context.
	Cut uint64 `json:"cut"`
}

// Compact commits a compaction (see CompactPayload) and answers with the
// context's new message count.
func Compact(call *actor.Call, a *schema.Agent, p CompactPayload) ([]byte, error) {
	txn := call.Txn
	o := window.Owner{Agent: a}
	if p.ConversationID != "" {
		conv, err := schema.GetAgentConversation(txn, a.ID, p.ConversationID)
		if err != nil {
			return nil, err
		}
		o.Conv = conv
	}
	ctx := o.Context()
	if ctx.Start != p.Start || ctx.SummaryID != p.PriorSummaryID {
		return nil, letta.Conflictf("the context changed while it was being summarised; try again")
	}
	if settled, err := Settled(txn, a.ID); err != nil || !settled {
		if err == nil {
			err = letta.Conflictf("the agent is waiting for the results of its tool calls: send them (an approval reply) first")
		}
		return nil, err
	}
	last, err := schema.LastSeq(txn, a.ID)
	if err != nil {
		return nil, err
	}
	if p.RunID != "" {
		if _, err := activeRun(txn, a.ID, p.RunID); err != nil {
			return nil, err
		}
	}
	m := &schema.Message{
		ID: p.SummaryID, AgentID: a.ID, Seq: last + 1, Role: schema.RoleSummary, Text: p.Text,
		RunID: p.RunID, ConversationID: p.ConversationID, CreatedAt: call.Now,
	}
	if err := schema.AppendMessage(txn, m); err != nil {
		return nil, err
	}
	if err := extendRun(txn, p.RunID, m.Seq); err != nil {
		return nil, err
	}
	if err := schema.EvictContext(txn, o.ID(), ctx.Start, p.Cut); err != nil {
		return nil, err
	}
	ctx.SummaryID, ctx.SummarySeq, ctx.Start = m.ID, m.Seq, p.Cut
	// Letta recompiles the system message after a compaction (its counts
	// of messages in and out of context changed).
	if _, _, err := window.Refresh(txn, o, call.Now, window.Always, false); err != nil {
		return nil, err
	}
	if o.Conv != nil {
		err = schema.PutConversation(txn, o.Conv)
	} else {
		call.SetState(a)
	}
	if err != nil {
		return nil, err
	}
	ids, err := window.IDs(txn, o)
	if err != nil {
		return nil, err
	}
	return reply(call, &compacted{After: len(ids), Summary: m}, true)
}

// CompactResult is what a compaction did (Letta's CompactionResponse).
type CompactResult struct {
	Summary           *string `json:"summary"`
	NumMessagesBefore int     `json:"num_messages_before"`
	NumMessagesAfter  int     `json:"num_messages_after"`
	// stored is the summary message committed; nil when nothing was.
	stored *schema.Message
}

// compacted is OpCompact's answer: the context's size after it, and the
// summary message it stored.
type compacted struct {
	After   int             `json:"after"`
	Summary *schema.Message `json:"summary"`
}

// errNothingToCompact is Letta's answer when a compaction would not reduce
// the context.
var errNothingToCompact = letta.Invalidf("Summarization failed to reduce the number of messages. You may not have enough messages to compact or need to use a different CompactionSettings (e.g. using `all` mode).")

// compact plans, summarises and commits one compaction of a context with
// the model of p; nil when there was nothing to compact.
func (m *Manager) compact(ctx context.Context, agentID, convID, runID string, req CompactionSettings, keepFrom uint64, p llm.Provider, model string) (*CompactResult, error) {
	var c *compaction
	if err := m.cfg.Store.Read(ctx, func(txn kv.Txn) (err error) {
		c, err = planCompaction(txn, agentID, convID, req, keepFrom)
		return err
	}); err != nil || c == nil {
		return nil, err
	}
	if c.settings.Model != nil && *c.settings.Model != "" {
		var err error
		if p, model, err = m.resolve(agentID, *c.settings.Model); err != nil {
			return nil, err
		}
	}
	summary, err := c.summarise(ctx, p, model)
	if err != nil {
		return nil, err
	}
	id, err := m.cfg.NewID("message")
	if err != nil {
		return nil, err
	}
	payload := CompactPayload{
		ConversationID: convID, RunID: runID, SummaryID: id, Text: summaryText(len(c.evicted), summary),
		Start: c.start, Cut: c.cut,
	}
	if c.prior != nil {
		payload.PriorSummaryID = c.prior.ID
	}
	var done compacted
	if err := m.cfg.Store.Invoke(context.WithoutCancel(ctx), agentID, OpCompact, payload, &done); err != nil {
		if done.Summary, err = m.storedSummary(ctx, id, err); err != nil {
			return nil, err
		}
		now, err := m.unchanged(ctx, agentID, convID)
		if err != nil {
			return nil, err
		}
		done.After = now.NumMessagesAfter
	}
	return &CompactResult{Summary: &summary, NumMessagesBefore: c.before, NumMessagesAfter: done.After, stored: done.Summary}, nil
}

// storedSummary settles a compaction whose commit failed: a commit error
// may leave the outcome unknown (package kv), and a summary stored after
// all is one of the run's messages, which a replay of the run shows, so
// the live answer must show it too. It returns the summary message if it
// was stored, commitErr if not.
func (m *Manager) storedSummary(ctx context.Context, summaryID string, commitErr error) (*schema.Message, error) {
	var stored *schema.Message
	if err := m.cfg.Store.Read(ctx, func(txn kv.Txn) error {
		agentID, seq, err := schema.LocateMessage(txn, summaryID)
		if err != nil {
			return err
		}
		stored, err = schema.GetMessage(txn, agentID, seq)
		return err
	}); err != nil {
		return nil, commitErr
	}
	return stored, nil
}

// Compact summarises the older history of an agent's context (convID
// empty: its default conversation) at a client's request, waiting for a
// turn in progress to end first. With nothing to summarise it answers as
// Letta does: /summarize (allowEmpty) with the context unchanged, /compact
// with errNothingToCompact.
func (m *Manager) Compact(ctx context.Context, agentID, convID string, req CompactionSettings, allowEmpty bool) (*CompactResult, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	var a *schema.Agent
	if err := m.cfg.Store.Read(ctx, func(txn kv.Txn) (err error) {
		o, err := window.Load(txn, agentID, convID)
		a = o.Agent
		return err
	}); err != nil {
		return nil, err
	}
	p, model, err := m.resolve(agentID, HandleOf(a))
	if err != nil {
		return nil, err
	}
	release, err := m.lock(ctx, agentID)
	if err != nil {
		return nil, err
	}
	defer release()
	res, err := m.compact(ctx, agentID, convID, "", req, 0, p, model)
	if err != nil || res != nil {
		return res, err
	}
	if !allowEmpty {
		return nil, errNothingToCompact
	}
	return m.unchanged(ctx, agentID, convID)
}

// unchanged is /summarize's answer for a context with nothing to
// summarise: its current summary and size.
func (m *Manager) unchanged(ctx context.Context, agentID, convID string) (*CompactResult, error) {
	res := &CompactResult{}
	err := m.cfg.Store.Read(ctx, func(txn kv.Txn) error {
		o, err := window.Load(txn, agentID, convID)
		if err != nil {
			return err
		}
		ids, err := window.IDs(txn, o)
		if err != nil {
			return err
		}
		res.NumMessagesBefore, res.NumMessagesAfter = len(ids), len(ids)
		s, err := window.Summary(txn, o)
		if s != nil {
			res.Summary = &s.Text
		}
		return err
	})
	return res, err
}
