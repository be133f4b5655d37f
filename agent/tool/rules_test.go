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
		map[string]any{"tool_name": "c", "type": "conditional", "child_output_mapping": map[string]any{}},
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

// Spec: before a turn's first call only the run_first tools are offered
// (one of them forced); a tool leaves the offer once called
// max_count_per_step times; exit_loop tools are terminal.
func TestAllowed(t *testing.T) {
	tools := []*Tool{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	rules, err := ParseRules([]any{
		map[string]any{"tool_name": "a", "type": "run_first"},
		map[string]any{"tool_name": "b", "type": "max_count_per_step", "max_count_limit": 2},
		map[string]any{"tool_name": "c", "type": "exit_loop"},
	})
	if err != nil {
		t.Fatal(err)
	}
	names := func(ts []*Tool) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		called     []string
		want, kept string
	}{
		{nil, "a", "a"},
		{[]string{"a"}, "", "a,b,c"},
		{[]string{"a", "b"}, "", "a,b,c"},
		{[]string{"a", "b", "b"}, "", "a,c"},
	}
	for _, c := range cases {
		allowed, force := Allowed(rules, c.called, tools)
		if names(allowed) != c.kept || force != c.want {
			t.Errorf("after %v: offered %s forcing %q, want %s forcing %q", c.called, names(allowed), force, c.kept, c.want)
		}
	}
	if !Terminal(rules, "c") || Terminal(rules, "a") {
		t.Error("terminal")
	}
	if got := StoredRules([]any{"junk", map[string]any{"tool_name": "c", "type": "exit_loop"}}); len(got) != 1 {
		t.Errorf("stored rules %+v", got)
	}
}

// Spec: right after a constrain_child_tools rule's tool only its children
// are offered; a parent_last_tool rule's children are offered only right
// after its tool; several rules intersect, as in Letta's solver.
func TestAllowedChildren(t *testing.T) {
	tools := []*Tool{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}
	rules, err := ParseRules([]any{
		map[string]any{"tool_name": "a", "type": "constrain_child_tools", "children": []any{"b", "c"}},
		map[string]any{"tool_name": "b", "type": "parent_last_tool", "children": []any{"d"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		called []string
		kept   string
	}{
		{nil, "a,b,c"},
		{[]string{"a"}, "b,c"},
		{[]string{"c"}, "a,b,c"},
		{[]string{"a", "b"}, "d"},
		{[]string{"b", "d"}, "a,b,c"},
	}
	for _, c := range cases {
		allowed, _ := Allowed(rules, c.called, tools)
		var got []string
		for _, t := range allowed {
			got = append(got, t.Name)
		}
		if strings.Join(got, ",") != c.kept {
			t.Errorf("after %v: offered %v, want %s", c.called, got, c.kept)
		}
	}
}
