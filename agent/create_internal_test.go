package agent

import (
	"errors"
	"strings"
	"testing"

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
