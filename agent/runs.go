package agent

import (
	"context"
	"slices"
	"time"

	"github.com/kelpie/kelpie/agent/message"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Runs is the surface of runs: the record of each turn.
type Runs struct{ c *core }

// DefaultRunListLimit is the page size of run listings.
const DefaultRunListLimit = 100

// Get returns a run.
func (s *Runs) Get(ctx context.Context, runID string) (*letta.Run, error) {
	return readRecord(ctx, s.c, "run_id", "run", runID, schema.GetRun, renderRun)
}

// RunFilter narrows a listing of runs.
type RunFilter struct {
	AgentID        string
	AgentIDs       []string // any of them (Letta's deprecated agent_ids)
	ConversationID string
	Statuses       []string
	Active         bool  // only runs still going
	Background     *bool // only background runs (true) or only others
	StopReason     string
}

func (f RunFilter) match(r *schema.Run) bool {
	switch {
	case f.AgentID != "" && r.AgentID != f.AgentID,
		f.ConversationID != "" && r.ConversationID != f.ConversationID,
		len(f.Statuses) > 0 && !slices.Contains(f.Statuses, r.Status),
		f.Active && r.Finished(),
		len(f.AgentIDs) > 0 && !slices.Contains(f.AgentIDs, r.AgentID),
		f.Background != nil && *f.Background != r.Background,
		f.StopReason != "" && r.StopReason != f.StopReason:
		return false
	}
	return true
}

// runIndex lists runs by creation time.
var runIndex = index[*schema.Run]{
	prefix: schema.RunIndex.Prefix, idPrefix: "run", get: schema.GetRun,
	created: func(r *schema.Run) time.Time { return r.CreatedAt },
}

// List lists runs by creation time.
func (s *Runs) List(ctx context.Context, f RunFilter, p letta.Page) ([]*letta.Run, error) {
	p, err := checkPage(p, DefaultRunListLimit)
	if err != nil {
		return nil, err
	}
	out := []*letta.Run{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		return listIndex(txn, runIndex, p, func(r *schema.Run) (bool, error) {
			if f.match(r) {
				out = append(out, renderRun(r))
			}
			return len(out) < p.Limit, nil
		})
	})
	return out, err
}

// Messages lists the messages of a run, oldest first, inputs included.
func (s *Runs) Messages(ctx context.Context, runID string, p letta.Page) ([]letta.Message, error) {
	if err := letta.CheckID("run_id", "run", runID); err != nil {
		return nil, err
	}
	p, err := checkPage(p, DefaultMessageListLimit)
	if err != nil {
		return nil, err
	}
	var out []letta.Message
	err = s.c.read(ctx, func(txn kv.Txn) error {
		run, err := schema.GetRun(txn, runID)
		if err != nil {
			return err
		}
		ms, err := message.OfRun(txn, run)
		if err == nil {
			out = message.Page(ms, p)
		}
		return err
	})
	return out, err
}

func renderRun(r *schema.Run) *letta.Run {
	out := &letta.Run{ID: r.ID, Status: r.Status, CreatedAt: letta.Timestamp{Time: r.CreatedAt}, AgentID: r.AgentID}
	if r.ConversationID != "" {
		out.ConversationID = new(r.ConversationID)
	}
	if r.Background {
		out.Background = new(true)
	}
	if r.StopReason != "" {
		out.StopReason = new(r.StopReason)
	}
	if r.CompletedAt != nil {
		out.CompletedAt = &letta.Timestamp{Time: *r.CompletedAt}
		out.TotalDurationNs = new(r.CompletedAt.Sub(r.CreatedAt).Nanoseconds())
	}
	if r.Error != "" {
		out.Metadata = map[string]any{"error": map[string]any{"type": "run_error", "message": r.Error}}
	}
	return out
}

// Usage returns the token usage of a run: what its steps have used so far.
func (s *Runs) Usage(ctx context.Context, runID string) (*letta.UsageStatistics, error) {
	if err := letta.CheckID("run_id", "run", runID); err != nil {
		return nil, err
	}
	var out letta.UsageStatistics
	err := s.c.read(ctx, func(txn kv.Txn) error {
		r, err := schema.GetRun(txn, runID)
		if err == nil {
			out = r.Usage.Statistics()
		}
		return err
	})
	return &out, err
}
