package agent

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Steps is the surface of runs' steps: each model call a run committed,
// with its usage and timing (schema.Step, written with the step).
type Steps struct{ c *core }

// Limits of step listings.
const (
	DefaultStepListLimit = 50
	// MaxStepsScanned bounds the steps one listing reads: steps have no
	// index by time of their own, so a listing gathers them run by run.
	MaxStepsScanned = 10_000
)

// StepFilter narrows a listing of steps.
type StepFilter struct {
	AgentID, RunID, Model string
	Feedback              string
	HasFeedback           *bool
	Start, End            *time.Time
}

func (f StepFilter) match(s *schema.Step) bool {
	switch {
	case f.AgentID != "" && s.AgentID != f.AgentID,
		f.Model != "" && s.Model != f.Model,
		f.Feedback != "" && (s.Feedback == nil || *s.Feedback != f.Feedback),
		f.HasFeedback != nil && *f.HasFeedback != (s.Feedback != nil),
		f.Start != nil && s.CommittedAt.Before(*f.Start),
		f.End != nil && s.CommittedAt.After(*f.End):
		return false
	}
	return true
}

// Get returns a step.
func (s *Steps) Get(ctx context.Context, id string) (*letta.Step, error) {
	st, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return renderStep(st), nil
}

func (s *Steps) get(ctx context.Context, id string) (*schema.Step, error) {
	if err := letta.CheckID("step_id", "step", id); err != nil {
		return nil, err
	}
	var st *schema.Step
	err := s.c.read(ctx, func(txn kv.Txn) (err error) {
		st, err = schema.GetStep(txn, id)
		return err
	})
	return st, err
}

// List lists steps by the time they were committed.
func (s *Steps) List(ctx context.Context, f StepFilter, p letta.Page) ([]*letta.Step, error) {
	p, err := checkPage(p, DefaultStepListLimit)
	if err != nil {
		return nil, err
	}
	var all []*schema.Step
	err = s.c.read(ctx, func(txn kv.Txn) error {
		runs, err := s.runsOf(txn, f)
		if err != nil {
			return err
		}
		for _, runID := range runs {
			err := kv.ScanEach(txn, kv.PrefixRange(schema.RunStepsOf(runID)), false, func(e kv.KeyValue) (bool, error) {
				st, err := schema.GetStep(txn, string(e.Value))
				if err != nil {
					return false, schema.Dangling(err, "entry %q", e.Key)
				}
				if f.match(st) {
					all = append(all, st)
				}
				return len(all) < MaxStepsScanned, nil
			})
			if err != nil || len(all) >= MaxStepsScanned {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pageOfSteps(all, p), nil
}

// runsOf are the runs whose steps a listing reads.
func (s *Steps) runsOf(txn kv.Txn, f StepFilter) ([]string, error) {
	if f.RunID != "" {
		return []string{f.RunID}, nil
	}
	prefix := []byte(schema.RunIndex.Prefix)
	if f.AgentID != "" {
		prefix = schema.AgentRunsOf(f.AgentID)
	}
	var out []string
	err := kv.ScanEach(txn, kv.PrefixRange(prefix), false, func(e kv.KeyValue) (bool, error) {
		out = append(out, schema.LastPart(e.Key))
		return len(out) < MaxStepsScanned, nil
	})
	return out, err
}

// pageOfSteps orders steps by commit time (then an agent's by message
// order, then by id) and applies a page
// (cursors by step id).
func pageOfSteps(all []*schema.Step, p letta.Page) []*letta.Step {
	slices.SortFunc(all, func(a, b *schema.Step) int {
		if c := a.CommittedAt.Compare(b.CommittedAt); c != 0 {
			return c
		}
		if a.AgentID == b.AgentID && a.Seq != b.Seq {
			return cmp.Compare(a.Seq, b.Seq) // an agent's steps in order
		}
		return strings.Compare(a.ID, b.ID)
	})
	if p.Order == letta.Desc {
		slices.Reverse(all)
	}
	if i := slices.IndexFunc(all, func(s *schema.Step) bool { return s.ID == p.After }); i >= 0 {
		all = all[i+1:]
	}
	if i := slices.IndexFunc(all, func(s *schema.Step) bool { return s.ID == p.Before }); i >= 0 {
		all = all[:i]
	}
	out := []*letta.Step{}
	for _, st := range all {
		if len(out) == p.Limit {
			break
		}
		out = append(out, renderStep(st))
	}
	return out
}

// Metrics returns a step's timing.
func (s *Steps) Metrics(ctx context.Context, id string) (*letta.StepMetrics, error) {
	st, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	start, llmStart, llm := st.StartedAt.UnixNano(), st.LLMStart.UnixNano(), st.LLMNanos
	total := st.CommittedAt.Sub(st.StartedAt).Nanoseconds()
	return &letta.StepMetrics{ID: st.ID, RunID: &st.RunID, AgentID: &st.AgentID,
		StepStartNS: &start, LLMRequestStartNS: &llmStart, LLMRequestNS: &llm, StepNS: &total}, nil
}

// Messages lists the messages a step committed (its model response and
// the results of the tools it ran), oldest first by default.
func (s *Steps) Messages(ctx context.Context, id string, p letta.Page) ([]letta.Message, error) {
	p, err := checkPage(p, DefaultMessageListLimit)
	if err != nil {
		return nil, err
	}
	st, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []letta.Message
	err = s.c.read(ctx, func(txn kv.Txn) error {
		run, err := schema.GetRun(txn, st.RunID)
		if err != nil {
			return err
		}
		ms, err := message.OfRun(txn, run)
		if err != nil {
			return err
		}
		out = message.Page(ofStep(st, ms), p)
		return nil
	})
	return out, err
}

// ofStep keeps the step's model response and the results of its tool
// calls.
func ofStep(st *schema.Step, ms []*schema.Message) []*schema.Message {
	calls := map[string]bool{}
	var out []*schema.Message
	for _, m := range ms {
		switch {
		case m.StepID == st.ID:
			out = append(out, m)
			for _, tc := range m.ToolCalls {
				calls[tc.ID] = true
			}
		case m.Role == schema.RoleTool && calls[m.ToolCallID]:
			out = append(out, m)
		}
	}
	return out
}

// SetFeedback records a user's feedback on a step (Letta's
// positive/negative, or null to clear it) and returns the step.
func (s *Steps) SetFeedback(ctx context.Context, id string, fb letta.StepFeedback) (*letta.Step, error) {
	if fb.Feedback != nil && *fb.Feedback != "positive" && *fb.Feedback != "negative" {
		return nil, letta.Invalidf("feedback must be 'positive' or 'negative', got %q", letta.Clip(*fb.Feedback))
	}
	st, err := s.get(ctx, id)
	if err != nil {
		return nil, err
	}
	var out schema.Step
	if err := s.c.invoke(ctx, schema.AgentActor(st.AgentID), opStepFeedback, stepFeedback{id, fb.Feedback}, &out); err != nil {
		return nil, err
	}
	return renderStep(&out), nil
}

// stepFeedback is the payload of opStepFeedback.
type stepFeedback struct {
	StepID   string  `json:"step_id"`
	Feedback *string `json:"feedback"`
}

func setStepFeedback(_ *core, call *actor.Call, a *schema.Agent, p stepFeedback) ([]byte, error) {
	st, err := schema.GetStep(call.Txn, p.StepID)
	if err != nil {
		return nil, err
	}
	if st.AgentID != a.ID {
		return nil, schema.StepNotFound(p.StepID)
	}
	st.Feedback = p.Feedback
	if err := schema.PutStep(call.Txn, st); err != nil {
		return nil, err
	}
	return schema.Encode(st)
}

func renderStep(st *schema.Step) *letta.Step {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	var window *int
	if st.ContextWindow > 0 {
		window = &st.ContextWindow
	}
	return &letta.Step{
		ID: st.ID, RunID: &st.RunID, AgentID: &st.AgentID, ProviderName: opt(st.EndpointType), ProviderCategory: new("base"),
		Model: opt(st.Model), ModelHandle: opt(st.Handle), ModelEndpoint: opt(st.Endpoint), ContextWindowLimit: window,
		CompletionTokens: st.CompletionTokens, PromptTokens: st.PromptTokens, TotalTokens: st.PromptTokens + st.CompletionTokens,
		StopReason: opt(stepStopReason(st.StopReason)), Tags: []string{}, Messages: []any{}, Feedback: st.Feedback, Status: "success",
	}
}

// stepStopReason is Letta's stop reason for a model's.
func stepStopReason(model string) string {
	switch model {
	case "end_turn":
		return "end_turn"
	case "max_tokens":
		return "max_tokens_exceeded"
	}
	return "" // a step that called tools: the run went on

}
