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
