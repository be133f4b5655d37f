package tool

import (
	"strings"
	"testing"
)

func mustRules(t *testing.T, raw ...map[string]any) []Rule {
	t.Helper()
	in := make([]any, len(raw))
	for i, r := range raw {
		in[i] = r
	}
	rules, err := ParseRules(in)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func toolsNamed(names ...string) []*Tool {
	out := make([]*Tool, len(names))
	for i, n := range names {
		out[i] = &Tool{Name: n}
	}
	return out
}

func names(ts []*Tool) string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return strings.Join(out, ",")
}

// solverCase is a turn so far and what the solver must offer next.
type solverCase struct {
	called      []string
	output      *string
	offer, want string // tools offered; the tool choice
}

func checkAllowed(t *testing.T, rules []Rule, tools []*Tool, cases []solverCase) {
	t.Helper()
	for _, c := range cases {
		allowed, force := Solver{Rules: rules, Called: c.called, LastOutput: c.output}.Allowed(tools)
		if names(allowed) != c.offer || force != c.want {
			t.Errorf("after %v (output %v): offered %s forcing %q, want %s forcing %q", c.called, c.output, names(allowed), force, c.offer, c.want)
		}
	}
}

// Spec: before a turn's first call only the run_first tools are offered
// and a call is required (the one tool named when there is one); a tool
// leaves the offer once called max_count_per_step times, without forcing
// a call.
func TestSolverRunFirstAndMaxCount(t *testing.T) {
	rules := mustRules(t,
		map[string]any{"tool_name": "a", "type": "run_first"},
		map[string]any{"tool_name": "b", "type": "max_count_per_step", "max_count_limit": 2},
		map[string]any{"tool_name": "c", "type": "exit_loop"})
	checkAllowed(t, rules, toolsNamed("a", "b", "c"), []solverCase{
		{nil, nil, "a", "a"},
		{[]string{"a"}, nil, "a,b,c", ""},
		{[]string{"a", "b"}, nil, "a,b,c", ""},
		{[]string{"a", "b", "b"}, nil, "a,c", ""},
	})
	two := mustRules(t, map[string]any{"tool_name": "a", "type": "run_first"}, map[string]any{"tool_name": "b", "type": "run_first"})
	checkAllowed(t, two, toolsNamed("a", "b", "c"), []solverCase{{nil, nil, "a,b", "required"}})
	s := Solver{Rules: rules}
	if !s.Terminal("c") || s.Terminal("a") || !s.Continues("b") || s.Continues("c") {
		t.Error("terminal or continuing tools misread")
	}
	if got := StoredRules([]any{"junk", map[string]any{"tool_name": "c", "type": "exit_loop"}}); len(got) != 1 {
		t.Errorf("stored rules %+v", got)
	}
}

// Spec: right after a constrain_child_tools tool only its children are
// offered and a call is required; a parent_last_tool rule's children are
// offered only right after its tool.
func TestSolverChildAndParent(t *testing.T) {
	rules := mustRules(t,
		map[string]any{"tool_name": "a", "type": "constrain_child_tools", "children": []string{"b", "c"}},
		map[string]any{"tool_name": "p", "type": "parent_last_tool", "children": []string{"k"}})
	checkAllowed(t, rules, toolsNamed("a", "b", "c", "p", "k"), []solverCase{
		{nil, nil, "a,b,c,p", ""},
		{[]string{"a"}, nil, "b,c", "required"},
		{[]string{"a", "b"}, nil, "a,b,c,p", ""},
		{[]string{"p"}, nil, "k", "k"},
		{[]string{"b", "a"}, nil, "b,c", "required"}, // only the last call counts
	})
	// A rule allowing none of the agent's tools: every tool is offered,
	// as Letta's loop does.
	empty := mustRules(t, map[string]any{"tool_name": "a", "type": "constrain_child_tools", "children": []string{"gone"}})
	checkAllowed(t, empty, toolsNamed("a", "b"), []solverCase{{[]string{"a"}, nil, "a,b", "required"}})
}

// Spec: right after a conditional rule's tool, the child its output maps
// to is the one tool offered; an output matching no key offers the
// default child, else every tool, else (require_output_mapping) none,
// which falls back to every tool.
func TestSolverConditional(t *testing.T) {
	out := func(s string) *string { return &s }
	rules := mustRules(t,
		map[string]any{"tool_name": "flip", "type": "conditional", "child_output_mapping": map[string]any{"heads": "win", "tails": "lose"}, "default_child": "flip"},
		map[string]any{"tool_name": "roll", "type": "conditional", "child_output_mapping": map[string]any{"6": "win"}},
		map[string]any{"tool_name": "strict", "type": "conditional", "child_output_mapping": map[string]any{"yes": "win"}, "require_output_mapping": true})
	checkAllowed(t, rules, toolsNamed("flip", "roll", "strict", "win", "lose"), []solverCase{
		{nil, nil, "flip,roll,strict,win,lose", ""},
		{[]string{"flip"}, out("heads"), "win", "win"},
		{[]string{"flip"}, out("tails"), "lose", "lose"},
		{[]string{"flip"}, out("edge"), "flip", "flip"},
		{[]string{"flip"}, nil, "flip", "flip"},
		{[]string{"roll"}, out("6"), "win", "win"},
		{[]string{"roll"}, out("3"), "flip,roll,strict,win,lose", "required"},
		{[]string{"strict"}, out("yes"), "win", "win"},
		{[]string{"strict"}, out("no"), "flip,roll,strict,win,lose", "required"},
	})
	if !(Solver{Rules: rules}).Continues("flip") {
		t.Error("a conditional tool does not continue the turn")
	}
}

// Spec: required_before_exit tools the turn has not called (and the
// agent has) are listed until called; continue_loop tools continue.
func TestSolverRequiredAndContinue(t *testing.T) {
	rules := mustRules(t,
		map[string]any{"tool_name": "save", "type": "required_before_exit"},
		map[string]any{"tool_name": "clean", "type": "required_before_exit"},
		map[string]any{"tool_name": "absent", "type": "required_before_exit"},
		map[string]any{"tool_name": "send", "type": "continue_loop"})
	tools := toolsNamed("save", "clean", "send")
	s := Solver{Rules: rules}
	if got := strings.Join(s.Uncalled(tools), ","); got != "save,clean" {
		t.Errorf("uncalled %s", got)
	}
	s.Called = []string{"clean", "send"}
	if got := strings.Join(s.Uncalled(tools), ","); got != "save" {
		t.Errorf("uncalled after clean: %s", got)
	}
	if !s.Continues("send") || s.Continues("save") {
		t.Error("continue_loop misread")
	}
	if got := UncalledReason([]string{"save"}); got != "[This is an automated system message hidden from the user] ToolRuleViolated: You must call save at least once to exit the loop." {
		t.Errorf("reason %q", got)
	}
}

// Spec: a refused call's result names the tools offered and hints at the
// rules of the tool called and of the one before, in Letta's words; the
// system prompt states the rules in Letta's order.
func TestSolverMessages(t *testing.T) {
	rules := mustRules(t,
		map[string]any{"tool_name": "end", "type": "exit_loop"},
		map[string]any{"tool_name": "a", "type": "constrain_child_tools", "children": []string{"b"}},
		map[string]any{"tool_name": "a", "type": "run_first"},
		map[string]any{"tool_name": "x", "type": "requires_approval"})
	s := Solver{Rules: rules, Called: []string{"a"}}
	want := "[ToolConstraintError] Cannot call end, valid tools include: ['b'].\n** Hint: Possible rules that were violated:\n" +
		"\t- <tool_rule>\nAfter using a, you must use one of these tools: b\n</tool_rule>\n" +
		"\t- <tool_rule>\nend ends your response (yields control) when called\n</tool_rule>"
	if got := s.ViolationResult("end", []string{"b"}); got != want {
		t.Errorf("violation result\n%s\nwant\n%s", got, want)
	}
	if got := (Solver{}).ViolationResult("zz", []string{"a", "b"}); got != "[ToolConstraintError] Cannot call zz, valid tools include: ['a', 'b']." {
		t.Errorf("violation without hints: %s", got)
	}
	wantPrompt := "<tool_usage_rules>\n" + rulesPromptDescription + "\n\n" +
		"<tool_rule>\nAfter using a, you must use one of these tools: b\n</tool_rule>\n" +
		"<tool_rule>\nend ends your response (yields control) when called\n</tool_rule>\n</tool_usage_rules>"
	if got := UsagePrompt(rules); got != wantPrompt {
		t.Errorf("prompt\n%s\nwant\n%s", got, wantPrompt)
	}
	if UsagePrompt(mustRules(t, map[string]any{"tool_name": "x", "type": "requires_approval"})) != "" {
		t.Error("an approval rule is stated in the prompt")
	}
}
