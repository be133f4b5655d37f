package agent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
)

// TestListingStopsAtByteBudget: a listing of items so large that its limit
// would hold more than agent.MaxResponseBytes ends early, and paging on from
// its last item returns every item exactly once.
func TestListingStopsAtByteBudget(t *testing.T) {
	svc := newService(t, kv.NewDB(kv.NewMemEngine()), churn)
	value := strings.Repeat("x", memory.MaxBlockLimitChars)
	limit := memory.MaxBlockLimitChars
	const blocks = 40 // 40 MB of values, more than one response holds
	for i := range blocks {
		label := fmt.Sprintf("big-%02d", i)
		if _, err := svc.Blocks.Create(t.Context(), letta.CreateBlock{Label: &label, Value: &value, Limit: &limit}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var pages []int
	p := letta.Page{Limit: agent.MaxListLimit, Order: letta.Asc}
	for {
		got, err := svc.Blocks.List(t.Context(), agent.BlockFilter{}, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		pages = append(pages, len(got))
		bytes := 0
		for _, b := range got {
			if seen[b.ID] {
				t.Fatalf("block %s listed twice (pages %v)", b.ID, pages)
			}
			seen[b.ID] = true
			bytes += len(b.Value)
		}
		if bytes > agent.MaxResponseBytes+len(value) {
			t.Fatalf("a page holds %d bytes of values, past the budget of %d plus one item", bytes, agent.MaxResponseBytes)
		}
		p.After = got[len(got)-1].ID
	}
	if len(seen) != blocks {
		t.Fatalf("paging returned %d of %d blocks (pages %v)", len(seen), blocks, pages)
	}
	if len(pages) < 2 || pages[0] >= blocks {
		t.Fatalf("pages %v: the first page should have ended early at the byte budget", pages)
	}
}
