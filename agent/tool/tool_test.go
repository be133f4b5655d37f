package tool

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/schema"
)

// Spec: arguments decode by the fields of the row's type: a plain field is
// required, a pointer or slice is optional, and each wrong one is an error
// for the model that names it.
func TestDecodeArgs(t *testing.T) {
	type args struct {
		Label string   `json:"label"`
		Line  *int     `json:"line"`
		Tags  []string `json:"tags"`
		Note  *string  `json:"note"`
	}
	cases := []struct {
		raw  string
		want string // error, or "" for success
	}{
		{`{"label":"a"}`, ""},
		{`{"label":"a","line":3,"tags":["x"],"note":"n"}`, ""},
		{`{"label":"a","line":null}`, ""},
		{`{}`, `missing required argument "label"`},
		{`{"label":null}`, `missing required argument "label"`},
		{`{"label":1}`, `argument "label" must be a string`},
		{`{"label":"a","line":1.5}`, `argument "line" must be an integer`},
		{`{"label":"a","line":"2"}`, `argument "line" must be an integer`},
		{`{"label":"a","tags":"x"}`, `argument "tags" must be a list of strings`},
	}
	for _, c := range cases {
		raw := map[string]json.RawMessage{}
		if err := json.Unmarshal([]byte(c.raw), &raw); err != nil {
			t.Fatal(err)
		}
		var a args
		err := decodeArgs(raw, reflect.ValueOf(&a).Elem())
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.raw, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s: got %v, want %q", c.raw, err, c.want)
		}
	}
	raw := map[string]json.RawMessage{"label": json.RawMessage(`"a"`), "line": json.RawMessage(`3`)}
	var a args
	if err := decodeArgs(raw, reflect.ValueOf(&a).Elem()); err != nil || a.Label != "a" || a.Line == nil || *a.Line != 3 || a.Note != nil {
		t.Errorf("decoded %+v, %v", a, err)
	}
}

// Spec: whatever the model sends, Run answers with a result; only a fault
// of storage fails the step.
func TestRunAlwaysAnswers(t *testing.T) {
	a := &schema.Agent{AgentType: "memgpt_agent"}
	env := &Env{Agent: a, Tools: AgentTools(a)}
	cases := []struct {
		call schema.ToolCall
		want string
	}{
		{schema.ToolCall{Name: "no_such_tool", Arguments: `{}`}, `Error: there is no tool named "no_such_tool"`},
		{schema.ToolCall{Name: "send_message", Arguments: `[1]`}, "Error: the arguments of send_message are not a JSON object"},
		{schema.ToolCall{Name: "send_message", Arguments: `{}`}, `Error: missing required argument "message"`},
	}
	for _, c := range cases {
		got, ok, err := Run(env, c.call)
		if err != nil || ok || !strings.HasPrefix(got, c.want) {
			t.Errorf("%s(%s) = %q, %v, %v; want %q", c.call.Name, c.call.Arguments, got, ok, err, c.want)
		}
	}
	if got, ok, err := Run(env, schema.ToolCall{Name: "send_message", Arguments: `{"message":"hi"}`}); !ok || err != nil || got != "Sent message successfully." {
		t.Errorf("send_message = %q, %v, %v", got, ok, err)
	}
}

// Spec: each agent type is offered its base tools, include_base_tools
// false offers none, and named built-in tools are added once (a name that
// is not built in is not offered: creation refuses it).
func TestAgentTools(t *testing.T) {
	names := func(a *schema.Agent) string {
		var out []string
		for _, tl := range AgentTools(a) {
			out = append(out, tl.Name)
		}
		return strings.Join(out, ",")
	}
	no := false
	cases := []struct {
		a    *schema.Agent
		want string
	}{
		{&schema.Agent{AgentType: "letta_v1_agent"}, "conversation_search,memory_insert,memory_replace,archival_memory_insert,archival_memory_search"},
		{&schema.Agent{AgentType: "memgpt_agent"}, "send_message,conversation_search,core_memory_append,core_memory_replace,archival_memory_insert,archival_memory_search"},
		{&schema.Agent{AgentType: "react_agent", ToolNames: []string{"send_message", "web_search", "no_such_tool"}}, "send_message,web_search"},
		{&schema.Agent{AgentType: "letta_v1_agent", IncludeBaseTools: &no, ToolNames: []string{"memory_insert", "memory_insert"}}, "memory_insert"},
	}
	for _, c := range cases {
		if got := names(c.a); got != c.want {
			t.Errorf("%s %v: %s, want %s", c.a.AgentType, c.a.ToolNames, got, c.want)
		}
	}
}

// Spec: every built-in row renders as Letta's Tool, its schema the row's.
func TestBuiltinsRender(t *testing.T) {
	for _, tl := range Builtins() {
		lt := tl.Letta()
		var params map[string]any
		if raw, ok := lt.JSONSchema["parameters"].(json.RawMessage); ok {
			if err := json.Unmarshal(raw, &params); err != nil {
				t.Errorf("%s: parameters %s: %v", tl.Name, raw, err)
			}
		}
		if lt.Name != tl.Name || params["type"] != "object" || !strings.HasPrefix(lt.ID, "tool-") {
			t.Errorf("%s renders as %+v", tl.Name, lt)
		}
	}
}

// Spec: a row whose schema is not a JSON Schema object is a bug, caught
// when the row is made.
func TestDefineRejectsBadSchema(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("define accepted a schema that is not an object")
		}
	}()
	define("bad", "custom", "", `[]`, func(*Env, struct{}) (string, error) { return "", nil })
}

// Spec: the web tools letta-code asks for are offered, and both run
// outside the step (Deferred): they reach the network.
func TestWebToolsAreOffered(t *testing.T) {
	no := false
	a := &schema.Agent{AgentType: "letta_v1_agent", IncludeBaseTools: &no, ToolNames: []string{"web_search", "fetch_webpage"}}
	tools := AgentTools(a)
	for _, name := range a.ToolNames {
		if f := Find(tools, name); f == nil || !f.Deferred() {
			t.Errorf("%s offered as %+v, want a deferred tool", name, f)
		}
	}
}
