package tool

import (
	"encoding/json"
	"testing"
)

// Spec: prefilled arguments are checked against the tool's parameters as
// Letta checks them (const, enum, anyOf/oneOf, type; integer is not
// number) and replace the model's arguments of the same name.
func TestMergePrefilled(t *testing.T) {
	tl := &Tool{Name: "t", Parameters: json.RawMessage(`{"type":"object","properties":{
		"s":{"type":"string"},"i":{"type":"integer"},"n":{"type":"number"},"b":{"type":"boolean"},
		"e":{"enum":["a","b"]},"c":{"const":3},"u":{"anyOf":[{"type":"string"},{"type":"null"}]},
		"l":{"type":["array","null"]},"free":{}}}`)}
	for _, c := range []struct {
		prefilled map[string]any
		want      string // merged arguments, or the error
	}{
		{map[string]any{"s": "rule"}, `{"i":7,"s":"rule"}`},
		{map[string]any{"i": float64(2), "n": 2.5, "b": true, "e": "b", "c": float64(3), "u": nil, "l": []any{1.0}, "free": map[string]any{"x": 1.0}},
			`{"b":true,"c":3,"e":"b","free":{"x":1},"i":2,"l":[1],"n":2.5,"s":"model","u":null}`},
		{map[string]any{"i": 2.5}, "Invalid value for 'i': 2.5 does not match expected schema type 'integer'."},
		{map[string]any{"e": "z"}, "Invalid value for 'e': 'z' does not match expected schema type None."},
		{map[string]any{"c": float64(4)}, "Invalid value for 'c': 4 does not match expected schema type None."},
		{map[string]any{"u": 1.0}, "Invalid value for 'u': 1 does not match expected schema type None."},
		{map[string]any{"l": "x", "zz": true}, "Invalid value for 'l': 'x' does not match expected schema type ['array', 'null'].; Unknown argument 'zz' for tool 't'."},
	} {
		got, err := MergePrefilled(tl, `{"s":"model","i":7}`, c.prefilled)
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("%v:\n got %s\nwant %s", c.prefilled, got, c.want)
		}
	}
	if got, err := MergePrefilled(tl, `not json`, map[string]any{"s": "x"}); err != nil || got != `{"s":"x"}` {
		t.Errorf("model arguments that are not an object: %s, %v", got, err)
	}
}

func mustMarshal(v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return data
}

// Spec: Solver.Prefilled gives a run_first rule's args before the turn's
// first call only, and a child's args right after its parent only.
func TestSolverPrefilled(t *testing.T) {
	rules := mustRules(t,
		map[string]any{"tool_name": "a", "type": "run_first", "args": map[string]any{"x": 1}},
		map[string]any{"tool_name": "p", "type": "constrain_child_tools", "children": []any{"a", "b"},
			"child_arg_nodes": []any{map[string]any{"name": "a", "args": map[string]any{"y": 2}}}})
	for _, c := range []struct {
		called []string
		name   string
		want   string
	}{
		{nil, "a", `{"x":1} InitToolRule(a)`},
		{nil, "b", `null `},
		{[]string{"a"}, "a", `null `},
		{[]string{"p"}, "a", `{"y":2} ChildToolRule(p->a)`},
		{[]string{"p"}, "b", `null `},
		{[]string{"p", "b"}, "a", `null `},
	} {
		args, source := Solver{Rules: rules, Called: c.called}.Prefilled(c.name)
		if got := string(mustMarshal(args)) + " " + source; got != c.want {
			t.Errorf("after %v, %s: %s, want %s", c.called, c.name, got, c.want)
		}
	}
}
