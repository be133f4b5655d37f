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
	// ChildOutputMapping maps a conditional rule's tool's output to the
	// one tool allowed next; DefaultChild is allowed next when no output
	// matches (every tool when it is nil), unless RequireOutputMapping.
	ChildOutputMapping   map[string]string `json:"child_output_mapping,omitempty"`
	DefaultChild         *string           `json:"default_child,omitempty"`
	RequireOutputMapping bool              `json:"require_output_mapping,omitempty"`
	// Args are a run_first rule's prefilled arguments, and ChildArgNodes
	// a constrain_child_tools rule's per child: they override the
	// model's arguments of the same names (see Solver.Prefilled).
	Args          map[string]any `json:"args,omitempty"`
	ChildArgNodes []ToolCallNode `json:"child_arg_nodes,omitempty"`
}

// ToolCallNode is a child of a constrain_child_tools rule with the
// arguments prefilled when it is called right after the rule's tool.
type ToolCallNode struct {
	Name string         `json:"name"`
	Args map[string]any `json:"args,omitempty"`
}

// Letta's ToolRuleType values, all enforced (see solver.go).
const (
	RuleRunFirst     = "run_first"             // the turn's first call must be to this tool
	RuleExitLoop     = "exit_loop"             // calling this tool ends the turn (stop reason tool_rule)
	RuleContinue     = "continue_loop"         // calling this tool never ends the turn
	RuleMaxPerStep   = "max_count_per_step"    // at most max_count_limit calls of it in one turn
	RuleApproval     = "requires_approval"     // a call waits for the user's approval
	RuleChildren     = "constrain_child_tools" // right after this tool, only its children
	RuleParentLast   = "parent_last_tool"      // its children only right after this tool
	RuleConditional  = "conditional"           // right after this tool, the child its output names
	RuleRequiredExit = "required_before_exit"  // the turn does not end before this tool was called
)

// ruleTypes are Letta's ToolRuleType values.
var ruleTypes = []string{
	RuleRunFirst, RuleExitLoop, RuleContinue, RuleMaxPerStep, RuleApproval,
	RuleChildren, RuleParentLast, RuleConditional, RuleRequiredExit,
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
		case rule.Type == RuleConditional && len(rule.ChildOutputMapping) == 0:
			return nil, letta.Invalidf("tool_rules[%d]: a conditional rule needs at least one child in child_output_mapping", i)
		case rule.Type == RuleChildren && slices.ContainsFunc(rule.ChildArgNodes, func(n ToolCallNode) bool { return !slices.Contains(rule.Children, n.Name) }):
			return nil, letta.Invalidf("tool_rules[%d]: child_arg_nodes names a tool that is not in children %s", i, pyList(rule.Children))
		case slices.ContainsFunc(out, func(o Rule) bool { return o.ToolName == rule.ToolName && o.Type == rule.Type }):
			return nil, letta.Invalidf("tool_rules[%d] repeats the %s rule for tool %q", i, rule.Type, letta.Clip(rule.ToolName))
		}
		out = append(out, rule)
	}
	return out, nil
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
