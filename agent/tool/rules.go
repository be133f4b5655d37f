package tool

import (
	"encoding/json"
	"slices"

	"github.com/kelpie/kelpie/letta"
)

// Rule is one of an agent's tool rules, as Letta states them.
type Rule struct {
	ToolName      string `json:"tool_name"`
	Type          string `json:"type"`
	MaxCountLimit int    `json:"max_count_limit,omitempty"`
	// Children are the tools of a constrain_child_tools or
	// parent_last_tool rule.
	Children []string `json:"children,omitempty"`
}

// The rule types Kelpie enforces. Letta's others (conditional,
// continue_loop and required_before_exit) are accepted and stored but not
// enforced yet.
const (
	RuleRunFirst   = "run_first"             // the turn's first call must be to this tool
	RuleExitLoop   = "exit_loop"             // calling this tool ends the turn (stop reason tool_rule)
	RuleMaxPerStep = "max_count_per_step"    // at most max_count_limit calls of it in one turn
	RuleApproval   = "requires_approval"     // a call waits for the user's approval
	RuleChildren   = "constrain_child_tools" // right after this tool, only its children
	RuleParentLast = "parent_last_tool"      // its children only right after this tool
)

// ruleTypes are Letta's ToolRuleType values.
var ruleTypes = []string{
	RuleRunFirst, RuleExitLoop, RuleMaxPerStep, RuleApproval, RuleChildren, RuleParentLast,
	"continue_loop", "conditional", "required_before_exit",
}

// ParseRules reads an agent's tool rules, refusing a malformed one, an
// unknown type, and a rule given twice.
func ParseRules(raw []any) ([]Rule, error) {
	out := make([]Rule, 0, len(raw))
	for i, r := range raw {
		data, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		var rule Rule
		if err := json.Unmarshal(data, &rule); err != nil {
			return nil, letta.Invalidf("tool_rules[%d] is not a tool rule: %v", i, err)
		}
		switch {
		case rule.ToolName == "":
			return nil, letta.Invalidf("tool_rules[%d] has no tool_name", i)
		case !slices.Contains(ruleTypes, rule.Type):
			return nil, letta.Invalidf("tool_rules[%d]: type %q is not one of Letta's tool rule types", i, letta.Clip(rule.Type))
		case rule.Type == RuleMaxPerStep && rule.MaxCountLimit < 1:
			return nil, letta.Invalidf("tool_rules[%d]: max_count_limit must be at least 1", i)
		case (rule.Type == RuleChildren || rule.Type == RuleParentLast) && len(rule.Children) == 0:
			return nil, letta.Invalidf("tool_rules[%d]: a %s rule needs children", i, rule.Type)
		case slices.ContainsFunc(out, func(o Rule) bool { return o.ToolName == rule.ToolName && o.Type == rule.Type }):
			return nil, letta.Invalidf("tool_rules[%d] repeats the %s rule for tool %q", i, rule.Type, letta.Clip(rule.ToolName))
		}
		out = append(out, rule)
	}
	return out, nil
}

// Allowed narrows the tools offered for the next step of a turn that has
// called the tools in called, as Letta's rule solver does: before the
// first call only the run_first tools; then every tool allowed by each
// constrain_child_tools and parent_last_tool rule (right after its tool,
// only its children; a parent_last_tool rule's children only then) but
// those that reached their max_count_per_step. force names the one tool
// the model must call ("" for none).
func Allowed(rules []Rule, called []string, tools []*Tool) (allowed []*Tool, force string) {
	var first []string
	for _, r := range rules {
		if r.Type == RuleRunFirst {
			first = append(first, r.ToolName)
		}
	}
	last := "" // the turn's last call, none before its first
	if len(called) > 0 {
		last = called[len(called)-1]
	}
	for _, t := range tools {
		switch {
		case len(called) == 0 && len(first) > 0 && !slices.Contains(first, t.Name):
			continue
		case exhausted(rules, called, t.Name), !childAllowed(rules, last, t.Name):
			continue
		}
		allowed = append(allowed, t)
	}
	if len(called) == 0 && len(first) == 1 && Find(allowed, first[0]) != nil {
		force = first[0]
	}
	return allowed, force
}

// childAllowed reports whether every constrain_child_tools and
// parent_last_tool rule lets name follow a call of last.
func childAllowed(rules []Rule, last, name string) bool {
	for _, r := range rules {
		switch {
		case r.Type != RuleChildren && r.Type != RuleParentLast:
		case r.ToolName == last && !slices.Contains(r.Children, name):
			return false
		case r.ToolName != last && r.Type == RuleParentLast && slices.Contains(r.Children, name):
			return false
		}
	}
	return true
}

func exhausted(rules []Rule, called []string, name string) bool {
	n := 0
	for _, c := range called {
		if c == name {
			n++
		}
	}
	return slices.ContainsFunc(rules, func(r Rule) bool {
		return r.Type == RuleMaxPerStep && r.ToolName == name && n >= r.MaxCountLimit
	})
}

// Terminal reports whether calling name ends the turn.
func Terminal(rules []Rule, name string) bool { return has(rules, RuleExitLoop, name) }

// NeedsApproval reports whether a call of name waits for the user's
// approval.
func NeedsApproval(rules []Rule, name string) bool { return has(rules, RuleApproval, name) }

func has(rules []Rule, typ, name string) bool {
	return slices.ContainsFunc(rules, func(r Rule) bool { return r.Type == typ && r.ToolName == name })
}

// SetApproval adds (on) or removes (off) the requires_approval rule of
// name among an agent's stored rules, as Letta's approval toggle does.
func SetApproval(raw []any, name string, on bool) []any {
	out := slices.DeleteFunc(slices.Clone(raw), func(r any) bool {
		m, ok := r.(map[string]any)
		return ok && m["type"] == RuleApproval && m["tool_name"] == name
	})
	if on {
		out = append(out, map[string]any{"tool_name": name, "type": RuleApproval, "prompt_template": nil})
	}
	return out
}

// StoredRules reads an agent's stored rules: those stored before rules
// were checked may not parse, and are skipped rather than failing turns.
func StoredRules(raw []any) []Rule {
	var out []Rule
	for _, r := range raw {
		if rules, err := ParseRules([]any{r}); err == nil {
			out = append(out, rules...)
		}
	}
	return out
}
