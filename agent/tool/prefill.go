package tool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/letta"
)

// MergePrefilled merges the arguments the rules prefill (Solver.Prefilled)
// into a call's arguments (a JSON object; anything else counts as none, as
// Letta reads it): a prefilled value replaces the model's of the same
// name. As Letta does, it first checks each prefilled argument against
// the tool's parameters: the name must be one of them, and the value must
// satisfy its const, enum, anyOf/oneOf or type; otherwise the error says
// what is wrong with each, and the call must not run.
func MergePrefilled(t *Tool, callArgs string, prefilled map[string]any) (string, error) {
	var params struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	// A schema without properties accepts no prefilled name.
	if len(t.Parameters) > 0 {
		if err := json.Unmarshal(t.Parameters, &params); err != nil {
			return "", fmt.Errorf("the parameters of tool '%s' are not a JSON Schema object: %v", t.Name, err)
		}
	}
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(prefilled)) {
		prop, ok := params.Properties[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("Unknown argument '%s' for tool '%s'.", k, t.Name))
			continue
		}
		var ps map[string]any
		if err := decodeNumbers(prop, &ps); err != nil {
			ps = nil // not a schema object: it constrains nothing
		}
		v := normalJSON(prefilled[k])
		if !schemaAccepts(ps, v) {
			problems = append(problems, fmt.Sprintf("Invalid value for '%s': %s does not match expected schema type %s.", k, pyJSON(v), pyJSON(normalJSON(ps["type"]))))
		}
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "; "))
	}
	merged := map[string]json.RawMessage{}
	if err := json.Unmarshal([]byte(callArgs), &merged); err != nil || merged == nil {
		merged = map[string]json.RawMessage{}
	}
	for k, v := range prefilled {
		data, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("prefilled argument %q: %w", k, err)
		}
		merged[k] = data
	}
	out, err := json.Marshal(merged)
	return string(out), err
}

// decodeNumbers decodes JSON keeping numbers as json.Number, so that an
// integer is told from a float as Python tells them.
func decodeNumbers(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	return d.Decode(v)
}

// normalJSON is v (a decoded JSON value, perhaps with float64 numbers) with
// its numbers as json.Number.
func normalJSON(v any) any {
	data, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if decodeNumbers(data, &out) != nil {
		return v
	}
	return out
}

// schemaAccepts reports whether a property's JSON schema accepts v, with
// the checks Letta makes: const, then enum, then anyOf/oneOf (any branch),
// then type; a schema with none of them accepts anything.
func schemaAccepts(ps map[string]any, v any) bool {
	if ps == nil {
		return true
	}
	if c, ok := ps["const"]; ok {
		return jsonEqual(c, v)
	}
	if enum, ok := ps["enum"]; ok {
		list, _ := enum.([]any)
		return slices.ContainsFunc(list, func(e any) bool { return jsonEqual(e, v) })
	}
	for _, union := range []string{"anyOf", "oneOf"} {
		if branches, ok := ps[union].([]any); ok {
			return slices.ContainsFunc(branches, func(b any) bool {
				sub, _ := b.(map[string]any)
				return schemaAccepts(sub, v)
			})
		}
	}
	switch typ := ps["type"].(type) {
	case string:
		return typeMatches(v, typ)
	case []any:
		return slices.ContainsFunc(typ, func(t any) bool {
			s, ok := t.(string)
			return !ok || typeMatches(v, s)
		})
	}
	return true
}

// typeMatches reports whether v is of JSON schema type typ; an unknown
// type accepts anything, as Letta's check does.
func typeMatches(v any, typ string) bool {
	switch typ {
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		return ok && !strings.ContainsAny(string(n), ".eE")
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "null":
		return v == nil
	}
	return true
}

// jsonEqual compares decoded JSON values, numbers by value.
func jsonEqual(a, b any) bool {
	if x, ok := a.(json.Number); ok {
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, errX := x.Float64()
		fy, errY := y.Float64()
		return errX == nil && errY == nil && fx == fy
	}
	da, errA := json.Marshal(a)
	db, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(da, db)
}

// pyJSON is Python's repr of a decoded JSON value (numbers as
// json.Number), as Letta's messages show values.
func pyJSON(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case json.Number:
		return string(v)
	case string:
		return letta.PyStr(v)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = pyJSON(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, letta.PyStr(k)+": "+pyJSON(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// pyList is Python's repr of a list of strings.
func pyList(ss []string) string {
	vs := make([]any, len(ss))
	for i, s := range ss {
		vs[i] = s
	}
	return pyJSON(vs)
}
