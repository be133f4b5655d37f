package agent

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Spec: a create's record is bounded by the JSON of the request's fields
// but its memory blocks (stored apart, under their own limits): fields of
// exactly MaxAgentRecordBytes pass, whatever the blocks hold, and one byte
// more is refused as invalid.
func TestCreateRecordSizeExcludesBlocks(t *testing.T) {
	label, value := "human", strings.Repeat("v", 5000)
	req := letta.CreateAgentRequest{MemoryBlocks: []letta.CreateBlock{{Label: &label, Value: &value}}}
	rest := req
	rest.MemoryBlocks = nil
	base, err := schema.Encode(rest)
	if err != nil {
		t.Fatal(err)
	}
	// A description of n characters takes n+2 bytes where null took 4.
	desc := strings.Repeat("d", MaxAgentRecordBytes-len(base)+4-2)
	req.Description = &desc
	rest.Description = &desc
	if data, err := schema.Encode(rest); err != nil || len(data) != MaxAgentRecordBytes {
		t.Fatalf("the fields encode to %d bytes (%v), want %d", len(data), err, MaxAgentRecordBytes)
	}
	if _, err := createPayload(req); err != nil {
		t.Errorf("fields at the limit: %v", err)
	}
	longer := desc + "d"
	req.Description = &longer
	var apiErr *letta.Error
	if _, err := createPayload(req); !errors.As(err, &apiErr) || apiErr.Kind != letta.KindInvalid {
		t.Errorf("fields one byte over the limit: %v, want an invalid request", err)
	}
}

// Spec: the model_settings of an agent created without them are Letta's
// derivation of its llm_config, with the keys in order of their names:
// max_output_tokens from max_tokens (4096 without), reasoning_effort
// ("minimal" without), a null response_format.
func TestModelSettingsJSON(t *testing.T) {
	maxTokens, effort := 1000, "high"
	for _, tc := range []struct {
		c    letta.LLMConfig
		want string
	}{
		{letta.LLMConfig{ModelEndpointType: "openai", Temperature: 0.7},
			`{"max_output_tokens":4096,"parallel_tool_calls":true,"provider_type":"openai","reasoning":{"reasoning_effort":"minimal"},"response_format":null,"strict":false,"temperature":0.7}`},
		{letta.LLMConfig{ModelEndpointType: "anthropic", MaxTokens: &maxTokens, ReasoningEffort: &effort, Strict: true},
			`{"max_output_tokens":1000,"parallel_tool_calls":true,"provider_type":"anthropic","reasoning":{"reasoning_effort":"high"},"response_format":null,"strict":true,"temperature":0}`},
	} {
		got, err := schema.Encode(modelSettingsFor(tc.c))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("model settings of %+v:\n got %s\nwant %s", tc.c, got, tc.want)
		}
	}
}

// Spec: a create that takes its request in process (actor.WithLocal, as
// Agents.Create does) answers and stores what one that decodes its payload
// answers and stores, ids and times aside.
func TestCreateTakesItsRequestAsItsPayloadDecodes(t *testing.T) {
	ctx := context.Background()
	svc, err := New(Config{Store: kv.NewMemDB(), DefaultModel: "openai/gpt-4o-mini"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	body := `{"name":"an agent","tags":["x","y"],"metadata":{"k": [1, 2.5, "s"]},"model_settings": { "temperature" : 0.5 },
		"memory_blocks":[{"label":"human","value":"v","metadata":{"m":1},"tags":["t"],"limit":50}],"description":"d",
		"initial_message_sequence":[{"role":"user","content":"hi"}],"timezone":"Europe/Paris","secrets":{"K":"v"}}`
	var req letta.CreateAgentRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	local, err := svc.Agents.CreateEncoded(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	c := svc.Agents.c
	payload, err := createPayload(req)
	if err != nil {
		t.Fatal(err)
	}
	id, opts, err := c.newActorFor(ctx, "agent")
	if err != nil {
		t.Fatal(err)
	}
	var decoded []byte
	if err := c.invokeEncoded(ctx, schema.AgentActor(id), opCreateAgent, payload, &decoded, opts...); err != nil {
		t.Fatal(err)
	}
	masked := func(js []byte) string {
		s := regexp.MustCompile(`[a-z_]+-[0-9a-f]{8}-[0-9a-f-]{27}`).ReplaceAllString(string(js), "<id>")
		return regexp.MustCompile(`"20\d\d-[0-9T:.Z+-]+"`).ReplaceAllString(s, "<time>")
	}
	if masked(local) != masked(decoded) {
		t.Errorf("answers differ:\n in process: %s\n decoded:    %s", masked(local), masked(decoded))
	}
	var created letta.AgentState
	if err := json.Unmarshal(local, &created); err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, agentID := range []string{created.ID, id} {
		st, err := svc.Agents.Get(ctx, agentID, true)
		if err != nil {
			t.Fatal(err)
		}
		js, err := schema.Encode(st)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, masked(js))
	}
	if stored[0] != stored[1] {
		t.Errorf("stored agents differ:\n in process: %s\n decoded:    %s", stored[0], stored[1])
	}
}
