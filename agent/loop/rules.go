package loop

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/agent/tool"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// StepRules are what the agent's tool rules knew when a step's request
// was built (the loop computes them; the step's commit enforces them):
// a call of a tool they did not offer is answered with an error and not
// run, and whether the turn goes on depends on the calls made so far.
type StepRules struct {
	// Offered are the agent's tools the request offered (client tools
	// aside, which the rules do not govern).
	Offered []string `json:"offered"`
	// Called are the tools the turn called before the step, within the
	// rules.
	Called []string `json:"called,omitempty"`
}

// allows reports whether the rules let the step call name; with no
// rules (calls the user approved) every call is allowed.
func (s *StepRules) allows(name string) bool {
	return s == nil || slices.Contains(s.Offered, name)
}

// solver is the agent's rules applied to the turn before the step.
func (s *StepRules) solver(a *schema.Agent) tool.Solver {
	sv := tool.Solver{Rules: tool.StoredRules(a.ToolRules)}
	if s != nil {
		sv.Called = s.Called
	}
	return sv
}

// violation is the result of a call the rules did not allow, or "" and
// false for one they did.
func (s *StepRules) violation(a *schema.Agent, name string) (string, bool) {
	if s.allows(name) {
		return "", false
	}
	return s.solver(a).ViolationResult(name, s.Offered), true
}

// prefill applies the arguments the rules prefill in a call of a tool
// among tools (Solver.Prefilled) to the call's arguments: it returns the
// merged arguments ("" when none are prefilled), or why the call may not
// run (Letta's error text: a prefilled name or value the tool's schema
// refuses). It depends only on the rules, the turn's calls and the tool,
// so the commit of a step's deferred results finds what the step's found.
func (s *StepRules) prefill(a *schema.Agent, tools []*tool.Tool, tc *schema.ToolCall) (merged, refusal string) {
	if s == nil || tc.Client || !s.allows(tc.Name) {
		return "", ""
	}
	args, source := s.solver(a).Prefilled(tc.Name)
	t := tool.Find(tools, tc.Name)
	if len(args) == 0 || t == nil {
		return "", ""
	}
	merged, err := tool.MergePrefilled(t, tc.Arguments, args)
	if err != nil {
		return "", fmt.Sprintf("Invalid prefilled tool arguments from tool rules (source=%s): %v", source, err)
	}
	return merged, ""
}

// refusal is the error result of a call the step does not run: one the
// rules did not allow, or whose prefilled arguments do not fit its tool.
func (s *StepRules) refusal(a *schema.Agent, tools []*tool.Tool, tc *schema.ToolCall) (string, bool) {
	if text, refused := s.violation(a, tc.Name); refused {
		return text, true
	}
	_, text := s.prefill(a, tools, tc)
	return text, text != ""
}

// stopAfter is why the turn stops after a step, or "" to go on; uncalled
// are the required_before_exit tools the turn has still not called when
// it goes on only for them.
func stopAfter(a *schema.Agent, tools []*tool.Tool, asst *schema.Message, committed []*schema.Message, modelStop string, lastStep bool, rules *StepRules) (stop string, uncalled []string) {
	sentMessage := false
	for _, m := range committed[1:] {
		sentMessage = sentMessage || m.ToolName == message.SendMessageTool && m.ToolStatus == "success"
	}
	clientCalls := false // calls still waiting for the client
	for _, tc := range asst.ToolCalls {
		answered := slices.ContainsFunc(committed[1:], func(m *schema.Message) bool { return m.ToolCallID == tc.ID })
		clientCalls = clientCalls || tc.Waiting() && !answered
	}
	// The calls the rules allowed count; one they refused makes the
	// model try again, as do calls of tools that continue the turn.
	sv := rules.solver(a)
	terminal, goOn, badArgs := false, false, false
	for _, tc := range asst.ToolCalls {
		if !rules.allows(tc.Name) && !tc.Client {
			goOn = true
			continue
		}
		if _, refusal := rules.prefill(a, tools, &tc); refusal != "" {
			badArgs = true // Letta stops the turn: the rules' own arguments are wrong
			continue
		}
		sv.Called = append(slices.Clip(sv.Called), tc.Name)
		terminal = terminal || sv.Terminal(tc.Name)
		goOn = goOn || sv.Continues(tc.Name)
	}
	switch {
	case clientCalls:
		return letta.StopRequiresApproval, nil
	case badArgs:
		return letta.StopInvalidToolCall, nil
	case modelStop == "max_tokens" && len(asst.ToolCalls) == 0:
		stop = letta.StopMaxTokensExceeded
	case len(asst.ToolCalls) == 0:
		stop = letta.StopEndTurn
	case lastStep:
		return letta.StopMaxSteps, nil
	case terminal:
		stop = letta.StopToolRule
	case goOn:
		return "", nil
	case sentMessage && prompt.IsMemGPT(a.AgentType):
		stop = letta.StopEndTurn
	default:
		return "", nil
	}
	if lastStep {
		return stop, nil
	}
	// A turn may not end while required_before_exit tools are uncalled.
	if uncalled = sv.Uncalled(tools); len(uncalled) > 0 {
		return "", uncalled
	}
	return stop, nil
}

// uncalledReminder is the message that tells the model, which answered
// without a tool, which tools it must still call: Letta's heartbeat.
func uncalledReminder(asst *schema.Message, uncalled []string, tz string, now time.Time) *schema.Message {
	quote := func(s string) string {
		b, _ := json.Marshal(s) // a string always encodes
		return string(b)
	}
	text := fmt.Sprintf(`{"type": "heartbeat", "reason": %s, "time": %s}`, quote(tool.UncalledReason(uncalled)), quote(prompt.Clock(now, tz)))
	return &schema.Message{
		ID: letta.DerivedID("message", "heartbeat", asst.ID), AgentID: asst.AgentID, Role: schema.RoleUser, Text: text,
		RunID: asst.RunID, StepID: asst.StepID, ConversationID: asst.ConversationID, CreatedAt: now,
	}
}
