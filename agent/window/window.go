// Package window is an agent's context window as stored: for each context
// (the agent's default conversation, and each conversation) a system
// message compiled from the agent's instructions and memory, the summary
// of history compacted out of it, and the messages from a starting point
// on (see schema.Context). What the model is sent is read from here.
//
// Guarantees:
//   - A context's system message is a stored message, its in-context
//     message 0, rewritten in place (same id) when it is recompiled: the
//     default conversation's whenever the agent's instructions or memory
//     changed (checked at every change the agent's own actor makes and at
//     its next turn), a conversation's when its own turn edits memory, on
//     recompile and on compaction, never by an edit from outside (Letta's
//     rule: a conversation keeps the prompt it was compiled with).
//   - Nothing leaves storage: a reset or a compaction moves messages out of
//     the context by moving its start, in the same transaction as the
//     summary that replaces them.
//   - Every function runs in the caller's transaction.
package window

import (
	"encoding/json"
	"fmt"
	"github.com/kelpie/kelpie/agent/files"
	"slices"
	"time"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// MaxMessages bounds the messages of a context read at once (the newest
// ones): what a step may send, what message_ids lists.
const MaxMessages = 2000

// Owner is a context: the agent's default conversation (Conv nil) or one
// of its conversations.
type Owner struct {
	Agent *schema.Agent
	Conv  *schema.Conversation
}

// Context is the owner's stored context record.
func (o Owner) Context() *schema.Context {
	if o.Conv != nil {
		return &o.Conv.Context
	}
	return &o.Agent.Context
}

// AgentID is the id of the agent whose context it is.
func (o Owner) AgentID() string {
	if o.Conv != nil {
		return o.Conv.AgentID
	}
	return o.Agent.ID
}

// ID is the id of the context's owner: its conversation's, or its agent's
// for the default conversation (see schema.ContextOwner).
func (o Owner) ID() string {
	if o.Conv != nil {
		return o.Conv.ID
	}
	return o.Agent.ID
}

// ConvID is the owner's conversation id, "" for the default conversation.
func (o Owner) ConvID() string {
	if o.Conv != nil {
		return o.Conv.ID
	}
	return ""
}

// Load returns the context of convID ("" for the default conversation) of
// an agent.
func Load(txn kv.Txn, agentID, convID string) (Owner, error) {
	a, err := schema.GetAgent(txn, agentID)
	if err != nil {
		return Owner{}, err
	}
	o := Owner{Agent: a}
	if convID != "" {
		if o.Conv, err = schema.GetAgentConversation(txn, agentID, convID); err != nil {
			return Owner{}, err
		}
	}
	return o, nil
}

// idOnly is what listing ids needs of a stored message.
type idOnly struct {
	ID             string `json:"id"`
	Role           string `json:"role"`
	ConversationID string `json:"conversation_id"`
}

// scan visits the owner's messages numbered Start or later, newest first,
// at most MaxMessages of them, other than its system message and summaries
// (its own, and older ones folded into it); decode turns a stored value
// into what visit gets, with the message's id, role and conversation.
func scan[M any](txn kv.Txn, o Owner, decode func([]byte) (M, idOnly, error), visit func(M)) error {
	ctx := o.Context()
	agentID, convID := o.AgentID(), o.ConvID()
	prefix := message.HistoryOf(agentID, convID)
	r := kv.PrefixRange(prefix)
	if ctx.Start > 0 {
		if convID != "" {
			r.Start = schema.ConversationMessageKey(convID, ctx.Start)
		} else {
			r.Start = schema.MessageKey(agentID, ctx.Start)
		}
	}
	n := 0
	return kv.ScanEach(txn, r, true, func(p kv.KeyValue) (bool, error) {
		v := p.Value
		if convID != "" {
			seq, err := schema.SeqOf(p.Key)
			if err != nil {
				return false, err
			}
			if v, err = txn.Get(schema.MessageKey(agentID, seq)); err != nil {
				return false, fmt.Errorf("message %d of %s: %w", seq, agentID, err)
			}
		}
		m, meta, err := decode(v)
		if err != nil {
			return false, err
		}
		if convID == "" && meta.ConversationID != "" || meta.ID == ctx.SystemID || meta.Role == schema.RoleSummary {
			return true, nil
		}
		visit(m)
		n++
		return n < MaxMessages, nil
	})
}

// Messages returns the owner's in-context messages after its system and
// summary messages, oldest first (at most MaxMessages, the newest): an
// indexed context's from its index (which a fork shares with its source),
// an older one's by reading its history.
func Messages(txn kv.Txn, o Owner) ([]*schema.Message, error) {
	var out []*schema.Message
	if o.Context().Indexed {
		seqs, _, err := Indexed(txn, o)
		if err != nil {
			return nil, err
		}
		return ReadMessages(txn, o.AgentID(), seqs)
	}
	err := scan(txn, o, func(v []byte) (*schema.Message, idOnly, error) {
		m, err := schema.DecodeMessage(v)
		if err != nil {
			return nil, idOnly{}, err
		}
		return m, idOnly{ID: m.ID, Role: m.Role, ConversationID: m.ConversationID}, nil
	}, func(m *schema.Message) { out = append(out, m) })
	slices.Reverse(out)
	return out, err
}

// Indexed returns the sequence numbers and ids of an indexed context's
// messages after its system message and summary, oldest first (at most
// MaxMessages, the newest), read from its index: forward, which costs the
// engine less than backward, unless the context holds more than
// MaxMessages.
func Indexed(txn kv.Txn, o Owner) (seqs []uint64, ids []string, err error) {
	r := kv.PrefixRange(schema.ContextMessagesOf(o.ID()))
	r.Start = schema.ContextMessageKey(o.ID(), o.Context().Start)
	entries, err := txn.Scan(r, MaxMessages+1, false)
	if err != nil {
		return nil, nil, err
	}
	if len(entries) > MaxMessages {
		if entries, err = txn.Scan(r, MaxMessages, true); err != nil {
			return nil, nil, err
		}
		slices.Reverse(entries)
	}
	seqs, ids = make([]uint64, len(entries)), make([]string, len(entries))
	for i, p := range entries {
		if seqs[i], err = schema.SeqOf(p.Key); err != nil {
			return nil, nil, err
		}
		ids[i] = string(p.Value)
	}
	return seqs, ids, nil
}

// ReadMessages reads an agent's messages seqs (ascending). When they lie
// close together (a context is mostly the end of its agent's history) one
// scan of their span reads them all, rather than a point read each: a
// step reads its whole context.
func ReadMessages(txn kv.Txn, agentID string, seqs []uint64) ([]*schema.Message, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	first, last := seqs[0], seqs[len(seqs)-1]
	if last-first >= 2*uint64(len(seqs)) {
		out := make([]*schema.Message, len(seqs))
		for i, seq := range seqs {
			m, err := schema.GetMessage(txn, agentID, seq)
			if err != nil {
				return nil, err
			}
			out[i] = m
		}
		return out, nil
	}
	stored, err := txn.Scan(kv.Range{Start: schema.MessageKey(agentID, first), End: schema.MessageKey(agentID, last+1)}, 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]*schema.Message, 0, len(seqs))
	for _, p := range stored {
		seq, err := schema.SeqOf(p.Key)
		if err != nil {
			return nil, err
		}
		if seq != seqs[len(out)] {
			if seq > seqs[len(out)] {
				break // the one wanted is missing
			}
			continue // not in the context
		}
		m, err := schema.DecodeMessage(p.Value)
		if err != nil {
			return nil, err
		}
		if out = append(out, m); len(out) == len(seqs) {
			return out, nil
		}
	}
	return nil, fmt.Errorf("message %d of %s: %w", seqs[len(out)], agentID, kv.ErrNotFound)
}

// IDs returns the ids of the owner's in-context messages, in order: the
// system message, the summary, then the rest (see Messages). An indexed
// context's are read from its index (schema.ContextMessages), so that
// rendering an agent costs a scan of ids, not of messages.
func IDs(txn kv.Txn, o Owner) ([]string, error) {
	var rest []string
	var err error
	if o.Context().Indexed {
		rest, err = indexedIDs(txn, o)
	} else {
		rest, err = scannedIDs(txn, o)
	}
	if err != nil {
		return nil, err
	}
	ctx := o.Context()
	out := make([]string, 0, len(rest)+2)
	for _, id := range []string{ctx.SystemID, ctx.SummaryID} {
		if id != "" {
			out = append(out, id)
		}
	}
	for _, id := range slices.Backward(rest) {
		out = append(out, id)
	}
	return out, nil
}

// indexedIDs returns the ids of an indexed context's messages after its
// system message and summary, newest first (at most MaxMessages).
func indexedIDs(txn kv.Txn, o Owner) ([]string, error) {
	r := kv.PrefixRange(schema.ContextMessagesOf(o.ID()))
	r.Start = schema.ContextMessageKey(o.ID(), o.Context().Start)
	var out []string
	err := kv.ScanEach(txn, r, true, func(p kv.KeyValue) (bool, error) {
		out = append(out, string(p.Value))
		return len(out) < MaxMessages, nil
	})
	return out, err
}

// scannedIDs is indexedIDs for a context stored before contexts were
// indexed: it reads the messages themselves.
func scannedIDs(txn kv.Txn, o Owner) ([]string, error) {
	var rest []string
	err := scan(txn, o, func(v []byte) (string, idOnly, error) {
		if h, ok := schema.ReadMessageHead(v); ok {
			return h.ID, idOnly{ID: h.ID, Role: h.Role, ConversationID: h.ConversationID}, nil
		}
		var m idOnly
		if err := json.Unmarshal(v, &m); err != nil {
			return "", m, fmt.Errorf("decode message: %w", err)
		}
		return m.ID, m, nil
	}, func(id string) { rest = append(rest, id) })
	return rest, err
}

// System returns the owner's stored system message, nil if it has none
// (a context stored before contexts kept one).
func System(txn kv.Txn, o Owner) (*schema.Message, error) {
	ctx := o.Context()
	if ctx.SystemID == "" {
		return nil, nil
	}
	return schema.GetMessage(txn, o.AgentID(), ctx.SystemSeq)
}

// Summary returns the owner's summary message, nil if it has none.
func Summary(txn kv.Txn, o Owner) (*schema.Message, error) {
	ctx := o.Context()
	if ctx.SummaryID == "" {
		return nil, nil
	}
	return schema.GetMessage(txn, o.AgentID(), ctx.SummarySeq)
}

// Compile renders the owner's system prompt from the agent's current
// instructions and memory, as recompiled at `at`.
func Compile(txn kv.Txn, o Owner, at time.Time) (string, error) {
	blocks, err := memory.AgentBlocks(txn, o.Agent.ID)
	if err != nil {
		return "", err
	}
	dirs, err := files.Directories(txn, o.Agent)
	if err != nil {
		return "", err
	}
	return compile(txn, o, blocks, dirs, at)
}

// compile is Compile with the agent's blocks and directories read.
func compile(txn kv.Txn, o Owner, blocks []*schema.Block, dirs *prompt.Directories, at time.Time) (string, error) {
	a := o.Agent
	passages, tags, err := schema.PassageStats(txn, a.ID)
	if err != nil {
		return "", err
	}
	total, err := schema.LastSeq(txn, a.ID)
	if err != nil {
		return "", err
	}
	ids, err := IDs(txn, o)
	if err != nil {
		return "", err
	}
	meta := memoryMeta(a, dirs)
	meta.ConversationID, meta.Recompiled = o.ConvID(), at
	meta.Passages, meta.PassageTags = passages, tags
	meta.PreviousMessages = max(int(total)-len(ids), 0)
	return prompt.Compile(a, blocks, meta), nil
}

// memoryMeta is what a prompt shows besides the blocks that is memory, not
// metadata: the agent's tool rules and open files.
func memoryMeta(a *schema.Agent, dirs *prompt.Directories) prompt.Meta {
	return prompt.Meta{ToolRules: toolRules(a), Directories: dirs}
}

// Open stores the first system message of a new context (of a new agent or
// conversation): the context starts after it.
func Open(txn kv.Txn, o Owner, now time.Time) (*schema.Message, error) {
	text, err := Compile(txn, o, now)
	if err != nil {
		return nil, err
	}
	last, err := schema.LastSeq(txn, o.Agent.ID)
	if err != nil {
		return nil, err
	}
	return open(txn, o, text, last, now)
}

// OpenNewAgent is Open for the default context of an agent being created
// in txn with blocks (in attachment order): it has no passages and no
// messages yet, so nothing needs reading back to compile its prompt.
func OpenNewAgent(txn kv.Txn, a *schema.Agent, blocks []*schema.Block, now time.Time) (*schema.Message, error) {
	o := Owner{Agent: a}
	return open(txn, o, prompt.Compile(a, blocks, prompt.Meta{ConversationID: o.ConvID(), Recompiled: now, ToolRules: toolRules(a)}), 0, now)
}

// toolRules is how the system prompt states the agent's tool rules.
func toolRules(a *schema.Agent) string { return tool.UsagePrompt(tool.StoredRules(a.ToolRules)) }

// open stores text as the first system message of o's context, after the
// agent's message last.
func open(txn kv.Txn, o Owner, text string, last uint64, now time.Time) (*schema.Message, error) {
	m, err := appendSystem(txn, o, text, last, now)
	if err != nil {
		return nil, err
	}
	ctx := o.Context()
	ctx.Start, ctx.Indexed = m.Seq+1, true
	return m, nil
}

// When says when Refresh recompiles a context's system message.
type When int

const (
	// IfMissing stores one only for a context that has none (one stored
	// before contexts kept a system message), appended as the agent's next
	// message.
	IfMissing When = iota
	// IfChanged also recompiles one whose instructions or memory changed.
	IfChanged
	// Always recompiles it whatever changed.
	Always
)

// Refresh recompiles the owner's system message as when says and stores
// it in place (dryRun: only compiles it). It returns the message and
// whether it was written. When a system message was appended the context
// record changed: the caller stores the owner's record.
func Refresh(txn kv.Txn, o Owner, now time.Time, when When, dryRun bool) (m *schema.Message, written bool, err error) {
	if m, err = System(txn, o); err != nil || m != nil && when == IfMissing {
		return m, false, err
	}
	blocks, err := memory.AgentBlocks(txn, o.Agent.ID)
	if err != nil {
		return nil, false, err
	}
	dirs, err := files.Directories(txn, o.Agent)
	if err != nil {
		return nil, false, err
	}
	if m != nil && when == IfChanged && prompt.SameMemory(m.Text, prompt.CompileMemory(o.Agent, blocks, memoryMeta(o.Agent, dirs))) {
		// Only the metadata may have changed, which alone calls for no
		// recompile: what only it shows (passages, message counts) is
		// not read, as a turn begins with this check. The open files
		// are memory (an upload or a folder's edit changes them from
		// outside the agent's actor).
		return m, false, nil
	}
	text, err := compile(txn, o, blocks, dirs, now)
	if err != nil {
		return nil, false, err
	}
	switch {
	case m == nil && dryRun:
		return &schema.Message{Role: schema.RoleSystem, Text: text, CreatedAt: now}, false, nil
	case m == nil:
		last, err := schema.LastSeq(txn, o.Agent.ID)
		if err != nil {
			return nil, false, err
		}
		m, err = appendSystem(txn, o, text, last, now)
		return m, err == nil, err
	}
	m.Text = text
	if dryRun {
		return m, false, nil
	}
	return m, true, schema.PutMessage(txn, m)
}

// appendSystem stores text as the owner's system message, its agent's
// message after last (the agent's last message's seq, 0 for none).
func appendSystem(txn kv.Txn, o Owner, text string, last uint64, now time.Time) (*schema.Message, error) {
	seq := last + 1
	owner := o.Agent.ID
	if o.Conv != nil {
		owner = o.Conv.ID
	}
	m := &schema.Message{
		ID: letta.DerivedID("message", "system", owner, fmt.Sprint(seq)), AgentID: o.Agent.ID, Seq: seq,
		Role: schema.RoleSystem, Text: text, ConversationID: o.ConvID(), CreatedAt: now,
	}
	if err := schema.AppendSystemPrompt(txn, m); err != nil {
		return nil, err
	}
	ctx := o.Context()
	ctx.SystemID, ctx.SystemSeq = m.ID, m.Seq
	return m, nil
}

// Fork opens the context of a new conversation forked from o: a system
// message compiled now, then o's summary and messages (at most
// MaxMessages, the newest), shared, not copied: they stay o's messages.
func Fork(txn kv.Txn, o Owner, fork *schema.Conversation, now time.Time) error {
	shared, err := Messages(txn, o)
	if err != nil {
		return err
	}
	f := Owner{Agent: o.Agent, Conv: fork}
	if _, err := Open(txn, f, now); err != nil {
		return err
	}
	ctx := f.Context()
	src := o.Context()
	ctx.SummaryID, ctx.SummarySeq = src.SummaryID, src.SummarySeq
	if len(shared) > 0 {
		ctx.Start = shared[0].Seq
	}
	for _, m := range shared {
		if err := txn.Set(schema.ContextMessageKey(fork.ID, m.Seq), []byte(m.ID)); err != nil {
			return err
		}
	}
	return nil
}
