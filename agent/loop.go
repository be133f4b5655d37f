package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kelpie/kelpie/clock"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/llm"
)

// LLMResolver finds the provider serving a model handle ("provider/model")
// and the model name to ask it for. *llm.Registry is one.
type LLMResolver interface {
	Resolve(handle string) (llm.Provider, string, error)
}

// modelCatalog is implemented by resolvers that can list their models
// (*llm.Registry).
type modelCatalog interface {
	Models(ctx context.Context) []llm.ModelInfo
}

// Limits of message requests.
const (
	DefaultMaxSteps = 50
	MaxStepsLimit   = 1000
	MaxInputs       = 100 // messages in one request
	MaxClientTools  = 256
)

// ---- requests ------------------------------------------------------------------

// MessageCreate is one input of a message request: a message (Letta's
// MessageCreate) or an approval reply (ApprovalCreate, type "approval").
type MessageCreate struct {
	Type     string          `json:"type"`
	Role     string          `json:"role"`
	Content  json.RawMessage `json:"content"`
	Name     *string         `json:"name"`
	Otid     *string         `json:"otid"`
	SenderID *string         `json:"sender_id"`

	Approvals         []ApprovalReturn `json:"approvals"`
	Approve           *bool            `json:"approve"`
	ApprovalRequestID *string          `json:"approval_request_id"`
	Reason            *string          `json:"reason"`
}

// ApprovalReturn answers one waiting tool call: with the client tool's
// result (type "tool") or with a decision (type "approval").
type ApprovalReturn struct {
	Type       string          `json:"type"`
	ToolCallID string          `json:"tool_call_id"`
	ToolReturn json.RawMessage `json:"tool_return"`
	Status     string          `json:"status"`
	Stdout     []string        `json:"stdout"`
	Stderr     []string        `json:"stderr"`
	Approve    *bool           `json:"approve"`
	Reason     *string         `json:"reason"`
}

// MessageRequest is the body of the message routes (Letta's
// LettaStreamingRequest and ConversationMessageRequest).
type MessageRequest struct {
	Messages                  []MessageCreate `json:"messages"`
	Input                     json.RawMessage `json:"input"`
	MaxSteps                  *int            `json:"max_steps"`
	Streaming                 *bool           `json:"streaming"`
	StreamTokens              bool            `json:"stream_tokens"`
	IncludePings              *bool           `json:"include_pings"`
	Background                bool            `json:"background"`
	IncludeReturnMessageTypes []string        `json:"include_return_message_types"`
	ClientTools               []ClientTool    `json:"client_tools"`
	AgentID                   *string         `json:"agent_id"`
	OverrideModel             *string         `json:"override_model"`
}

// textOf flattens message content (a string or a list of parts) to text.
func textOf(field string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalidf("%s must be a string or a list of content parts", field)
	}
	var b strings.Builder
	for i, p := range parts {
		if p.Type != "text" || p.Text == nil {
			return "", invalidf("%s[%d]: only text content parts are supported, got type %q", field, i, clip(p.Type))
		}
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		b.WriteString(*p.Text)
	}
	return b.String(), nil
}

// parsedRequest is a validated message request.
type parsedRequest struct {
	inputs    []messageRecord
	approvals []approvalInput
	keys      []string
	maxSteps  int
	client    []ClientTool
}

func (s *Service) parseRequest(ctx context.Context, req MessageRequest) (*parsedRequest, error) {
	msgs := req.Messages
	switch {
	case len(req.Input) > 0 && string(req.Input) != "null" && msgs != nil:
		return nil, invalidf("Cannot specify both 'input' and 'messages'. Use one or the other.")
	case len(req.Input) > 0 && string(req.Input) != "null":
		msgs = []MessageCreate{{Type: "message", Role: roleUser, Content: req.Input}}
	case msgs == nil:
		return nil, invalidf("Must specify either 'input' or 'messages'.")
	}
	if len(msgs) == 0 {
		return nil, invalidf("messages must not be empty")
	}
	if len(msgs) > MaxInputs {
		return nil, invalidf("messages has %d entries, over the limit of %d", len(msgs), MaxInputs)
	}
	p := &parsedRequest{maxSteps: DefaultMaxSteps}
	if req.MaxSteps != nil {
		if *req.MaxSteps < 1 || *req.MaxSteps > MaxStepsLimit {
			return nil, invalidf("max_steps %d is out of range: want 1 to %d", *req.MaxSteps, MaxStepsLimit)
		}
		p.maxSteps = *req.MaxSteps
	}
	for i, m := range msgs {
		field := fmt.Sprintf("messages[%d]", i)
		typ := m.Type
		if typ == "" && (m.Approvals != nil || m.Approve != nil || m.ApprovalRequestID != nil) {
			typ = "approval"
		}
		switch typ {
		case "", "message":
			in, err := s.parseInput(field, m)
			if err != nil {
				return nil, err
			}
			p.inputs = append(p.inputs, in)
			if in.Otid != "" {
				p.keys = append(p.keys, "otid\x00"+in.Otid)
			}
		case "approval":
			as, err := s.parseApproval(field, m)
			if err != nil {
				return nil, err
			}
			p.approvals = append(p.approvals, as...)
		default:
			return nil, invalidf("%s.type %q: want message or approval", field, clip(typ))
		}
	}
	if key, _ := ctx.Value(idempotencyKeyType{}).(string); key != "" {
		p.keys = append(p.keys, "key\x00"+key)
	}
	if len(req.ClientTools) > MaxClientTools {
		return nil, invalidf("client_tools has %d entries, over the limit of %d", len(req.ClientTools), MaxClientTools)
	}
	seen := map[string]bool{}
	for i, c := range req.ClientTools {
		if c.Name == "" || len(c.Name) > 256 {
			return nil, invalidf("client_tools[%d].name must be 1 to 256 characters", i)
		}
		if seen[c.Name] {
			return nil, invalidf("client_tools[%d]: duplicate tool name %q", i, clip(c.Name))
		}
		seen[c.Name] = true
		if len(c.Parameters) > 0 && string(c.Parameters) != "null" {
			var obj map[string]any
			if err := json.Unmarshal(c.Parameters, &obj); err != nil {
				return nil, invalidf("client_tools[%d].parameters must be a JSON Schema object", i)
			}
		}
	}
	p.client = req.ClientTools
	return p, nil
}

func (s *Service) parseInput(field string, m MessageCreate) (messageRecord, error) {
	switch m.Role {
	case roleUser, roleSystem, roleAssistant:
	case "":
		return messageRecord{}, invalidf("%s.role: Field required", field)
	default:
		return messageRecord{}, invalidf("%s.role %q: want user, system or assistant", field, clip(m.Role))
	}
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return messageRecord{}, invalidf("%s.content: Field required", field)
	}
	text, err := textOf(field+".content", m.Content)
	if err != nil {
		return messageRecord{}, err
	}
	id, err := s.env.newID("message")
	if err != nil {
		return messageRecord{}, err
	}
	rec := messageRecord{ID: id, Role: m.Role, Text: text, Name: m.Name, SenderID: m.SenderID}
	if m.Role == roleUser {
		rec.Content = append(json.RawMessage(nil), m.Content...)
	}
	if m.Otid != nil {
		if len(*m.Otid) > 256 {
			return messageRecord{}, invalidf("%s.otid is longer than 256 characters", field)
		}
		rec.Otid = *m.Otid
	}
	return rec, nil
}

func (s *Service) parseApproval(field string, m MessageCreate) ([]approvalInput, error) {
	var out []approvalInput
	for i, a := range m.Approvals {
		f := fmt.Sprintf("%s.approvals[%d]", field, i)
		if a.ToolCallID == "" {
			return nil, invalidf("%s.tool_call_id: Field required", f)
		}
		id, err := s.env.newID("message")
		if err != nil {
			return nil, err
		}
		in := approvalInput{ToolCallID: a.ToolCallID, ResultID: id}
		switch a.Type {
		case "tool", "":
			if a.Type == "" && a.Approve != nil {
				in.Approve, in.Reason = a.Approve, deref(a.Reason)
				break
			}
			if len(a.ToolReturn) == 0 || string(a.ToolReturn) == "null" {
				return nil, invalidf("%s.tool_return: Field required", f)
			}
			text, err := textOf(f+".tool_return", a.ToolReturn)
			if err != nil {
				return nil, err
			}
			if a.Status != "success" && a.Status != "error" {
				return nil, invalidf("%s.status %q: want success or error", f, clip(a.Status))
			}
			in.ToolReturn, in.Status = &text, a.Status
		case "approval":
			if a.Approve == nil {
				return nil, invalidf("%s.approve: Field required", f)
			}
			in.Approve, in.Reason = a.Approve, deref(a.Reason)
		default:
			return nil, invalidf("%s.type %q: want tool or approval", f, clip(a.Type))
		}
		out = append(out, in)
	}
	if len(m.Approvals) == 0 {
		if m.Approve == nil {
			return nil, invalidf("%s: an approval needs approvals or approve", field)
		}
		// The older form answers every waiting call at once.
		id, err := s.env.newID("message")
		if err != nil {
			return nil, err
		}
		out = append(out, approvalInput{ResultID: id, Approve: m.Approve, Reason: deref(m.Reason)})
	}
	return out, nil
}

// ---- turns ------------------------------------------------------------------------

// Event is one message of a turn as it happens, numbered by SeqID within
// its run. A Delta is a piece of a message not committed yet (token
// streaming): the committed message is not sent again.
type Event struct {
	Message LettaMessage
	Delta   bool
}

// TurnResult is how a turn ended.
type TurnResult struct {
	RunID      string
	StopReason string
	Usage      Usage
	// Error and ErrorType describe a failure (the stop reasons error,
	// llm_api_error and the like); empty otherwise.
	Error     string
	ErrorType string
}

// Turn is one turn of an agent: a run. Its events are kept for the life
// of the turn (and a while after), so that several readers can follow it.
type Turn struct {
	runID   string
	agentID string

	mu      sync.Mutex
	events  []Event
	done    bool
	result  TurnResult
	changed chan struct{} // closed and replaced whenever something happens
	nextSeq int
}

func newTurn(runID, agentID string) *Turn {
	return &Turn{runID: runID, agentID: agentID, changed: make(chan struct{})}
}

// RunID is the turn's run.
func (t *Turn) RunID() string { return t.runID }

// Events returns the events from index from on, whether the turn is over,
// and a channel closed when there is more to read.
func (t *Turn) Events(from int) (evs []Event, done bool, changed <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if from < len(t.events) {
		evs = t.events[from:len(t.events):len(t.events)]
	}
	return evs, t.done, t.changed
}

// Result is how the turn ended; only meaningful once Events says done.
func (t *Turn) Result() TurnResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result
}

// Response waits for the turn to end and returns its messages (token
// deltas left out) as a LettaResponse.
func (t *Turn) Response(ctx context.Context) (*LettaResponse, error) {
	for {
		_, done, changed := t.Events(0)
		if done {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	evs, _, _ := t.Events(0)
	res := t.Result()
	out := &LettaResponse{Messages: []LettaMessage{}, StopReason: NewStopReason(res.StopReason), Usage: res.Usage}
	for _, e := range evs {
		if !e.Delta {
			out.Messages = append(out.Messages, e.Message)
		}
	}
	return out, nil
}

func (t *Turn) emit(m LettaMessage, delta bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nextSeq++
	seq := t.nextSeq
	m.Base().SeqID = &seq
	t.events = append(t.events, Event{Message: m, Delta: delta})
	close(t.changed)
	t.changed = make(chan struct{})
}

func (t *Turn) finish(res TurnResult) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res.RunID = t.runID
	t.result, t.done = res, true
	close(t.changed)
	t.changed = make(chan struct{})
}

// doneTurn builds a finished turn from a stored run: the answer to a
// repeated request, or the replay of a run no longer in memory.
func doneTurn(run *runRecord, ms []*messageRecord) *Turn {
	t := newTurn(run.ID, run.AgentID)
	for _, m := range ms {
		if m.Input {
			continue
		}
		for _, lm := range m.render() {
			t.emit(lm, false)
		}
	}
	reason := run.StopReason
	res := TurnResult{StopReason: reason, Usage: run.Usage.render(), Error: run.Error}
	if reason == "" {
		// Still running in storage but not here: its turn was cut off.
		res.StopReason, res.Error = StopError, interruptedError
	}
	if res.Error != "" {
		res.ErrorType = errorTypeFor(res.StopReason)
	}
	t.finish(res)
	return t
}

func errorTypeFor(reason string) string {
	switch reason {
	case StopLLMAPIError:
		return "llm_error"
	case StopContextOverflow:
		return "context_window_overflow"
	}
	return "internal_error"
}

// turnManager runs turns: it serialises them per agent and keeps recent
// ones for readers.
type turnManager struct {
	llm          LLMResolver
	defaultModel string
	clock        clock.Clock
	log          *slog.Logger
	retryBackoff time.Duration

	base   context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool                     // no turn may start
	locks       map[string]chan struct{} // agent id -> a one-slot semaphore
	lockRefs    map[string]int
	active      map[string]*activeTurn // by agent id
	recent      map[string]*Turn       // by run id
	recentOrder []string
}

type activeTurn struct {
	turn   *Turn
	convID string
	cancel context.CancelFunc
}

// maxRecentTurns is how many finished turns are kept in memory for readers
// that resume a stream; older ones are rebuilt from storage.
const maxRecentTurns = 256

func newTurnManager(resolver LLMResolver, defaultModel string, clk clock.Clock, log *slog.Logger) *turnManager {
	base, cancel := context.WithCancel(context.Background())
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &turnManager{
		llm: resolver, defaultModel: defaultModel, clock: clk, log: log, base: base, cancel: cancel,
		locks: map[string]chan struct{}{}, lockRefs: map[string]int{},
		active: map[string]*activeTurn{}, recent: map[string]*Turn{},
	}
}

// lock takes the agent's turn lock, waiting for a turn in progress.
func (m *turnManager) lock(ctx context.Context, agentID string) (release func(), err error) {
	m.mu.Lock()
	ch := m.locks[agentID]
	if ch == nil {
		ch = make(chan struct{}, 1)
		m.locks[agentID] = ch
	}
	m.lockRefs[agentID]++
	m.mu.Unlock()
	unref := func() {
		m.mu.Lock()
		if m.lockRefs[agentID]--; m.lockRefs[agentID] == 0 {
			delete(m.lockRefs, agentID)
			delete(m.locks, agentID)
		}
		m.mu.Unlock()
	}
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		unref()
		return nil, ctx.Err()
	case <-m.base.Done():
		unref()
		return nil, errServiceClosing
	}
	var once sync.Once
	return func() { once.Do(func() { <-ch; unref() }) }, nil
}

// TurnStats counts what the turn manager holds at one moment.
type TurnStats struct {
	Running   int // turns running
	LocksHeld int // agents whose turn lock is taken
	Waiting   int // requests waiting for an agent's turn lock
}

func (m *turnManager) stats() TurnStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := TurnStats{Running: len(m.active)}
	for id, ch := range m.locks {
		held := len(ch)
		st.LocksHeld += held
		st.Waiting += m.lockRefs[id] - held
	}
	return st
}

var errServiceClosing = &Error{Kind: KindUnavailable, Message: "the server is shutting down"}

func (m *turnManager) remember(t *Turn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recent[t.runID]; ok {
		return
	}
	m.recent[t.runID] = t
	m.recentOrder = append(m.recentOrder, t.runID)
	for len(m.recentOrder) > maxRecentTurns {
		old := m.recentOrder[0]
		m.recentOrder = m.recentOrder[1:]
		if rt := m.recent[old]; rt != nil {
			if _, done, _ := rt.Events(0); !done {
				// Still running: keep it, and look again next time.
				m.recentOrder = append(m.recentOrder, old)
				break
			}
		}
		delete(m.recent, old)
	}
}

func (m *turnManager) close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("agent: close: turns still running: %w", ctx.Err())
	}
}

// handleOf is the model handle an agent uses.
func handleOf(rec *agentRecord) string {
	if h := deref(rec.LLMConfig.Handle); h != "" {
		return h
	}
	return rec.LLMConfig.ModelEndpointType + "/" + rec.LLMConfig.Model
}

// resolve finds the provider of a model handle, or a clear error saying
// what to configure.
func (m *turnManager) resolve(agentID, handle string) (llm.Provider, string, error) {
	provider, _, _ := strings.Cut(handle, "/")
	if m.llm == nil {
		return nil, "", &Error{Kind: KindUnavailable, Message: fmt.Sprintf(
			"No LLM provider is configured, so agent %s (model %q) cannot answer messages. Configure a provider for %q (for example set %s) and restart kelpie.",
			agentID, handle, provider, providerEnvHint(provider))}
	}
	p, model, err := m.llm.Resolve(handle)
	if err != nil {
		return nil, "", &Error{Kind: KindUnavailable, Message: fmt.Sprintf(
			"Agent %s cannot answer messages: its model %q has no configured provider (%v). Configure a provider for %q (for example set %s), or change the agent's model.",
			agentID, handle, err, provider, providerEnvHint(provider))}
	}
	return p, model, nil
}

func providerEnvHint(provider string) string {
	switch provider {
	case "anthropic":
		return "ANTHROPIC_API_KEY"
	case "ollama":
		return "OLLAMA_BASE_URL"
	case "vllm":
		return "VLLM_API_BASE"
	}
	return "OPENAI_API_KEY"
}

// SendMessage starts a turn: it validates the request, waits for the
// agent's previous turn to end, and commits the request's messages. The turn
// then runs on its own (a client that goes away does not stop it); follow it
// with Turn.Events or Turn.Response. A request repeating an otid or
// Idempotency-Key already answered gets that run's turn back, finished,
// without running anything.
//
// convID is empty for the agent's default conversation.
func (s *Service) SendMessage(ctx context.Context, agentID, convID string, req MessageRequest) (*Turn, error) {
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	if convID != "" {
		if err := checkID("conversation_id", "conv", convIDPattern, convID); err != nil {
			return nil, err
		}
	}
	p, err := s.parseRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	m := s.turns
	var rec *agentRecord
	if err := s.read(ctx, func(txn kv.Txn) (err error) {
		rec, err = readAgent(txn, agentID)
		return err
	}); err != nil {
		return nil, err
	}
	handle := handleOf(rec)
	if req.OverrideModel != nil && *req.OverrideModel != "" {
		handle = *req.OverrideModel
	}
	provider, model, err := m.resolve(agentID, handle)
	if err != nil {
		return nil, err
	}
	runID, err := s.env.newID("run")
	if err != nil {
		return nil, err
	}

	release, err := m.lock(ctx, agentID)
	if err != nil {
		return nil, err
	}
	if m.base.Err() != nil {
		release()
		return nil, errServiceClosing
	}
	var begun beginResult
	bp := beginPayload{RunID: runID, ConversationID: convID, Keys: p.keys, Inputs: p.inputs, Approvals: p.approvals, Background: req.Background}
	if err := s.invokeTurn(ctx, agentID, opTurnBegin, bp, &begun); err != nil {
		release()
		return nil, err
	}
	if d := begun.Duplicate; d != nil {
		release()
		return doneTurn(&d.Run, d.Messages), nil
	}

	t := newTurn(runID, agentID)
	llmCtx, cancel := context.WithCancel(m.base)
	r := &turnRun{
		svc: s, turn: t, agentID: agentID, convID: convID, provider: provider, model: model,
		streamTokens: req.StreamTokens && req.Streaming != nil && *req.Streaming, maxSteps: p.maxSteps,
		client: p.client, ctx: llmCtx, streamed: map[string]string{},
	}
	m.mu.Lock()
	if m.closed {
		// Closing began after the inputs were committed: the run stays
		// open in storage and the agent's next turn closes it.
		m.mu.Unlock()
		cancel()
		release()
		return nil, errServiceClosing
	}
	m.active[agentID] = &activeTurn{turn: t, convID: convID, cancel: cancel}
	m.wg.Add(1)
	m.mu.Unlock()
	m.remember(t)
	for _, msg := range begun.Appended {
		for _, lm := range msg.render() {
			t.emit(lm, false)
		}
	}
	go func() {
		defer m.wg.Done()
		defer release()
		defer cancel()
		res := r.run()
		m.mu.Lock()
		if a := m.active[agentID]; a != nil && a.turn == t {
			delete(m.active, agentID)
		}
		m.mu.Unlock()
		t.finish(res)
	}()
	return t, nil
}

// StreamTurn returns the turn of a run to follow: the live one if it is in
// memory, else one rebuilt from storage (finished).
func (s *Service) StreamTurn(ctx context.Context, runID string) (*Turn, error) {
	if err := checkID("run_id", "run", runIDPattern, runID); err != nil {
		return nil, err
	}
	s.turns.mu.Lock()
	t := s.turns.recent[runID]
	s.turns.mu.Unlock()
	if t != nil {
		return t, nil
	}
	err := s.read(ctx, func(txn kv.Txn) error {
		run, err := readRun(txn, runID)
		if err != nil {
			return err
		}
		ms, err := runMessageRecords(txn, run)
		if err != nil {
			return err
		}
		t = doneTurn(run, ms)
		return nil
	})
	return t, err
}

// StreamConversation returns the turn of a conversation's latest run (see
// StreamTurn).
func (s *Service) StreamConversation(ctx context.Context, convID string) (*Turn, error) {
	if err := checkID("conversation_id", "conv", convIDPattern, convID); err != nil {
		return nil, err
	}
	var runID string
	if err := s.read(ctx, func(txn kv.Txn) error {
		c, err := readConversation(txn, convID)
		if err != nil {
			return err
		}
		runID = c.LastRunID
		return nil
	}); err != nil {
		return nil, err
	}
	if runID == "" {
		return nil, &Error{Kind: KindNotFound, Message: fmt.Sprintf("Conversation %s has no runs", convID)}
	}
	return s.StreamTurn(ctx, runID)
}

// CancelRuns cancels an agent's turn in progress (when runIDs is empty or
// names it), or the one of a conversation when convID is set. The turn stops
// at its next step with stop reason cancelled. It returns the cancelled
// runs.
func (s *Service) CancelRuns(ctx context.Context, agentID, convID string, runIDs []string) (map[string]string, error) {
	if convID != "" {
		c, err := s.GetConversation(ctx, convID)
		if err != nil {
			return nil, err
		}
		agentID = c.AgentID
	}
	if err := checkAgentID("agent_id", agentID); err != nil {
		return nil, err
	}
	if _, err := s.GetAgent(ctx, agentID, false); err != nil {
		return nil, err
	}
	out := map[string]string{}
	m := s.turns
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.active[agentID]; a != nil && (convID == "" || a.convID == convID) &&
		(len(runIDs) == 0 || slices.Contains(runIDs, a.turn.runID)) {
		a.cancel()
		out[a.turn.runID] = RunCancelled
	}
	return out, nil
}

// ModelInfo is a model the server can use.
type ModelInfo = llm.ModelInfo

// ListModels lists the models of the configured providers, and the default
// model when its provider is configured.
func (s *Service) ListModels(ctx context.Context) []ModelInfo {
	m := s.turns
	var out []ModelInfo
	if c, ok := m.llm.(modelCatalog); ok && m.llm != nil {
		out = c.Models(ctx)
	}
	if m.defaultModel != "" && m.llm != nil {
		if _, _, err := m.llm.Resolve(m.defaultModel); err == nil &&
			!slices.ContainsFunc(out, func(mi ModelInfo) bool { return mi.Handle == m.defaultModel }) {
			provider, name, _ := strings.Cut(m.defaultModel, "/")
			out = append([]ModelInfo{{Handle: m.defaultModel, Provider: provider, Name: name}}, out...)
		}
	}
	return out
}

// invokeTurn runs a turn operation on the agent's actor. Turn operations
// carry their own idempotency (otids, run ids), so a request's
// Idempotency-Key is not applied to them.
func (s *Service) invokeTurn(ctx context.Context, agentID, op string, payload, out any) error {
	return s.invoke(context.WithValue(ctx, idempotencyKeyType{}, ""), agentActor(agentID), op, payload, out)
}

// ---- the loop ---------------------------------------------------------------------

// turnRun is a turn in progress.
type turnRun struct {
	svc          *Service
	turn         *Turn
	agentID      string
	convID       string
	provider     llm.Provider
	model        string
	streamTokens bool
	maxSteps     int
	client       []ClientTool
	ctx          context.Context // for model calls; cancelled by cancel and Close
	usage        usageRecord
	// streamed maps the otid of each message part sent as token deltas to
	// its message type, so that the committed part is not sent again.
	streamed map[string]string
}

// Commits go through the actor with a context of their own: a turn that is
// cancelled or whose client left still records how it ended.
func (r *turnRun) commitCtx() context.Context { return context.Background() }

func (r *turnRun) run() TurnResult {
	for step := 1; ; step++ {
		if r.ctx.Err() != nil {
			return r.end(StopCancelled, "")
		}
		res, err := r.step(step)
		if err != nil {
			var se *stepError
			if errors.As(err, &se) {
				return r.end(se.reason, se.msg)
			}
			if r.ctx.Err() != nil {
				return r.end(StopCancelled, "")
			}
			r.svc.turns.log.Error("agent: turn step failed", "agent", r.agentID, "run", r.turn.runID, "error", err)
			return r.end(StopError, err.Error())
		}
		if res.StopReason != "" {
			return TurnResult{StopReason: res.StopReason, Usage: r.usage.render()}
		}
	}
}

// stepError stops a turn with a stop reason of its own.
type stepError struct {
	reason, msg string
}

func (e *stepError) Error() string { return e.reason + ": " + e.msg }

// end closes the run with reason and returns the turn's result.
func (r *turnRun) end(reason, msg string) TurnResult {
	err := r.svc.invokeTurn(r.commitCtx(), r.agentID, opTurnEnd, endPayload{RunID: r.turn.runID, StopReason: reason, Error: msg}, nil)
	if err != nil {
		// The run stays open in storage; the agent's next turn closes it.
		r.svc.turns.log.Error("agent: could not record the end of a turn", "agent", r.agentID, "run", r.turn.runID, "error", err)
		if msg == "" {
			msg = err.Error()
		}
	}
	res := TurnResult{StopReason: reason, Usage: r.usage.render(), Error: msg}
	if msg != "" {
		res.ErrorType = errorTypeFor(reason)
	}
	return res
}

// maxContextRetries is how often a step is retried with a smaller history
// after the provider said the prompt did not fit.
const maxContextRetries = 2

// Retries of a model call that failed transiently (rate limit, 5xx,
// timeout, a dropped connection) before any of its answer reached a client.
const (
	maxTransientRetries    = 3
	DefaultLLMRetryBackoff = 500 * time.Millisecond // doubled per retry
	maxLLMRetryWait        = 10 * time.Second       // a longer Retry-After ends the turn
)

func (r *turnRun) step(step int) (*stepResult, error) {
	var (
		resp    *llm.Response
		built   *builtRequest
		asstID  string
		stepID  string
		memgpt  bool
		lastErr error
	)
	for contextRetries, transientRetries := 0, 0; ; {
		var err error
		built, err = r.svc.buildRequest(r.ctx, r, 1.0/float64(int(1)<<contextRetries))
		if err != nil {
			return nil, err
		}
		memgpt = isMemGPT(built.agentType)
		if asstID, err = r.svc.env.newID("message"); err != nil {
			return nil, err
		}
		if stepID, err = r.svc.env.newID("step"); err != nil {
			return nil, err
		}
		streamed := false
		var onDelta func(llm.Delta)
		if r.streamTokens {
			sink := r.deltaSink(asstID, stepID, memgpt)
			onDelta = func(d llm.Delta) { streamed = true; sink(d) }
		}
		resp, err = r.provider.Complete(r.ctx, built.req, onDelta)
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = err
		if r.ctx.Err() != nil {
			return nil, &stepError{StopCancelled, ""}
		}
		var le *llm.Error
		if errors.As(err, &le) && le.ContextExceeded && contextRetries < maxContextRetries {
			contextRetries++
			continue
		}
		// A transient failure is asked again, unless part of the answer
		// was already streamed: a second answer would not match it.
		if !llm.IsRetryable(err) || streamed || transientRetries == maxTransientRetries {
			break
		}
		wait := min(r.svc.turns.retryBackoff<<transientRetries, maxLLMRetryWait)
		if le != nil && le.RetryAfter > 0 {
			if le.RetryAfter > maxLLMRetryWait {
				break // the caller is better told now than kept waiting
			}
			wait = le.RetryAfter
		}
		transientRetries++
		select {
		case <-r.svc.turns.clock.After(wait):
		case <-r.ctx.Done():
			return nil, &stepError{StopCancelled, ""}
		}
	}
	if lastErr != nil {
		return nil, &stepError{StopLLMAPIError, lastErr.Error()}
	}
	r.usage.PromptTokens += resp.Usage.PromptTokens
	r.usage.CompletionTokens += resp.Usage.CompletionTokens
	r.usage.Steps++

	clientNames := map[string]bool{}
	for _, c := range r.client {
		clientNames[c.Name] = true
	}
	msg := messageRecord{ID: asstID, StepID: stepID, Text: resp.Content, Reasoning: resp.Reasoning}
	resultIDs := make([]string, len(resp.ToolCalls))
	used := map[string]bool{}
	for i, tc := range resp.ToolCalls {
		id := tc.ID
		if id == "" || used[id] {
			// No id, or the id of an earlier call of this response (some
			// OpenAI-compatible servers repeat ids): its result would
			// share that call's message id.
			id = derivedID("call", asstID, fmt.Sprint(i))
		}
		used[id] = true
		msg.ToolCalls = append(msg.ToolCalls, storedToolCall{ID: id, Name: tc.Name, Arguments: tc.Arguments, Client: clientNames[tc.Name]})
		resultIDs[i] = derivedID("message", "result", asstID, id)
	}
	msg.ThoughtsInText = memgpt && len(msg.ToolCalls) > 0
	payload := stepPayload{
		RunID: r.turn.runID, Message: msg, ResultIDs: resultIDs,
		Usage:     usageRecord{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens, ContextTokens: built.tokens},
		ModelStop: string(resp.StopReason), LastStep: step >= r.maxSteps,
	}
	var res stepResult
	if err := r.svc.invokeTurn(r.commitCtx(), r.agentID, opTurnStep, payload, &res); err != nil {
		return nil, err
	}
	for _, m := range res.Messages {
		for _, lm := range m.render() {
			b := lm.Base()
			if b.ID == asstID && b.Otid != nil && r.streamed[*b.Otid] == b.MessageType {
				continue
			}
			r.turn.emit(lm, false)
		}
	}
	return &res, nil
}

// deltaSink sends streamed text as message deltas, under the id and otids
// the committed message will have.
func (r *turnRun) deltaSink(asstID, stepID string, memgpt bool) func(llm.Delta) {
	base := func(msgType string, slot int) MessageBase {
		otid := subOtid(asstID, slot)
		r.streamed[otid] = msgType
		return MessageBase{
			ID: asstID, Date: LettaDate{r.svc.turns.clock.Now()}, MessageType: msgType,
			Otid: &otid, StepID: ptr(stepID), RunID: ptr(r.turn.runID),
		}
	}
	return func(d llm.Delta) {
		if d.Reasoning != "" {
			r.turn.emit(&ReasoningMessage{MessageBase: base(TypeReasoning, slotReasoning), Source: "reasoner_model", Reasoning: d.Reasoning}, true)
		}
		if d.Content != "" {
			if memgpt {
				r.turn.emit(&ReasoningMessage{MessageBase: base(TypeReasoning, slotText), Source: "non_reasoner_model", Reasoning: d.Content}, true)
			} else {
				r.turn.emit(&AssistantMessage{MessageBase: base(TypeAssistant, slotText), Content: d.Content}, true)
			}
		}
	}
}

// ---- the context window ------------------------------------------------------------

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
const maxContextMessages = 2000

func estimateTokens(s string) int { return (len(s) + 3) / 4 }

func llmMessageTokens(m llm.Message) int {
	n := 4 + estimateTokens(m.Content)
	for _, tc := range m.ToolCalls {
		n += 4 + estimateTokens(tc.Name) + estimateTokens(tc.Arguments)
	}
	return n
}

type builtRequest struct {
	req       llm.Request
	agentType string
	tokens    int // estimated prompt size
}

func (s *Service) buildRequest(ctx context.Context, r *turnRun, budgetFactor float64) (*builtRequest, error) {
	var out *builtRequest
	err := s.read(ctx, func(txn kv.Txn) error {
		rec, err := readAgent(txn, r.agentID)
		if err != nil {
			return err
		}
		blocks, err := agentBlocks(txn, r.agentID)
		if err != nil {
			return err
		}
		passages, err := allPassages(txn, r.agentID)
		if err != nil {
			return err
		}
		total, err := lastSeq(txn, r.agentID)
		if err != nil {
			return err
		}
		units, scanned, err := historyUnits(txn, r.agentID, r.convID)
		if err != nil {
			return err
		}

		tools := toolsFor(rec, r.client)
		toolTokens := 0
		for _, t := range tools {
			toolTokens += 8 + estimateTokens(t.Name) + estimateTokens(t.Description) + estimateTokens(string(t.Parameters))
		}
		window := rec.LLMConfig.ContextWindow
		if window <= 0 {
			window = DefaultContextWindow
		}
		maxOut := 4096
		if rec.LLMConfig.MaxTokens != nil && *rec.LLMConfig.MaxTokens > 0 {
			maxOut = *rec.LLMConfig.MaxTokens
		}
		reserve := min(maxOut, window/4)

		// Choose the history first (the metadata counts what was left
		// out), assuming the metadata's size with generous margin.
		recompiled := rec.UpdatedAt
		for _, b := range blocks {
			if b.block.UpdatedAt.After(recompiled) {
				recompiled = b.block.UpdatedAt
			}
		}
		meta := promptMeta{conversationID: r.convID, recompiled: recompiled, passages: len(passages), passageTags: passageTags(passages)}
		system := compileSystemPrompt(rec, blocks, meta)
		const metaSlack = 64
		available := window - reserve - (4 + estimateTokens(system) + metaSlack) - toolTokens
		if available < 0 {
			return &stepError{StopContextOverflow, fmt.Sprintf(
				"the system prompt and tools take about %d tokens, more than the %d-token context window leaves after reserving %d for the answer",
				estimateTokens(system)+toolTokens, window, reserve)}
		}
		budget := int(float64(available) * budgetFactor)

		var chosen [][]llm.Message
		used, included := 0, 0
		for _, u := range units { // newest first
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
		meta.previousMessages = max(int(total)-included, 0)
		meta.droppedMessages = scanned - included
		system = compileSystemPrompt(rec, blocks, meta)

		req := llm.Request{Model: r.model, Tools: tools, MaxTokens: reserve}
		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleSystem, Content: system})
		for i := len(chosen) - 1; i >= 0; i-- {
			req.Messages = append(req.Messages, chosen[i]...)
		}
		out = &builtRequest{req: req, agentType: rec.AgentType, tokens: 4 + estimateTokens(system) + toolTokens + used}
		return nil
	})
	return out, err
}

// historyUnit is a piece of history never split: a user or system message,
// or an assistant message with the tool results answering it.
type historyUnit struct{ msgs []*messageRecord }

func (u historyUnit) current(runID string) bool {
	for _, m := range u.msgs {
		if m.RunID == runID {
			return true
		}
	}
	return false
}

func (u historyUnit) llmMessages() []llm.Message {
	var out []llm.Message
	lead := u.msgs[0]
	switch lead.Role {
	case roleUser:
		return []llm.Message{{Role: llm.RoleUser, Content: lead.Text}}
	case roleSystem:
		return []llm.Message{{Role: llm.RoleSystem, Content: lead.Text}}
	}
	am := llm.Message{Role: llm.RoleAssistant, Content: lead.Text}
	for _, tc := range lead.ToolCalls {
		am.ToolCalls = append(am.ToolCalls, llm.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
	}
	if am.Content == "" && len(am.ToolCalls) == 0 {
		return nil // an empty answer: nothing to show the model
	}
	out = append(out, am)
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
	prefix := msgPrefix(agentID)
	if convID != "" {
		prefix = convMsgPrefix(convID)
	}
	var tools []*messageRecord // results waiting for their call, newest first
	err = scanEach(txn, kv.PrefixRange(prefix), true, func(key []byte) (bool, error) {
		m, err := messageAt(txn, agentID, convID, key)
		if err != nil {
			return false, err
		}
		if convID == "" && m.ConversationID != "" {
			return true, nil // another conversation's
		}
		scanned++
		switch m.Role {
		case roleTool:
			tools = append(tools, m)
		case roleAssistant:
			slices.Reverse(tools)
			units = append(units, historyUnit{msgs: append([]*messageRecord{m}, tools...)})
			tools = nil
		default:
			tools = nil // results whose call is gone: never sent alone
			units = append(units, historyUnit{msgs: []*messageRecord{m}})
		}
		return scanned < maxContextMessages, nil
	})
	return units, scanned, err
}
