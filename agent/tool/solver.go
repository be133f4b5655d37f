package tool

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Solver applies an agent's tool rules to one turn, as Letta's tool rule
// solver does: which tools the next step offers (and whether it must call
// one), what a call outside them gets, and whether a call ends, continues
// or may not yet end the turn.
//
// Where Letta's loop departs from its own solver, Kelpie follows the
// solver: a call counts once towards max_count_per_step (Letta's newer
// loop registers a call twice), and a conditional rule matches the tool's
// output text (Letta's loop matches the output with its packaging taken
// off, so that only default_child ever applies).
type Solver struct {
	Rules []Rule
	// Called are the tools the turn has called within the rules, in
	// order; a call outside them does not count.
	Called []string
	// LastOutput is the text of the turn's last tool result, if any.
	LastOutput *string
}

// Allowed narrows tools to those the rules offer next: before the turn's
// first call only its run_first tools; after a call, those every
// constrain_child_tools, parent_last_tool, conditional and
// max_count_per_step rule allows. When the rules allow none of tools, all
// are offered (as Letta's loop does). force is "" when the model may
// answer without a tool, else the one tool it must call, or "required"
// when it must call one of several.
func (s Solver) Allowed(tools []*Tool) (allowed []*Tool, force string) {
	ok := s.narrowing
	if first := s.names(RuleRunFirst); len(s.Called) == 0 && len(first) > 0 {
		ok = func(name string) bool { return slices.Contains(first, name) }
	}
	for _, t := range tools {
		if ok(t.Name) {
			allowed = append(allowed, t)
		}
	}
	if len(allowed) == 0 {
		allowed = tools
	}
	switch {
	case !s.mustCall():
	case len(allowed) == 1:
		force = allowed[0].Name
	default:
		force = "required"
	}
	return allowed, force
}

// Prefilled are the arguments the rules prefill in a call of name at
// this point of the turn, as Letta's solver caches them: a run_first
// rule's args before the turn's first call, and the child_arg_nodes args
// of a constrain_child_tools rule whose tool was the last called (the
// later rule wins a name both give). source names the rule that gave
// them last, as Letta's error messages do. The caller applies them only
// to a call the rules allow.
func (s Solver) Prefilled(name string) (args map[string]any, source string) {
	add := func(more map[string]any, from string) {
		if len(more) == 0 {
			return
		}
		if args == nil {
			args = map[string]any{}
		}
		maps.Copy(args, more)
		source = from
	}
	if len(s.Called) == 0 {
		for _, r := range s.Rules {
			if r.Type == RuleRunFirst && r.ToolName == name {
				add(r.Args, "InitToolRule("+name+")")
			}
		}
		return args, source
	}
	last := s.Called[len(s.Called)-1]
	for _, r := range s.Rules {
		if r.Type != RuleChildren || r.ToolName != last {
			continue
		}
		for _, n := range r.ChildArgNodes {
			if n.Name == name {
				add(n.Args, "ChildToolRule("+last+"->"+name+")")
			}
		}
	}
	return args, source
}

// narrowing reports whether every rule that narrows the tools after a
// call allows name.
func (s Solver) narrowing(name string) bool {
	last := ""
	if len(s.Called) > 0 {
		last = s.Called[len(s.Called)-1]
	}
	for _, r := range s.Rules {
		switch r.Type {
		case RuleChildren:
			if r.ToolName == last && !slices.Contains(r.Children, name) {
				return false
			}
		case RuleParentLast:
			if (r.ToolName == last) != slices.Contains(r.Children, name) {
				return false
			}
		case RuleConditional:
			if r.ToolName == last && !s.conditionalAllows(r, name) {
				return false
			}
		case RuleMaxPerStep:
			if r.ToolName == name && count(s.Called, name) >= r.MaxCountLimit {
				return false
			}
		}
	}
	return true
}

// conditionalAllows reports whether a conditional rule whose tool was
// the last called allows name: the child its output maps to, else its
// default child, else any tool (none with require_output_mapping).
func (s Solver) conditionalAllows(r Rule, name string) bool {
	if s.LastOutput != nil {
		if child, ok := r.ChildOutputMapping[*s.LastOutput]; ok {
			return child == name
		}
	}
	switch {
	case r.RequireOutputMapping:
		return false
	case r.DefaultChild != nil:
		return *r.DefaultChild == name
	}
	return true
}

// mustCall reports whether the next step must call a tool: at the turn's
// start with run_first rules, and right after a tool whose
// constrain_child_tools, conditional or parent_last_tool rule applies.
func (s Solver) mustCall() bool {
	if len(s.Called) == 0 {
		return len(s.names(RuleRunFirst)) > 0
	}
	last := s.Called[len(s.Called)-1]
	return slices.ContainsFunc(s.Rules, func(r Rule) bool {
		return r.ToolName == last && (r.Type == RuleChildren || r.Type == RuleConditional || r.Type == RuleParentLast)
	})
}

func (s Solver) names(typ string) []string {
	var out []string
	for _, r := range s.Rules {
		if r.Type == typ {
			out = append(out, r.ToolName)
		}
	}
	return out
}

func (s Solver) has(typ, name string) bool {
	return slices.ContainsFunc(s.Rules, func(r Rule) bool { return r.Type == typ && r.ToolName == name })
}

func count(called []string, name string) int {
	n := 0
	for _, c := range called {
		if c == name {
			n++
		}
	}
	return n
}

// Terminal reports whether calling name ends the turn.
func (s Solver) Terminal(name string) bool { return s.has(RuleExitLoop, name) }

// NeedsApproval reports whether a call of name waits for the user's
// approval.
func (s Solver) NeedsApproval(name string) bool { return s.has(RuleApproval, name) }

// Continues reports whether calling name makes the turn go on: it has a
// continue_loop rule, or a rule saying what may follow it.
func (s Solver) Continues(name string) bool {
	return slices.ContainsFunc(s.Rules, func(r Rule) bool {
		return r.ToolName == name && slices.Contains([]string{RuleContinue, RuleChildren, RuleConditional, RuleMaxPerStep}, r.Type)
	})
}

// Uncalled lists the required_before_exit tools among available that the
// turn has not called yet: while there are any, the turn does not end.
func (s Solver) Uncalled(available []*Tool) []string {
	var out []string
	for _, name := range s.names(RuleRequiredExit) {
		if Find(available, name) != nil && !slices.Contains(s.Called, name) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// NonUserPrefix starts the messages the loop writes to the model in the
// user's place, as Letta's do.
const NonUserPrefix = "[This is an automated system message hidden from the user] "

// UncalledReason is what the model is told when it answered without a
// tool while required_before_exit tools remain uncalled.
func UncalledReason(uncalled []string) string {
	return NonUserPrefix + "ToolRuleViolated: You must call " + strings.Join(uncalled, ", ") + " at least once to exit the loop."
}

// ViolationResult is the error result of a call of name, which the rules
// did not allow (offered are the tools they did): it is not run.
func (s Solver) ViolationResult(name string, offered []string) string {
	quoted := make([]string, len(offered))
	for i, o := range offered {
		quoted[i] = "'" + o + "'"
	}
	msg := fmt.Sprintf("[ToolConstraintError] Cannot call %s, valid tools include: [%s].", name, strings.Join(quoted, ", "))
	prev := ""
	if len(s.Called) > 0 {
		prev = s.Called[len(s.Called)-1]
	}
	var hints []string
	for _, r := range s.promptRules() {
		if p := r.prompt(); p != "" && (r.ToolName == name || prev != "" && r.ToolName == prev) {
			hints = append(hints, "\t- "+p)
		}
	}
	if len(hints) > 0 {
		msg += "\n** Hint: Possible rules that were violated:\n" + strings.Join(hints, "\n")
	}
	return msg
}

// promptRules are the rules the system prompt states, in Letta's order:
// run_first, continue_loop, those saying what may follow a tool,
// parent_last_tool, exit_loop.
func (s Solver) promptRules() []Rule {
	var out []Rule
	for _, group := range [][]string{{RuleRunFirst}, {RuleContinue}, {RuleChildren, RuleConditional, RuleMaxPerStep}, {RuleParentLast}, {RuleExitLoop}} {
		for _, r := range s.Rules {
			if slices.Contains(group, r.Type) {
				out = append(out, r)
			}
		}
	}
	return out
}

// prompt is how the system prompt states r ("" for a rule it does not).
func (r Rule) prompt() string {
	switch r.Type {
	case RuleChildren:
		return fmt.Sprintf("<tool_rule>\nAfter using %s, you must use one of these tools: %s\n</tool_rule>", r.ToolName, strings.Join(r.Children, ", "))
	case RuleParentLast:
		return fmt.Sprintf("<tool_rule>\n%s can only be used after %s\n</tool_rule>", strings.Join(r.Children, ", "), r.ToolName)
	case RuleConditional:
		return fmt.Sprintf("<tool_rule>\n%s will determine which tool to use next based on its output\n</tool_rule>", r.ToolName)
	case RuleExitLoop:
		return fmt.Sprintf("<tool_rule>\n%s ends your response (yields control) when called\n</tool_rule>", r.ToolName)
	case RuleContinue:
		return fmt.Sprintf("<tool_rule>\n%s requires continuing your response when called\n</tool_rule>", r.ToolName)
	case RuleMaxPerStep:
		return fmt.Sprintf("<tool_rule>\n%s: at most %d use(s) per response\n</tool_rule>", r.ToolName, r.MaxCountLimit)
	}
	return ""
}

// rulesPromptDescription introduces the rules in the system prompt.
const rulesPromptDescription = "The following constraints define rules for tool usage and guide desired behavior. These rules must be followed to ensure proper tool execution and workflow. A single response may contain multiple tool calls."

// UsagePrompt is the <tool_usage_rules> section of the system prompt
// stating rules, or "" when none is stated.
func UsagePrompt(rules []Rule) string {
	var lines []string
	for _, r := range (Solver{Rules: rules}).promptRules() {
		if p := r.prompt(); p != "" {
			lines = append(lines, p)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return "<tool_usage_rules>\n" + rulesPromptDescription + "\n\n" + strings.Join(lines, "\n") + "\n</tool_usage_rules>"
}
