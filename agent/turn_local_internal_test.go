package agent

import (
	"context"
	"reflect"
	"regexp"
	"testing"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/loop"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Spec: the turn's Begin and Step take their payload in process
// (actor.WithLocal) and run again with the same one when retried: running
// each twice leaves the payload as it was. And what they answer in process
// (actor.WithLocalReply) is what they answer encoded, ids and times aside.
func TestTurnOpsKeepTheirPayloadAndAnswerAsEncoded(t *testing.T) {
	ctx := context.Background()
	svc, err := New(Config{Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	c := svc.Agents.c
	id := func(prefix string) string {
		s, err := c.newID(prefix)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	name := "Ada"
	// run runs a turn's Begin and Step on a new agent, each twice with
	// the same payload, and returns their first answers, encoded.
	run := func(inProcess bool) (begun, stepped []byte) {
		a, err := svc.Agents.Create(ctx, letta.CreateAgentRequest{})
		if err != nil {
			t.Fatal(err)
		}
		begin := func() loop.BeginPayload {
			return loop.BeginPayload{RunID: id("run"), Keys: []string{id("otid")}, Inputs: []schema.Message{{
				ID: id("message"), Role: schema.RoleUser, Text: "hi", Name: &name, Content: []byte(`[{"type":"text","text":"hi"}]`),
			}}}
		}
		invoke := func(op string, payload any, times int) []byte {
			before, err := schema.Encode(payload)
			if err != nil {
				t.Fatal(err)
			}
			var first []byte
			for attempt := range times {
				var local any
				opts := []actor.InvokeOption{actor.WithLocal(reflect.ValueOf(payload).Elem().Interface())}
				if inProcess {
					opts = append(opts, actor.WithLocalReply(&local))
				}
				data, err := c.runtime.Invoke(ctx, schema.AgentActor(a.ID), op, nil, opts...)
				if attempt > 0 {
					continue // the second may fail (the run it stepped is closed): the payload is what counts
				}
				if err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				if inProcess != (local != nil) || inProcess != (data == nil) {
					t.Fatalf("%s in process %v: answered %d bytes encoded and %T in process", op, inProcess, len(data), local)
				}
				if first = data; local != nil {
					if first, err = schema.Encode(local); err != nil {
						t.Fatal(err)
					}
				}
			}
			after, err := schema.Encode(payload)
			if err != nil {
				t.Fatal(err)
			}
			if string(after) != string(before) {
				t.Errorf("%s changed its payload:\n was %s\n now %s", op, before, after)
			}
			return first
		}
		bp := begin()
		begun = invoke(loop.OpBegin, &bp, 2)
		// Begin again closed the first run: the step is of another.
		bp = begin()
		invoke(loop.OpBegin, &bp, 1)
		sp := loop.StepPayload{RunID: bp.RunID, ResultIDs: []string{id("message")}, Message: schema.Message{
			ID: id("message"), StepID: id("step"), Text: "hello", Name: &name, Content: []byte(`[{"type":"text","text":"hello"}]`),
			ToolCalls: []schema.ToolCall{{ID: "call_1", Name: "no_such_tool", Arguments: `{"a":1}`}},
		}}
		return begun, invoke(loop.OpStep, &sp, 2)
	}
	masked := func(js []byte) string {
		s := regexp.MustCompile(`[a-z_]+-[0-9a-f]{8}-[0-9a-f-]{27}`).ReplaceAllString(string(js), "<id>")
		return regexp.MustCompile(`"20\d\d-[0-9T:.Z+-]+"`).ReplaceAllString(s, "<time>")
	}
	localBegun, localStepped := run(true)
	begun, stepped := run(false)
	if masked(localBegun) != masked(begun) {
		t.Errorf("Begin answers differ:\n in process: %s\n encoded:    %s", masked(localBegun), masked(begun))
	}
	if masked(localStepped) != masked(stepped) {
		t.Errorf("Step answers differ:\n in process: %s\n encoded:    %s", masked(localStepped), masked(stepped))
	}
}
