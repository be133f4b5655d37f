package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/kv"
)

// Run statuses.
const (
	RunCreated   = "created"
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// runRecord is a stored run: one turn of an agent.
type runRecord struct {
	ID             string      `json:"id"`
	AgentID        string      `json:"agent_id"`
	ConversationID string      `json:"conversation_id,omitempty"`
	Status         string      `json:"status"`
	StopReason     string      `json:"stop_reason,omitempty"`
	Background     bool        `json:"background,omitempty"`
	CreatedAt      time.Time   `json:"created_at"`
	CompletedAt    *time.Time  `json:"completed_at,omitempty"`
	Usage          usageRecord `json:"usage"`
	Error          string      `json:"error,omitempty"`
	// FirstSeq and LastSeq bound the run's messages (its inputs included):
	// turns of one agent never interleave, so they are contiguous.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// Run is a run as the API returns it (Letta's Run).
type Run struct {
	ID                 string         `json:"id"`
	Status             string         `json:"status"`
	CreatedAt          Timestamp      `json:"created_at"`
	CompletedAt        *Timestamp     `json:"completed_at"`
	AgentID            string         `json:"agent_id"`
	ConversationID     *string        `json:"conversation_id"`
	BaseTemplateID     *string        `json:"base_template_id"`
	Background         *bool          `json:"background"`
	Metadata           map[string]any `json:"metadata"`
	RequestConfig      any            `json:"request_config"`
	StopReason         *string        `json:"stop_reason"`
	CallbackURL        *string        `json:"callback_url"`
	CallbackSentAt     *Timestamp     `json:"callback_sent_at"`
	CallbackStatusCode *int           `json:"callback_status_code"`
	CallbackError      *string        `json:"callback_error"`
	TTFTNs             *int64         `json:"ttft_ns"`
	TotalDurationNs    *int64         `json:"total_duration_ns"`
}

func (r *runRecord) render() *Run {
	out := &Run{
		ID:        r.ID,
		Status:    r.Status,
		CreatedAt: Timestamp{r.CreatedAt},
		AgentID:   r.AgentID,
	}
	if r.ConversationID != "" {
		out.ConversationID = ptr(r.ConversationID)
	}
	if r.Background {
		out.Background = ptr(true)
	}
	if r.StopReason != "" {
		out.StopReason = ptr(r.StopReason)
	}
	if r.CompletedAt != nil {
		out.CompletedAt = &Timestamp{*r.CompletedAt}
		d := r.CompletedAt.Sub(r.CreatedAt).Nanoseconds()
		out.TotalDurationNs = &d
	}
	if r.Error != "" {
		out.Metadata = map[string]any{"error": map[string]any{"type": "run_error", "message": r.Error}}
	}
	return out
}

func readRun(txn kv.Txn, runID string) (*runRecord, error) {
	data, err := txn.Get(runKey(runID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("Run %s not found", runID)}
	}
	if err != nil {
		return nil, err
	}
	var r runRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", runID, err)
	}
	return &r, nil
}

func writeRun(txn kv.Txn, r *runRecord) error {
	data, err := marshal(r)
	if err != nil {
		return err
	}
	return txn.Set(runKey(r.ID), data)
}

// conversationRecord is a stored conversation.
type conversationRecord struct {
	ID        string    `json:"id"`
	AgentID   string    `json:"agent_id"`
	Summary   *string   `json:"summary"`
	LastRunID string    `json:"last_run_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Conversation is a conversation as the API returns it.
type Conversation struct {
	CreatedByID         *string   `json:"created_by_id"`
	LastUpdatedByID     *string   `json:"last_updated_by_id"`
	CreatedAt           Timestamp `json:"created_at"`
	UpdatedAt           Timestamp `json:"updated_at"`
	ID                  string    `json:"id"`
	AgentID             string    `json:"agent_id"`
	Summary             *string   `json:"summary"`
	InContextMessageIDs []string  `json:"in_context_message_ids"`
	IsolatedBlockIDs    []string  `json:"isolated_block_ids"`
}

func (c *conversationRecord) render() *Conversation {
	return &Conversation{
		CreatedAt:           Timestamp{c.CreatedAt},
		UpdatedAt:           Timestamp{c.UpdatedAt},
		ID:                  c.ID,
		AgentID:             c.AgentID,
		Summary:             c.Summary,
		InContextMessageIDs: []string{},
		IsolatedBlockIDs:    []string{},
	}
}

func readConversation(txn kv.Txn, convID string) (*conversationRecord, error) {
	data, err := txn.Get(convKey(convID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("Conversation %s not found", convID)}
	}
	if err != nil {
		return nil, err
	}
	var c conversationRecord
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode conversation %s: %w", convID, err)
	}
	return &c, nil
}

func writeConversation(txn kv.Txn, c *conversationRecord) error {
	data, err := marshal(c)
	if err != nil {
		return err
	}
	return txn.Set(convKey(c.ID), data)
}

// passageRecord is a stored archival memory passage.
type passageRecord struct {
	ID        string    `json:"id"`
	AgentID   string    `json:"agent_id"`
	Seq       uint64    `json:"seq"` // insertion order, from 1 per agent
	Text      string    `json:"text"`
	Tags      []string  `json:"tags"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Passage is an archival memory passage as the API returns it.
type Passage struct {
	CreatedByID     *string          `json:"created_by_id"`
	LastUpdatedByID *string          `json:"last_updated_by_id"`
	CreatedAt       Timestamp        `json:"created_at"`
	UpdatedAt       Timestamp        `json:"updated_at"`
	IsDeleted       bool             `json:"is_deleted"`
	ArchiveID       *string          `json:"archive_id"`
	SourceID        *string          `json:"source_id"`
	FileID          *string          `json:"file_id"`
	FileName        *string          `json:"file_name"`
	Metadata        map[string]any   `json:"metadata"`
	Tags            []string         `json:"tags"`
	ID              string           `json:"id"`
	Text            string           `json:"text"`
	Embedding       []float64        `json:"embedding"`
	EmbeddingConfig *EmbeddingConfig `json:"embedding_config"`
}

func (p *passageRecord) render() Passage {
	return Passage{
		CreatedAt: Timestamp{p.CreatedAt},
		UpdatedAt: Timestamp{p.UpdatedAt},
		Metadata:  map[string]any{},
		Tags:      nonNil(p.Tags),
		ID:        p.ID,
		Text:      p.Text,
	}
}

func passageKey(p *passageRecord) []byte {
	return fmt.Appendf(nil, "passage/%s/%016x/%s", p.AgentID, p.Seq, p.ID)
}

func writePassage(txn kv.Txn, p *passageRecord) error {
	data, err := marshal(p)
	if err != nil {
		return err
	}
	k := passageKey(p)
	if err := txn.Set(k, data); err != nil {
		return err
	}
	return txn.Set(passageIDKey(p.ID), k)
}

// allPassages returns an agent's passages, oldest first.
func allPassages(txn kv.Txn, agentID string) ([]*passageRecord, error) {
	kvs, err := txn.Scan(kv.PrefixRange(passagePrefix(agentID)), 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]*passageRecord, 0, len(kvs))
	for _, p := range kvs {
		var rec passageRecord
		if err := json.Unmarshal(p.Value, &rec); err != nil {
			return nil, fmt.Errorf("decode passage %q: %w", p.Key, err)
		}
		out = append(out, &rec)
	}
	return out, nil
}

// passageTags returns the distinct tags of passages, sorted.
func passageTags(ps []*passageRecord) []string {
	var tags []string
	for _, p := range ps {
		tags = append(tags, p.Tags...)
	}
	slices.Sort(tags)
	return slices.Compact(tags)
}

// ---- ids -------------------------------------------------------------------

var (
	runIDPattern     = idPattern("run")
	convIDPattern    = idPattern("conv")
	passageIDPattern = idPattern("passage")
	messageIDPattern = idPattern("message")
)

// ValidRunID reports whether s is a well-formed run id.
func ValidRunID(s string) bool { return runIDPattern.MatchString(s) }

// ValidConversationID reports whether s is a well-formed conversation id.
func ValidConversationID(s string) bool { return convIDPattern.MatchString(s) }

// ValidPassageID reports whether s is a well-formed passage id.
func ValidPassageID(s string) bool { return passageIDPattern.MatchString(s) }

func checkID(field, prefix string, pattern *regexp.Regexp, s string) error {
	if !pattern.MatchString(s) {
		return invalidf("%s %q is not a %s id: want '%s-{uuid4}'", field, clip(s), prefix, prefix)
	}
	return nil
}

// ---- runs ------------------------------------------------------------------

// GetRun returns a run.
func (s *Service) GetRun(ctx context.Context, runID string) (*Run, error) {
	if err := checkID("run_id", "run", runIDPattern, runID); err != nil {
		return nil, err
	}
	var out *Run
	err := s.read(ctx, func(txn kv.Txn) error {
		r, err := readRun(txn, runID)
		if err != nil {
			return err
		}
		out = r.render()
		return nil
	})
	return out, err
}

// RunFilter narrows a listing of runs.
type RunFilter struct {
	AgentID        string
	ConversationID string
	Statuses       []string
	Active         bool // only runs still going
}

func (f RunFilter) match(r *runRecord) bool {
	switch {
	case f.AgentID != "" && r.AgentID != f.AgentID,
		f.ConversationID != "" && r.ConversationID != f.ConversationID,
		len(f.Statuses) > 0 && !slices.Contains(f.Statuses, r.Status),
		f.Active && r.Status != RunRunning && r.Status != RunCreated:
		return false
	}
	return true
}

// DefaultRunListLimit is the page size of run listings.
const DefaultRunListLimit = 100

// ListRuns lists runs by creation time.
func (s *Service) ListRuns(ctx context.Context, f RunFilter, p Page) ([]*Run, error) {
	p, err := p.check(DefaultRunListLimit)
	if err != nil {
		return nil, err
	}
	out := []*Run{}
	err = s.read(ctx, func(txn kv.Txn) error {
		out = out[:0] // read may run this again
		return listIndex(txn, runIndexPrefix, p, ValidRunID, readRun, func(r *runRecord) time.Time { return r.CreatedAt }, func(run *runRecord) (bool, error) {
			if f.match(run) {
				out = append(out, run.render())
			}
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// RunMessages lists the messages of a run, oldest first, inputs included.
func (s *Service) RunMessages(ctx context.Context, runID string, p Page) ([]LettaMessage, error) {
	if err := checkID("run_id", "run", runIDPattern, runID); err != nil {
		return nil, err
	}
	p, err := p.check(DefaultMessageListLimit)
	if err != nil {
		return nil, err
	}
	var out []LettaMessage
	err = s.read(ctx, func(txn kv.Txn) error {
		run, err := readRun(txn, runID)
		if err != nil {
			return err
		}
		ms, err := runMessageRecords(txn, run)
		if err != nil {
			return err
		}
		out = pageMessages(ms, p)
		return nil
	})
	return out, err
}

// runMessageRecords returns every stored message of a run.
func runMessageRecords(txn kv.Txn, run *runRecord) ([]*messageRecord, error) {
	if run.FirstSeq == 0 {
		return nil, nil
	}
	r := kv.Range{Start: msgKey(run.AgentID, run.FirstSeq), End: msgKey(run.AgentID, run.LastSeq+1)}
	kvs, err := txn.Scan(r, 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]*messageRecord, 0, len(kvs))
	for _, p := range kvs {
		m, err := decodeMessage(p.Value)
		if err != nil {
			return nil, err
		}
		if m.RunID == run.ID {
			out = append(out, m)
		}
	}
	return out, nil
}

// runResponse rebuilds what a finished run answered: its messages but its
// inputs, its stop reason and its usage.
func runResponse(txn kv.Txn, run *runRecord) (*LettaResponse, error) {
	ms, err := runMessageRecords(txn, run)
	if err != nil {
		return nil, err
	}
	ms = slices.DeleteFunc(ms, func(m *messageRecord) bool { return m.Input })
	msgs := renderAll(ms)
	if msgs == nil {
		msgs = []LettaMessage{}
	}
	reason := run.StopReason
	if reason == "" {
		reason = StopError
	}
	return &LettaResponse{Messages: msgs, StopReason: NewStopReason(reason), Usage: run.Usage.render()}, nil
}

// ---- message listings -------------------------------------------------------

// DefaultMessageListLimit is Letta's page size for messages.
const DefaultMessageListLimit = 100

// MessageFilter narrows a listing of messages.
type MessageFilter struct {
	// ConversationID lists one conversation's messages; empty lists all
	// of the agent's.
	ConversationID string
	// DefaultOnly lists only the messages of the agent's default
	// conversation (those of no conversation).
	DefaultOnly bool
}

// ListMessages lists an agent's messages. The page's limit counts stored
// messages; each may show as several LettaMessages (sharing its id), as in
// Letta. Cursors are message ids.
func (s *Service) ListMessages(ctx context.Context, agentID string, f MessageFilter, p Page) ([]LettaMessage, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	p, err := p.check(DefaultMessageListLimit)
	if err != nil {
		return nil, err
	}
	out := []LettaMessage{}
	err = s.read(ctx, func(txn kv.Txn) error {
		out = out[:0] // read may run this again
		if _, err := readAgent(txn, agentID); err != nil {
			return err
		}
		if f.ConversationID != "" {
			c, err := readConversation(txn, f.ConversationID)
			if err != nil {
				return err
			}
			if c.AgentID != agentID {
				return &Error{Kind: KindNotFound, Message: fmt.Sprintf("Conversation %s not found", f.ConversationID)}
			}
		}
		ms, err := listMessageRecords(txn, agentID, f.ConversationID, f.DefaultOnly, p)
		if err != nil {
			return err
		}
		out = renderAll(ms)
		if p.Order == Desc {
			slices.Reverse(out)
		}
		if out == nil {
			out = []LettaMessage{}
		}
		return nil
	})
	return out, err
}

// ListConversationMessages lists a conversation's messages.
func (s *Service) ListConversationMessages(ctx context.Context, convID string, p Page) ([]LettaMessage, error) {
	c, err := s.GetConversation(ctx, convID)
	if err != nil {
		return nil, err
	}
	return s.ListMessages(ctx, c.AgentID, MessageFilter{ConversationID: convID}, p)
}

// listMessageRecords returns one page of stored messages in listing order
// (p.Order), oldest first when ascending.
func listMessageRecords(txn kv.Txn, agentID, convID string, defaultOnly bool, p Page) ([]*messageRecord, error) {
	prefix := msgPrefix(agentID)
	if convID != "" {
		prefix = convMsgPrefix(convID)
	}
	r := kv.PrefixRange(prefix)
	keyOf := func(seq uint64) []byte {
		if convID != "" {
			return convMsgKey(convID, seq)
		}
		return msgKey(agentID, seq)
	}
	cursor := func(id string) ([]byte, error) {
		if id == "" {
			return nil, nil
		}
		seq, err := readMessageSeq(txn, agentID, id)
		if KindOf(err) == KindNotFound {
			return nil, nil // unknown cursors are ignored, as Letta does
		}
		if err != nil {
			return nil, err
		}
		return keyOf(seq), nil
	}
	after, err := cursor(p.After)
	if err != nil {
		return nil, err
	}
	before, err := cursor(p.Before)
	if err != nil {
		return nil, err
	}
	lower, upper := after, before
	if p.Order == Desc {
		lower, upper = before, after
	}
	if lower != nil {
		r.Start = append(lower, 0)
	}
	if upper != nil {
		r.End = upper
	}
	var out []*messageRecord
	err = scanEach(txn, r, p.Order == Desc, func(key []byte) (bool, error) {
		m, err := messageAt(txn, agentID, convID, key)
		if err != nil {
			return false, err
		}
		if convID == "" && defaultOnly && m.ConversationID != "" {
			return true, nil
		}
		out = append(out, m)
		return len(out) < p.Limit, nil
	})
	if p.Order == Desc {
		// Render each message's parts in their own order; the caller
		// reverses the rendered list.
		slices.Reverse(out)
	}
	return out, err
}

// pageMessages renders stored messages (oldest first) and applies a page by
// message id.
func pageMessages(ms []*messageRecord, p Page) []LettaMessage {
	ids := make([]string, len(ms))
	byID := map[string]*messageRecord{}
	for i, m := range ms {
		ids[i], byID[m.ID] = m.ID, m
	}
	if p.Order == Desc {
		slices.Reverse(ids)
	}
	pos := map[string]int{}
	for i, id := range ids {
		pos[id] = i
	}
	var sel []*messageRecord
	for i, id := range ids {
		if a, ok := pos[p.After]; ok && i <= a {
			continue
		}
		if b, ok := pos[p.Before]; ok && i >= b {
			continue
		}
		if sel = append(sel, byID[id]); len(sel) == p.Limit {
			break
		}
	}
	if p.Order == Desc {
		slices.Reverse(sel)
	}
	out := renderAll(sel)
	if p.Order == Desc {
		slices.Reverse(out)
	}
	if out == nil {
		out = []LettaMessage{}
	}
	return out
}

// ---- conversations -----------------------------------------------------------

// CreateConversationRequest is the body of POST /v1/conversations.
type CreateConversationRequest struct {
	Summary *string `json:"summary"`
}

// CreateConversation creates a conversation on an agent.
func (s *Service) CreateConversation(ctx context.Context, agentID string, req CreateConversationRequest) (*Conversation, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	if req.Summary != nil {
		if err := checkChars("summary", *req.Summary, MaxDescriptionChars); err != nil {
			return nil, err
		}
	}
	id, err := s.newIDFor(ctx, "conv")
	if err != nil {
		return nil, err
	}
	var c Conversation
	err = s.invoke(ctx, agentActor(agentID), opCreateConversation, conversationPayload{ID: id, Summary: req.Summary}, &c)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// UpdateConversation changes a conversation's summary.
func (s *Service) UpdateConversation(ctx context.Context, convID string, req CreateConversationRequest) (*Conversation, error) {
	c, err := s.GetConversation(ctx, convID)
	if err != nil {
		return nil, err
	}
	if req.Summary != nil {
		if err := checkChars("summary", *req.Summary, MaxDescriptionChars); err != nil {
			return nil, err
		}
	}
	var out Conversation
	err = s.invoke(ctx, agentActor(c.AgentID), opUpdateConversation, conversationPayload{ID: convID, Summary: req.Summary}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

type conversationPayload struct {
	ID      string  `json:"id"`
	Summary *string `json:"summary"`
}

// GetConversation returns a conversation.
func (s *Service) GetConversation(ctx context.Context, convID string) (*Conversation, error) {
	if err := checkID("conversation_id", "conv", convIDPattern, convID); err != nil {
		return nil, err
	}
	var out *Conversation
	err := s.read(ctx, func(txn kv.Txn) error {
		c, err := readConversation(txn, convID)
		if err != nil {
			return err
		}
		out = c.render()
		return nil
	})
	return out, err
}

// DefaultConversationListLimit is the page size of conversation listings.
const DefaultConversationListLimit = 50

// ListConversations lists an agent's conversations, newest first unless
// the page says otherwise.
func (s *Service) ListConversations(ctx context.Context, agentID string, p Page) ([]*Conversation, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	p, err := p.check(DefaultConversationListLimit)
	if err != nil {
		return nil, err
	}
	out := []*Conversation{}
	err = s.read(ctx, func(txn kv.Txn) error {
		out = out[:0] // read may run this again
		if _, err := readAgent(txn, agentID); err != nil {
			return err
		}
		prefix := string(agentConvPrefix(agentID))
		return listIndex(txn, prefix, p, ValidConversationID, readConversation, func(c *conversationRecord) time.Time { return c.CreatedAt }, func(c *conversationRecord) (bool, error) {
			out = append(out, c.render())
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

func createConversation(call *actor.Call, rec *agentRecord, p conversationPayload) ([]byte, error) {
	txn := call.Txn
	if _, err := readConversation(txn, p.ID); err == nil {
		return nil, conflictf("conversation %s already exists", p.ID)
	}
	c := &conversationRecord{ID: p.ID, AgentID: rec.ID, Summary: p.Summary, CreatedAt: call.Now, UpdatedAt: call.Now}
	if err := writeConversation(txn, c); err != nil {
		return nil, err
	}
	if err := txn.Set(indexKey(string(agentConvPrefix(rec.ID)), c.CreatedAt, c.ID), nil); err != nil {
		return nil, err
	}
	return marshal(c.render())
}

func updateConversation(call *actor.Call, rec *agentRecord, p conversationPayload) ([]byte, error) {
	c, err := readConversation(call.Txn, p.ID)
	if err != nil {
		return nil, err
	}
	if c.AgentID != rec.ID {
		return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("Conversation %s not found", p.ID)}
	}
	if p.Summary != nil {
		c.Summary = p.Summary
	}
	c.UpdatedAt = call.Now
	if err := writeConversation(call.Txn, c); err != nil {
		return nil, err
	}
	return marshal(c.render())
}

// ---- archival memory ----------------------------------------------------------

// Limits of archival memory.
const (
	MaxPassageChars       = 100_000
	DefaultPassageLimit   = 100
	DefaultArchivalTopK   = 10
	MaxArchivalSearchTopK = 1000
)

// CreatePassageRequest is the body of POST /v1/agents/{id}/archival-memory.
type CreatePassageRequest struct {
	Text      string     `json:"text"`
	Tags      []string   `json:"tags"`
	CreatedAt *Timestamp `json:"created_at"`
}

// CreatePassage stores a passage in an agent's archival memory.
func (s *Service) CreatePassage(ctx context.Context, agentID string, req CreatePassageRequest) ([]Passage, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	if err := checkChars("text", req.Text, MaxPassageChars); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Text) == "" {
		return nil, invalidf("text must not be empty")
	}
	if err := checkTags("tags", req.Tags); err != nil {
		return nil, err
	}
	id, err := s.newIDFor(ctx, "passage")
	if err != nil {
		return nil, err
	}
	var p Passage
	if err := s.invoke(ctx, agentActor(agentID), opInsertPassage, passagePayload{ID: id, Text: req.Text, Tags: req.Tags}, &p); err != nil {
		return nil, err
	}
	return []Passage{p}, nil
}

type passagePayload struct {
	ID   string   `json:"id"`
	Text string   `json:"text"`
	Tags []string `json:"tags"`
}

func insertPassage(call *actor.Call, agentID string, p passagePayload) (*passageRecord, error) {
	if _, err := call.Txn.Get(passageIDKey(p.ID)); err == nil {
		return nil, conflictf("passage %s already exists", p.ID)
	}
	var seq uint64 = 1
	last, err := call.Txn.Scan(kv.PrefixRange(passagePrefix(agentID)), 1, true)
	if err != nil {
		return nil, err
	}
	if len(last) == 1 {
		var prev passageRecord
		if err := json.Unmarshal(last[0].Value, &prev); err != nil {
			return nil, fmt.Errorf("decode passage %q: %w", last[0].Key, err)
		}
		seq = prev.Seq + 1
	}
	rec := &passageRecord{ID: p.ID, AgentID: agentID, Seq: seq, Text: p.Text, Tags: nonNil(p.Tags), CreatedAt: call.Now, UpdatedAt: call.Now}
	return rec, writePassage(call.Txn, rec)
}

// DeletePassage deletes a passage.
func (s *Service) DeletePassage(ctx context.Context, agentID, passageID string) error {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return err
	}
	if err := checkID("memory_id", "passage", passageIDPattern, passageID); err != nil {
		return err
	}
	return s.invoke(ctx, agentActor(agentID), opDeletePassage, passagePayload{ID: passageID}, nil)
}

func deletePassage(call *actor.Call, agentID, passageID string) error {
	k, err := call.Txn.Get(passageIDKey(passageID))
	if errors.Is(err, kv.ErrNotFound) || err == nil && !strings.HasPrefix(string(k), string(passagePrefix(agentID))) {
		return &Error{Kind: KindNotFound, Message: fmt.Sprintf("Passage %s not found", passageID)}
	}
	if err != nil {
		return err
	}
	if err := call.Txn.Delete(k); err != nil {
		return err
	}
	return call.Txn.Delete(passageIDKey(passageID))
}

// PassageFilter narrows a listing of passages.
type PassageFilter struct {
	Search    string
	Ascending bool
}

// ListPassages lists an agent's passages by creation time; cursors are
// passage ids.
func (s *Service) ListPassages(ctx context.Context, agentID string, f PassageFilter, before, after string, limit int) ([]Passage, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	if limit < 0 || limit > MaxListLimit {
		return nil, invalidf("limit %d is out of range: want 1 to %d", limit, MaxListLimit)
	}
	if limit == 0 {
		limit = DefaultPassageLimit
	}
	out := []Passage{}
	err := s.read(ctx, func(txn kv.Txn) error {
		out = out[:0] // read may run this again
		if _, err := readAgent(txn, agentID); err != nil {
			return err
		}
		ps, err := allPassages(txn, agentID)
		if err != nil {
			return err
		}
		if !f.Ascending {
			slices.Reverse(ps)
		}
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID
		}
		pos := map[string]int{}
		for i, id := range ids {
			pos[id] = i
		}
		for i, p := range ps {
			if a, ok := pos[after]; ok && i <= a {
				continue
			}
			if b, ok := pos[before]; ok && i >= b {
				continue
			}
			if f.Search != "" && !strings.Contains(strings.ToLower(p.Text), strings.ToLower(f.Search)) {
				continue
			}
			if out = append(out, p.render()); len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// ArchivalSearch is a search of archival memory.
type ArchivalSearch struct {
	Query        string
	Tags         []string
	TagMatchAll  bool
	TopK         int
	Start, End   *time.Time
	TimezoneName string
}

// ArchivalResult is one search hit.
type ArchivalResult struct {
	ID        string   `json:"id"`
	Timestamp string   `json:"timestamp"`
	Content   string   `json:"content"`
	Tags      []string `json:"tags"`
}

// ArchivalSearchResponse is the answer of the archival search route.
type ArchivalSearchResponse struct {
	Results []ArchivalResult `json:"results"`
	Count   int              `json:"count"`
}

// SearchPassages searches an agent's archival memory by text: passages
// containing more of the query's words rank first, newer first among
// equals. (Kelpie has no embeddings yet.)
func (s *Service) SearchPassages(ctx context.Context, agentID string, q ArchivalSearch) (*ArchivalSearchResponse, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	if q.TopK < 0 || q.TopK > MaxArchivalSearchTopK {
		return nil, invalidf("top_k %d is out of range: want 1 to %d", q.TopK, MaxArchivalSearchTopK)
	}
	var out *ArchivalSearchResponse
	err := s.read(ctx, func(txn kv.Txn) error {
		rec, err := readAgent(txn, agentID)
		if err != nil {
			return err
		}
		ps, err := allPassages(txn, agentID)
		if err != nil {
			return err
		}
		q.TimezoneName = rec.Timezone
		out = searchPassages(ps, q)
		return nil
	})
	return out, err
}

func searchPassages(ps []*passageRecord, q ArchivalSearch) *ArchivalSearchResponse {
	topK := q.TopK
	if topK == 0 {
		topK = DefaultArchivalTopK
	}
	loc, err := time.LoadLocation(q.TimezoneName)
	if err != nil {
		loc = time.UTC
	}
	words := strings.Fields(strings.ToLower(q.Query))
	type hit struct {
		p     *passageRecord
		score int
	}
	var hits []hit
	for _, p := range ps {
		if q.Start != nil && p.CreatedAt.Before(*q.Start) || q.End != nil && p.CreatedAt.After(*q.End) {
			continue
		}
		if !matchTags(p.Tags, q.Tags, q.TagMatchAll) {
			continue
		}
		text := strings.ToLower(p.Text)
		score := 0
		for _, w := range words {
			if strings.Contains(text, w) {
				score++
			}
		}
		if len(words) > 0 && score == 0 {
			continue
		}
		hits = append(hits, hit{p, score})
	}
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].p.CreatedAt.After(hits[j].p.CreatedAt)
	})
	out := &ArchivalSearchResponse{Results: []ArchivalResult{}}
	for _, h := range hits {
		if len(out.Results) == topK {
			break
		}
		out.Results = append(out.Results, ArchivalResult{
			ID:        h.p.ID,
			Timestamp: h.p.CreatedAt.In(loc).Format("2006-01-02 03:04:05 PM MST-0700"),
			Content:   h.p.Text,
			Tags:      nonNil(h.p.Tags),
		})
	}
	out.Count = len(out.Results)
	return out
}

// messageAt reads the message a listing key names: a conversation index
// entry (convID set) points into the agent's messages; an agent history key
// holds the message itself.
func messageAt(txn kv.Txn, agentID, convID string, key []byte) (*messageRecord, error) {
	if convID != "" {
		seq, err := seqFromKey(key)
		if err != nil {
			return nil, err
		}
		return readMessage(txn, agentID, seq)
	}
	data, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return decodeMessage(data)
}
