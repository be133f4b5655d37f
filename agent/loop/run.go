package loop

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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

// turnRun is a turn in progress.
type turnRun struct {
	m            *Manager
	turn         *Turn
	agentID      string
	convID       string
	firstSeq     uint64        // the turn's first message: it and all after stay in context
	built        *builtRequest // the next step's request, built by compactIfOver
	provider     llm.Provider
	model        string
	streamTokens bool
	maxSteps     int
	client       []letta.ClientTool
	ctx          context.Context // for model calls; cancelled by Cancel and Close
	cancel       context.CancelFunc
	// agent is the agent as Begin left it, and first the context Begin
	// read, for the first step's request; nil when Begin read none (the
	// request is then read from the store).
	agent *schema.Agent
	first *contextInputs
	// beginDurable, when the turn began before Begin's commit was
	// durable, waits for it (see begun).
	beginDurable func() error
	beginOnce    sync.Once
	beginErr     error
	usage        schema.Usage
	// streamed maps the otid of each message part sent as token deltas to
	// its message type, so that the committed part is not sent again.
	streamed map[string]string
	// called are the tools the turn has called within its tool rules,
	// in order, and lastOutput the text of its last tool result: what
	// the rules allow next depends on them.
	called     []string
	lastOutput *string
	// approved are calls of custom tools the turn's approval reply
	// approved (of assistant message approvedFor): it runs them first.
	approved    []DeferredCall
	approvedFor string
	// embedding is the model handle of the agent's passages.
	embedding string
}

// embedCalls embeds the texts of calls that embed one (archival insert and
// search), before the step's commit: no model is called inside the actor.
// A provider missing or failing leaves the calls to work by words alone,
// and says why.
func (r *turnRun) embedCalls(ctx context.Context, calls []schema.ToolCall) (map[string]*memory.Embedded, string) {
	var texts []string
	for _, tc := range calls {
		if t := tool.EmbeddingText(tc); t != "" && !slices.Contains(texts, t) {
			texts = append(texts, t)
		}
	}
	if len(texts) == 0 {
		return nil, ""
	}
	embs, why, err := memory.Embed(ctx, r.m.cfg.Embedder, r.embedding, texts)
	if err != nil {
		r.m.cfg.Logger.WarnContext(ctx, "agent: embedding failed", "agent", r.agentID, "run", r.turn.runID, "error", err)
		return nil, err.Error() + ": passages are ranked by matching words only"
	}
	if embs == nil {
		return nil, why
	}
	out := make(map[string]*memory.Embedded, len(texts))
	for i, t := range texts {
		out[t] = embs[i]
	}
	return out, ""
}

// embedApproved embeds, before the turn begins, the texts of the calls
// waiting for approval when the reply approves any: Begin runs them.
func (r *turnRun) embedApproved(ctx context.Context, approvals []Approval) (map[string]*memory.Embedded, string, error) {
	if !slices.ContainsFunc(approvals, func(a Approval) bool { return a.Approve != nil && *a.Approve }) {
		return nil, "", nil
	}
	var waiting []schema.ToolCall
	err := r.m.cfg.Store.Read(ctx, func(txn kv.Txn) error {
		t, err := readTail(txn, r.agentID)
		for _, tc := range t.missing {
			if tc.Approval {
				waiting = append(waiting, tc)
			}
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	embs, why := r.embedCalls(ctx, waiting)
	return embs, why, nil
}

// begun waits, once, for Begin's commit to be durable when the turn began
// before it was (Manager.begin): nothing of the turn is emitted or
// committed before. An error is the commit's: Start refuses the turn.
func (r *turnRun) begun() error {
	r.beginOnce.Do(func() {
		if r.beginDurable != nil {
			r.beginErr = r.beginDurable()
		}
	})
	return r.beginErr
}

// request builds a step's request with the whole history budget: the
// first from the context Begin read, the others from the store.
func (r *turnRun) request() (*builtRequest, error) {
	in := r.first
	if in == nil {
		return r.buildRequest(1)
	}
	r.first = nil
	in.agent = r.agent
	return r.fit(in, 1)
}

// commitCtx is the context of the turn's commits: a turn that is
// cancelled, or whose client left, still records how it ended.
func (r *turnRun) commitCtx() context.Context { return context.WithoutCancel(r.ctx) }

func (r *turnRun) run() Result {
	if len(r.approved) > 0 {
		res, err := r.runDeferred(r.approvedFor, r.approved, "", false, nil)
		if err != nil {
			return r.end(letta.StopError, err.Error())
		}
		r.emitCommitted("", res.Messages)
		r.noteOutput(res.Messages)
		if res.StopReason != "" {
			return Result{StopReason: res.StopReason, Usage: r.usage.Statistics()}
		}
	}
	for step := 1; ; step++ {
		if r.ctx.Err() != nil {
			return r.end(letta.StopCancelled, "")
		}
		res, err := r.step(step)
		if err != nil {
			var se *stepError
			if errors.As(err, &se) {
				return r.end(se.reason, se.msg)
			}
			if r.ctx.Err() != nil {
				return r.end(letta.StopCancelled, "")
			}
			return r.end(letta.StopError, err.Error())
		}
		if res.StopReason != "" {
			return Result{StopReason: res.StopReason, Usage: r.usage.Statistics()}
		}
	}
}

// stepError stops a turn with a stop reason of its own.
type stepError struct {
	reason, msg string
}

func (e *stepError) Error() string { return e.reason + ": " + e.msg }

// end closes the run with reason and returns the turn's result. A failure
// is logged with the context of the request that started the turn, so that
// a handler can tell which request it answered (a non-streaming response
// carries only the stop reason).
func (r *turnRun) end(reason, msg string) Result {
	if err := r.begun(); err != nil {
		// Start refused the turn: nothing of it is stored to close.
		return Result{StopReason: letta.StopError, Error: err.Error(), ErrorType: errorTypeFor(letta.StopError)}
	}
	if msg != "" {
		r.m.cfg.Logger.ErrorContext(r.ctx, "agent: turn failed", "agent", r.agentID, "run", r.turn.runID, "stop_reason", reason, "error", msg)
	}
	err := r.m.cfg.Store.Invoke(r.commitCtx(), r.agentID, OpEnd, EndPayload{RunID: r.turn.runID, StopReason: reason, Error: msg}, nil)
	if err != nil {
		// The run stays open in storage; the agent's next turn closes it.
		r.m.cfg.Logger.ErrorContext(r.ctx, "agent: could not record the end of a turn", "agent", r.agentID, "run", r.turn.runID, "error", err)
		if msg == "" {
			msg = err.Error()
		}
	}
	res := Result{StopReason: reason, Usage: r.usage.Statistics(), Error: msg}
	if msg != "" {
		res.ErrorType = errorTypeFor(reason)
		r.m.counts.failed.Add(1)
	}
	return res
}

// step asks the model once and commits its answer.
func (r *turnRun) step(step int) (*stepResult, error) {
	start := r.m.cfg.Clock.Now()
	r.compactIfOver()
	answer, err := r.ask()
	if err != nil {
		return nil, err
	}
	resp := answer.resp
	r.usage.PromptTokens += resp.Usage.PromptTokens
	r.usage.CompletionTokens += resp.Usage.CompletionTokens
	r.usage.Steps++
	msg, resultIDs := r.assistantMessage(answer)
	payload := StepPayload{
		RunID: r.turn.runID, Message: msg, ResultIDs: resultIDs,
		Usage:     schema.Usage{PromptTokens: resp.Usage.PromptTokens, CompletionTokens: resp.Usage.CompletionTokens, ContextTokens: answer.built.tokens},
		ModelStop: string(resp.StopReason), LastStep: step >= r.maxSteps,
		Timing: StepTiming{Start: start, LLMStart: answer.llmStart, LLMNanos: answer.llmNanos, Model: answer.built.req.Model},
		Rules:  &answer.built.rules,
	}
	payload.Embeddings, payload.NoVector = r.embedCalls(r.ctx, msg.ToolCalls)
	if err := r.begun(); err != nil {
		return nil, err
	}
	var res stepResult
	if err := r.m.cfg.Store.Invoke(r.commitCtx(), r.agentID, OpStep, payload, &res); err != nil {
		return nil, err
	}
	r.m.counts.steps.Add(1)
	r.m.counts.toolCalls.Add(uint64(len(resp.ToolCalls)))
	r.m.history.keep(r.agentID, res.Messages)
	r.emitCommitted(answer.asstID, res.Messages)
	r.called = append(r.called, res.Called...)
	r.noteOutput(res.Messages)
	if len(res.Deferred) == 0 {
		return &res, nil
	}
	done, err := r.runDeferred(answer.asstID, res.Deferred, payload.ModelStop, payload.LastStep, payload.Rules)
	if err != nil {
		return nil, err
	}
	r.emitCommitted(answer.asstID, done.Messages)
	r.noteOutput(done.Messages)
	return done, nil
}

// solver applies the agent's tool rules to the turn so far.
func (r *turnRun) solver(a *schema.Agent) tool.Solver {
	return tool.Solver{Rules: tool.StoredRules(a.ToolRules), Called: r.called, LastOutput: r.lastOutput}
}

// noteOutput remembers the text of the last tool result among committed
// messages: a conditional tool rule chooses what follows by it.
func (r *turnRun) noteOutput(ms []*schema.Message) {
	for _, m := range slices.Backward(ms) {
		if m.Role == schema.RoleTool {
			r.lastOutput = &m.Text
			return
		}
	}
}

// emitCommitted emits a step's committed messages, but for the parts of
// the assistant message already sent as deltas.
func (r *turnRun) emitCommitted(asstID string, ms []*schema.Message) {
	for _, m := range ms {
		for _, lm := range message.Render(m) {
			b := lm.Base()
			if b.ID == asstID && b.Otid != nil && r.streamed[*b.Otid] == b.MessageType {
				continue // already sent as deltas
			}
			r.turn.emit(lm, false)
		}
	}
}

// compactIfOver compacts the turn's context when its history does not all
// fit in the next request. A compaction that fails changes nothing (see
// compact.go): the step then leaves the oldest history out instead.
func (r *turnRun) compactIfOver() {
	built, err := r.request()
	if err != nil || built.dropped == 0 || r.begun() != nil {
		r.built = built // the step's request, unless it failed: the step reports that
		return
	}
	res, err := r.m.compact(r.ctx, r.agentID, r.convID, r.turn.runID, CompactionSettings{}, r.firstSeq, r.provider, r.model)
	if err != nil {
		r.m.cfg.Logger.WarnContext(r.ctx, "agent: could not compact the context; its oldest history is left out of this step instead",
			"agent", r.agentID, "run", r.turn.runID, "error", err)
		return
	}
	// The summary is one of the run's messages: the client gets it when
	// it is committed, as Letta yields its summary message, so that the
	// live answer and a replay of the run agree.
	if res != nil && res.stored != nil {
		r.turn.emitStored([]*schema.Message{res.stored})
	}
}

// answer is one model response, with the request that got it and the ids
// it was streamed under.
type answer struct {
	resp           *llm.Response
	built          *builtRequest
	asstID, stepID string
	memgpt         bool
	// llmStart and llmNanos time the model call that answered.
	llmStart time.Time
	llmNanos int64
}

// maxContextRetries is how often a step is retried with a smaller history
// after the provider said the prompt did not fit.
const maxContextRetries = 2

// ask calls the model, retrying with a smaller history when the prompt did
// not fit and after a transient failure (with doubling backoff, or the
// provider's Retry-After) unless part of the answer was already streamed.
func (r *turnRun) ask() (*answer, error) {
	var lastErr error
	for contextRetries, transientRetries := 0, 0; ; {
		a, streamed, err := r.askOnce(1.0 / float64(int(1)<<contextRetries))
		if err == nil {
			return a, nil
		}
		var se *stepError
		if errors.As(err, &se) || a == nil {
			return nil, err // not the model's failure
		}
		lastErr = err
		if r.ctx.Err() != nil {
			return nil, &stepError{letta.StopCancelled, ""}
		}
		var le *llm.Error
		if errors.As(err, &le) && le.ContextExceeded && contextRetries < maxContextRetries {
			contextRetries++
			continue
		}
		if !llm.IsRetryable(err) || streamed || transientRetries == maxTransientRetries {
			break // a second answer would not match what was streamed
		}
		wait := min(r.m.cfg.RetryBackoff<<transientRetries, maxLLMRetryWait)
		if le != nil && le.RetryAfter > 0 {
			if le.RetryAfter > maxLLMRetryWait {
				break // the caller is better told now than kept waiting
			}
			wait = le.RetryAfter
		}
		transientRetries++
		select {
		case <-r.m.cfg.Clock.After(wait):
		case <-r.ctx.Done():
			return nil, &stepError{letta.StopCancelled, ""}
		}
	}
	// The client is told the provider's own words (lastErr's message); the
	// log has the whole cause.
	var le *llm.Error
	if errors.As(lastErr, &le) && le.Err != nil {
		r.m.cfg.Logger.WarnContext(r.ctx, "agent: model call failed", "agent", r.agentID, "run", r.turn.runID, "error", lastErr, "cause", le.Err)
	}
	return nil, &stepError{letta.StopLLMAPIError, lastErr.Error()}
}

// askOnce builds the request, with budgetFactor of the history budget, and
// calls the model once. On a model failure it returns the (incomplete)
// answer with the error, and whether any of it was streamed.
func (r *turnRun) askOnce(budgetFactor float64) (a *answer, streamed bool, err error) {
	built := r.built
	r.built = nil
	if built == nil || budgetFactor != 1 {
		if built, err = r.buildRequest(budgetFactor); err != nil {
			return nil, false, err
		}
	}
	a = &answer{built: built, memgpt: prompt.IsMemGPT(built.agentType)}
	if a.asstID, err = r.m.cfg.NewID("message"); err != nil {
		return nil, false, err
	}
	if a.stepID, err = r.m.cfg.NewID("step"); err != nil {
		return nil, false, err
	}
	var onDelta func(llm.Delta)
	if r.streamTokens {
		sink := r.deltaSink(a.asstID, a.stepID, a.memgpt)
		onDelta = func(d llm.Delta) { streamed = true; sink(d) }
	}
	a.llmStart = r.m.cfg.Clock.Now()
	a.resp, err = r.provider.Complete(r.ctx, built.req, onDelta)
	a.llmNanos = r.m.cfg.Clock.Now().Sub(a.llmStart).Nanoseconds()
	return a, streamed, err
}

// assistantMessage stores a model response as an assistant message, with
// an id for each tool call (unique within the response) and for its result.
func (r *turnRun) assistantMessage(a *answer) (schema.Message, []string) {
	resp := a.resp
	msg := schema.Message{ID: a.asstID, StepID: a.stepID, Text: resp.Content, Reasoning: resp.Reasoning}
	resultIDs := make([]string, len(resp.ToolCalls))
	used := map[string]bool{}
	for i, tc := range resp.ToolCalls {
		id := tc.ID
		if id == "" || used[id] {
			// No id, or the id of an earlier call of this response (some
			// OpenAI-compatible servers repeat ids): its result would
			// share that call's message id.
			id = letta.DerivedID("call", a.asstID, fmt.Sprint(i))
		}
		used[id] = true
		client := false
		for _, c := range r.client {
			client = client || c.Name == tc.Name
		}
		msg.ToolCalls = append(msg.ToolCalls, schema.ToolCall{ID: id, Name: tc.Name, Arguments: tc.Arguments, Client: client})
		resultIDs[i] = letta.DerivedID("message", "result", a.asstID, id)
	}
	msg.ThoughtsInText = a.memgpt && len(msg.ToolCalls) > 0
	return msg, resultIDs
}

// deltaSink sends streamed text as message deltas, under the id and otids
// the committed message will have.
func (r *turnRun) deltaSink(asstID, stepID string, memgpt bool) func(llm.Delta) {
	base := func(msgType string, slot int) letta.MessageBase {
		otid := message.SubOtid(asstID, slot)
		r.streamed[otid] = msgType
		return letta.MessageBase{
			ID: asstID, Date: letta.MessageDate{Time: r.m.cfg.Clock.Now()}, MessageType: msgType,
			Otid: &otid, StepID: new(stepID), RunID: new(r.turn.runID),
		}
	}
	return func(d llm.Delta) {
		if r.begun() != nil {
			return // the turn is refused
		}
		if d.Reasoning != "" {
			r.turn.emit(&letta.ReasoningMessage{MessageBase: base(letta.TypeReasoning, message.SlotReasoning), Source: "reasoner_model", Reasoning: d.Reasoning}, true)
		}
		if d.Content == "" {
			return
		}
		if memgpt {
			r.turn.emit(&letta.ReasoningMessage{MessageBase: base(letta.TypeReasoning, message.SlotText), Source: "non_reasoner_model", Reasoning: d.Content}, true)
		} else {
			r.turn.emit(&letta.AssistantMessage{MessageBase: base(letta.TypeAssistant, message.SlotText), Content: d.Content}, true)
		}
	}
}
