package schema_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/letta"
)

// populateBatch runs a message batch of one request to completion.
func populateBatch(t *testing.T, svc *agent.Service, agentID string) {
	t.Helper()
	ctx := context.Background()
	req := letta.MessageRequest{Messages: []letta.MessageCreate{{Role: "user", Content: json.RawMessage(`"batched"`)}}}
	job, err := svc.Batches.Create(ctx, []agent.BatchRequest{{AgentID: agentID, Message: req}}, nil)
	must(t, err)
	for deadline := time.Now().Add(10 * time.Second); job.Status != letta.RunCompleted; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("batch still %s", job.Status)
		}
		job, err = svc.Batches.Get(ctx, job.ID)
		must(t, err)
	}
}
