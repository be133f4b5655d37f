package tool

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// define makes a tool whose function takes typed arguments: A is a struct
// whose fields, named by their json tags, are the arguments, checked in
// field order. A field that is neither a pointer nor a slice is required;
// the others are nil when absent (or null). Bad arguments are reported to
// the model. An invalid parameters schema is a bug: define panics, and the
// rows below are made when the package loads.
func define[A any](name, toolType, description, parameters string, fn func(env *Env, args A) (string, error)) *Tool {
	t := builtin(name, toolType, description, parameters)
	t.run = func(env *Env, raw map[string]json.RawMessage) (string, error) {
		var args A
		if err := decodeArgs(raw, reflect.ValueOf(&args).Elem()); err != nil {
			return "", err
		}
		return fn(env, args)
	}
	return t
}

// builtin makes a built-in tool's row, without its function.
func builtin(name, toolType, description, parameters string) *Tool {
	var shape map[string]any
	if err := json.Unmarshal([]byte(parameters), &shape); err != nil || shape["type"] != "object" {
		panic(fmt.Sprintf("tool: %s: parameters must be a JSON Schema object: %v", name, err))
	}
	t := &Tool{
		Name: name, Type: toolType, Description: description, Parameters: json.RawMessage(parameters),
		builtinID: letta.DerivedID("tool", "builtin", name),
	}
	var err error
	if t.lettaJSON, err = schema.Encode(t.Letta()); err != nil {
		panic(fmt.Sprintf("tool: %s: %v", name, err))
	}
	return t
}

// decodeArgs fills the fields of the struct v from raw.
func decodeArgs(raw map[string]json.RawMessage, v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("json")
		value, ok := raw[name]
		if !ok || string(value) == "null" {
			if k := f.Type.Kind(); k != reflect.Pointer && k != reflect.Slice {
				return Errorf("missing required argument %q", name)
			}
			continue
		}
		field := v.Field(i)
		if f.Type.Kind() == reflect.Pointer {
			field.Set(reflect.New(f.Type.Elem()))
			field = field.Elem()
		}
		if err := decodeArg(name, value, field); err != nil {
			return err
		}
	}
	return nil
}

// decodeArg decodes one argument into a string, an int, a bool or a
// []string.
func decodeArg(name string, value json.RawMessage, field reflect.Value) error {
	switch field.Kind() {
	case reflect.String:
		var s string
		if json.Unmarshal(value, &s) != nil {
			return Errorf("argument %q must be a string", name)
		}
		field.SetString(s)
	case reflect.Int:
		var f float64
		if json.Unmarshal(value, &f) != nil || f != float64(int(f)) {
			return Errorf("argument %q must be an integer", name)
		}
		field.SetInt(int64(f))
	case reflect.Bool:
		var b bool
		if json.Unmarshal(value, &b) != nil {
			return Errorf("argument %q must be true or false", name)
		}
		field.SetBool(b)
	case reflect.Slice:
		var ss []string
		if json.Unmarshal(value, &ss) != nil {
			return Errorf("argument %q must be a list of strings", name)
		}
		field.Set(reflect.ValueOf(ss))
	default:
		panic(fmt.Sprintf("tool: argument %q has unsupported type %s", name, field.Type()))
	}
	return nil
}

// parseDate reads a date argument: YYYY-MM-DD (its start, or with
// endOfDay its last instant) or an RFC 3339 time; nil when absent.
func parseDate(name string, s *string, endOfDay bool) (*time.Time, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339, *s); err == nil {
		return &t, nil
	}
	if t, err := time.Parse("2006-01-02", *s); err == nil {
		if endOfDay {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return &t, nil
	}
	return nil, Errorf("argument %q: %q is not a date (YYYY-MM-DD) or an RFC 3339 time", name, *s)
}

// or returns *p, or def when p is nil.
func or[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
