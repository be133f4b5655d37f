package tool

import (
	"strings"
	"testing"
)

// Spec: rules parse as Letta states them; a malformed, unknown or
// repeated rule is refused, naming it.
func TestParseRules(t *testing.T) {
	ok := []any{
		map[string]any{"tool_name": "a", "type": "run_first"},
		map[string]any{"tool_name": "a", "type": "exit_loop"},
		map[string]any{"tool_name": "b", "type": "max_count_per_step", "max_count_limit": 2},
		map[string]any{"tool_name": "c", "type": "conditional", "child_output_mapping": map[string]any{"true": "a"}},
	}
	rules, err := ParseRules(ok)
	if err != nil || len(rules) != 4 || rules[2].MaxCountLimit != 2 {
		t.Fatalf("%+v, %v", rules, err)
	}
	bad := []struct {
		rule any
		want string
	}{
		{map[string]any{"type": "run_first"}, "has no tool_name"},
		{map[string]any{"tool_name": "a", "type": "sometimes"}, "not one of Letta's tool rule types"},
		{map[string]any{"tool_name": "a", "type": "max_count_per_step"}, "max_count_limit must be at least 1"},
		{map[string]any{"tool_name": "a", "type": "constrain_child_tools"}, "needs children"},
		{map[string]any{"tool_name": "a", "type": "conditional", "child_output_mapping": map[string]any{}}, "needs at least one child"},
		{map[string]any{"tool_name": "a", "type": "exit_loop"}, `repeats the exit_loop rule for tool "a"`},
		{"run_first", "is not a tool rule"},
	}
	for _, b := range bad {
		_, err := ParseRules(append(ok[:2:2], b.rule))
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%v: %v, want %q", b.rule, err, b.want)
		}
	}
}
