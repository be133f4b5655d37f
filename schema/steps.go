package schema

import (
	"fmt"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// Steps of runs: each model call a run committed, with its usage and
// timing, written by the agent's actor in the step's own transaction.
var (
	Steps = &Family{"step", "step/",
		"step/<step-id>", "a Step record (JSON)"}
	RunSteps = &Family{"run-step", "run-step/",
		"run-step/<run-id>/<seq, 16 hex>", "the id of the run's step whose assistant message is the agent's message seq"}
)

// Step is a stored step: one model call of a run and what it committed.
type Step struct {
	ID      string `json:"id"`
	RunID   string `json:"run_id"`
	AgentID string `json:"agent_id"`
	// Seq is the agent's message the step's model response became.
	Seq              uint64 `json:"seq"`
	Model            string `json:"model"`
	Handle           string `json:"handle,omitempty"`
	Endpoint         string `json:"endpoint,omitempty"`
	EndpointType     string `json:"endpoint_type,omitempty"`
	ContextWindow    int    `json:"context_window,omitempty"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
	// StopReason is why the model stopped (llm.StopReason).
	StopReason string `json:"stop_reason,omitempty"`
	// StartedAt is when the step began (before its model call), LLMStart
	// when its model call began and LLMNanos how long that call took;
	// CommittedAt is the time of the step's transaction.
	StartedAt   time.Time `json:"started_at"`
	LLMStart    time.Time `json:"llm_start"`
	LLMNanos    int64     `json:"llm_nanos"`
	CommittedAt time.Time `json:"committed_at"`
	Feedback    *string   `json:"feedback,omitempty"`
}

// StepKey is where a step's record is; RunStepKey its entry among its
// run's steps.
func StepKey(stepID string) []byte { return []byte(Steps.Prefix + stepID) }
func RunStepKey(runID string, seq uint64) []byte {
	return join(RunSteps, runID, fmt.Sprintf("%016x", seq))
}
func RunStepsOf(runID string) []byte { return join(RunSteps, runID, "") }

// StepNotFound is Letta's error for a missing step.
func StepNotFound(stepID string) error { return letta.NotFoundf("Step with id %s not found", stepID) }

// GetStep returns a step's record.
func GetStep(txn kv.Txn, stepID string) (*Step, error) {
	return get[Step](txn, StepKey(stepID), "step", StepNotFound(stepID))
}

// PutStep writes a step's record and its entry among its run's steps.
func PutStep(txn kv.Txn, s *Step) error {
	if err := put(txn, StepKey(s.ID), s); err != nil {
		return err
	}
	return txn.Set(RunStepKey(s.RunID, s.Seq), []byte(s.ID))
}

// deleteRunSteps deletes a run's steps with their entries.
func deleteRunSteps(txn kv.Txn, runID string) error {
	return deleteEach(txn, RunStepsOf(runID), func(p kv.KeyValue) error { return txn.Delete(StepKey(string(p.Value))) })
}
