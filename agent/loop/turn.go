package loop

import (
	"context"
	"sync"

	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Event is one message of a turn as it happens, numbered by SeqID within
// its run. A Delta is a piece of a message not committed yet (token
// streaming): the committed message is not sent again.
type Event struct {
	Message letta.Message
	Delta   bool
}

// Result is how a turn ended.
type Result struct {
	RunID      string
	StopReason string
	Usage      letta.UsageStatistics
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
	result  Result
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
func (t *Turn) Result() Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result
}

// Response waits for the turn to end and returns its messages (token
// deltas left out) as Letta's response.
func (t *Turn) Response(ctx context.Context) (*letta.Response, error) {
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
	out := &letta.Response{Messages: []letta.Message{}, StopReason: letta.NewStopReasonMessage(res.StopReason), Usage: res.Usage}
	for _, e := range evs {
		if !e.Delta {
			out.Messages = append(out.Messages, e.Message)
		}
	}
	return out, nil
}

func (t *Turn) emit(m letta.Message, delta bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nextSeq++
	seq := t.nextSeq
	m.Base().SeqID = &seq
	t.events = append(t.events, Event{Message: m, Delta: delta})
	close(t.changed)
	t.changed = make(chan struct{})
}

// emitStored emits the committed messages ms.
func (t *Turn) emitStored(ms []*schema.Message) {
	for _, m := range ms {
		for _, lm := range message.Render(m) {
			t.emit(lm, false)
		}
	}
}

func (t *Turn) finish(res Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	res.RunID = t.runID
	t.result, t.done = res, true
	close(t.changed)
	t.changed = make(chan struct{})
}

// interruptedError is the error recorded on a run that never finished.
const interruptedError = "the turn was interrupted before it finished (the server stopped or a write failed); its history was closed where it stopped"

// Replay builds a finished turn from a stored run: the answer to a
// repeated request, or the replay of a run no longer in memory.
func Replay(run *schema.Run, ms []*schema.Message) *Turn {
	t := newTurn(run.ID, run.AgentID)
	for _, m := range ms {
		if !m.Input {
			t.emitStored([]*schema.Message{m})
		}
	}
	res := Result{StopReason: run.StopReason, Usage: run.Usage.Statistics(), Error: run.Error}
	if res.StopReason == "" {
		// Still running in storage but not here: its turn was cut off.
		res.StopReason, res.Error = letta.StopError, interruptedError
	}
	if res.Error != "" {
		res.ErrorType = errorTypeFor(res.StopReason)
	}
	t.finish(res)
	return t
}

func errorTypeFor(reason string) string {
	switch reason {
	case letta.StopLLMAPIError:
		return "llm_error"
	case letta.StopContextOverflow:
		return "context_window_overflow"
	}
	return "internal_error"
}
