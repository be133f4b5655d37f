package schema

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// fullAgent sets a value in every part of an agent that is a reference.
func fullAgent() *Agent {
	s := func(v string) *string { return &v }
	n := 7
	return &Agent{
		ID: "agent-1", Name: "a", System: "sys", AgentType: "memgpt_v2_agent", Description: s("d"),
		Metadata: map[string]any{"k": map[string]any{"deep": []any{"x", json.Number("12345678901234567890")}}},
		Tags:     []string{"t1", "t2"},
		LLMConfig: letta.LLMConfig{Model: "m", Handle: s("openai/m"), MaxTokens: &n,
			ResponseFormat: map[string]any{"type": "json_object"}},
		EmbeddingConfig:    &letta.EmbeddingConfig{EmbeddingModel: "e", Handle: s("openai/e")},
		ModelSettings:      json.RawMessage(`{"a":1}`),
		CompactionSettings: json.RawMessage(`{"b":2}`),
		ToolRules:          []any{map[string]any{"type": "run_first", "tool_name": "x"}},
		Context:            Context{SystemID: "message-1", SystemSeq: 1, Start: 2, Indexed: true},
		ProjectID:          s("p"), EnableSleeptime: new(true), LastStopReason: s("end_turn"),
		LastRunCompletion: new(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), LastRunDurationMS: new(int64(9)),
		Hidden: new(false), CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		IncludeBaseTools: new(true), ToolNames: []string{"send_message"}, ToolEnv: map[string]string{"K": "V"},
	}
}

// Spec: an agent decoded again is equal to its first decoding, and each
// caller's copy is its own: changing every mutable part of one (through
// maps and slices of any included) changes no later decoding.
func TestDecodeAgentRepeated(t *testing.T) {
	data, err := Encode(fullAgent())
	if err != nil {
		t.Fatal(err)
	}
	first, err := DecodeAgent(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(first, fullAgent()) {
		t.Fatalf("decoded %+v, want %+v", first, fullAgent())
	}
	for range 2 {
		again, err := DecodeAgent(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, fullAgent()) {
			t.Fatalf("decoded again after a caller's change: %+v, want %+v", again, fullAgent())
		}
		// Change everything the next decoding must not see.
		*again.Description, again.Tags[0], *again.LLMConfig.Handle, *again.LLMConfig.MaxTokens = "x", "x", "x", 0
		again.LLMConfig.ResponseFormat.(map[string]any)["type"] = "x"
		again.Metadata["k"].(map[string]any)["deep"].([]any)[0] = "x"
		again.ToolRules[0].(map[string]any)["tool_name"] = "x"
		again.EmbeddingConfig.EmbeddingModel, again.ModelSettings[0], again.ToolNames[0] = "x", 'x', "x"
		again.ToolEnv["K"], *again.LastStopReason, *again.LastRunDurationMS = "x", "x", 0
		again.Context.Start = 99
	}
}

// Spec: clone copies an agent whole and shares nothing a caller could
// change with it. Every reference field of Agent (through its structs, and
// free-form JSON values in its interfaces) is filled first: a field added
// without being copied by clone fails here.
func TestAgentCloneSharesNothing(t *testing.T) {
	a := &Agent{}
	fill(reflect.ValueOf(a).Elem())
	c := a.clone()
	if !reflect.DeepEqual(a, c) {
		t.Fatalf("copy %+v differs from %+v", c, a)
	}
	if path := shared(reflect.ValueOf(a).Elem(), reflect.ValueOf(c).Elem(), "Agent"); path != "" {
		t.Fatalf("the copy shares %s with its original", path)
	}
	checkNoHiddenReferences(t, reflect.TypeFor[Agent](), map[reflect.Type]bool{})
}

// Spec: Block.clone is Agent.clone for blocks, and a block read again
// (GetBlock) is equal to its first reading and the caller's own.
func TestBlockCloneSharesNothing(t *testing.T) {
	b := &Block{}
	fill(reflect.ValueOf(b).Elem())
	c := b.clone()
	if !reflect.DeepEqual(b, c) {
		t.Fatalf("copy %+v differs from %+v", c, b)
	}
	if path := shared(reflect.ValueOf(b).Elem(), reflect.ValueOf(c).Elem(), "Block"); path != "" {
		t.Fatalf("the copy shares %s with its original", path)
	}
	checkNoHiddenReferences(t, reflect.TypeFor[Block](), map[reflect.Type]bool{})

	db := kv.NewMemDB()
	txn, err := db.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Discard()
	if err := PutBlock(txn, b); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := GetBlock(txn, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, b) {
			t.Fatalf("read %+v, want %+v", got, b)
		}
		got.Metadata["k"] = "x"
		*got.Description, got.Tags[0] = "x", "x"
	}
	if _, err := GetBlock(txn, "block-missing"); err != ErrBlockNotFound {
		t.Fatalf("a missing block: %v", err)
	}
}

// fill sets every exported part of v to something not zero; an interface
// gets a JSON object holding an array, as decoding JSON makes.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.Interface:
		v.Set(reflect.ValueOf(map[string]any{"k": []any{"v", map[string]any{"n": json.Number("1")}}}))
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint8:
		v.SetUint(1)
	case reflect.Float64:
		v.SetFloat(1)
	}
}

// shared returns the path of the first memory a and b share, or "".
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map:
		if a.IsNil() {
			return ""
		}
		if a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
		if a.Kind() == reflect.Pointer {
			return shared(a.Elem(), b.Elem(), "*"+path)
		}
		for it := a.MapRange(); it.Next(); {
			if p := shared(it.Value(), b.MapIndex(it.Key()), path+"["+it.Key().String()+"]"); p != "" {
				return p
			}
		}
	case reflect.Slice:
		if a.Len() > 0 && a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), path+"[]"); p != "" {
				return p
			}
		}
	case reflect.Interface:
		if !a.IsNil() {
			return shared(a.Elem(), b.Elem(), path)
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func checkNoHiddenReferences(t *testing.T, typ reflect.Type, seen map[reflect.Type]bool) {
	t.Helper()
	if seen[typ] || typ == reflect.TypeFor[time.Time]() {
		return
	}
	seen[typ] = true
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		checkNoHiddenReferences(t, typ.Elem(), seen)
	case reflect.Map:
		checkNoHiddenReferences(t, typ.Key(), seen)
		checkNoHiddenReferences(t, typ.Elem(), seen)
	case reflect.Struct:
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() && isReference(f.Type) {
				t.Errorf("%s.%s is an unexported reference: clone would share it", typ, f.Name)
			}
			checkNoHiddenReferences(t, f.Type, seen)
		}
	}
}
