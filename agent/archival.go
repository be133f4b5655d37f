package agent

import (
	"context"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Archival is the surface of agents' archival memory: passages stored
// apart from the context and searched on demand.
type Archival struct{ c *core }

// DefaultPassageListLimit is the page size of passage listings.
const DefaultPassageListLimit = 100

// ArchivalQuery is a search of archival memory: see memory.ArchivalQuery.
type ArchivalQuery = memory.ArchivalQuery

// passagePayload is the payload of the passage operations.
type passagePayload struct {
	ID   string   `json:"id"`
	Text string   `json:"text"`
	Tags []string `json:"tags"`
}

// Create stores a passage in an agent's archival memory.
func (s *Archival) Create(ctx context.Context, agentID string, req letta.CreatePassageRequest) ([]letta.Passage, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if err := memory.CheckPassage(req.Text, req.Tags); err != nil {
		return nil, err
	}
	id, err := s.c.newIDFor(ctx, "passage")
	if err != nil {
		return nil, err
	}
	var p letta.Passage
	if err := s.c.invoke(ctx, schema.AgentActor(agentID), opInsertPassage, passagePayload{ID: id, Text: req.Text, Tags: req.Tags}, &p); err != nil {
		return nil, err
	}
	return []letta.Passage{p}, nil
}

func insertPassage(_ *core, call *actor.Call, a *schema.Agent, p passagePayload) ([]byte, error) {
	rec, err := memory.InsertPassage(call.Txn, a.ID, p.ID, p.Text, p.Tags, call.Now)
	if err != nil {
		return nil, err
	}
	return schema.Encode(renderPassage(rec))
}

// Delete deletes a passage.
func (s *Archival) Delete(ctx context.Context, agentID, passageID string) error {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return err
	}
	if err := letta.CheckID("memory_id", "passage", passageID); err != nil {
		return err
	}
	return s.c.invoke(ctx, schema.AgentActor(agentID), opDeletePassage, passagePayload{ID: passageID}, nil)
}

func deletePassage(_ *core, call *actor.Call, a *schema.Agent, p passagePayload) ([]byte, error) {
	return nil, memory.DeletePassage(call.Txn, a.ID, p.ID)
}

// PassageFilter narrows a listing of passages.
type PassageFilter struct {
	Search    string
	Ascending bool
}

// List lists an agent's passages by creation time; cursors are passage
// ids.
func (s *Archival) List(ctx context.Context, agentID string, f PassageFilter, before, after string, limit int) ([]letta.Passage, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if limit < 0 || limit > MaxListLimit {
		return nil, letta.Invalidf("limit %d is out of range: want 1 to %d", limit, MaxListLimit)
	}
	if limit == 0 {
		limit = DefaultPassageListLimit
	}
	out := []letta.Passage{}
	page := letta.Page{Limit: limit, MaxBytes: MaxResponseBytes}
	size := 0
	err := s.c.read(ctx, func(txn kv.Txn) error {
		if _, err := schema.GetAgent(txn, agentID); err != nil {
			return err
		}
		ps, err := memory.Passages(txn, agentID)
		if err != nil {
			return err
		}
		if !f.Ascending {
			slices.Reverse(ps)
		}
		pos := map[string]int{}
		for i, p := range ps {
			pos[p.ID] = i
		}
		for i, p := range ps {
			if a, ok := pos[after]; ok && i <= a {
				continue
			}
			if b, ok := pos[before]; ok && i >= b {
				continue
			}
			if f.Search != "" && !strings.Contains(strings.ToLower(p.Text), strings.ToLower(f.Search)) {
				continue
			}
			if out, size = append(out, renderPassage(p)), size+512+len(p.Text); page.Full(len(out), size) {
				break
			}
		}
		return nil
	})
	return out, err
}

// Search searches an agent's archival memory (see memory.SearchArchival).
func (s *Archival) Search(ctx context.Context, agentID string, q ArchivalQuery) (*letta.ArchivalSearchResponse, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if q.TopK < 0 || q.TopK > memory.MaxArchivalSearchTopK {
		return nil, letta.Invalidf("top_k %d is out of range: want 1 to %d", q.TopK, memory.MaxArchivalSearchTopK)
	}
	var out *letta.ArchivalSearchResponse
	err := s.c.read(ctx, func(txn kv.Txn) error {
		a, err := schema.GetAgent(txn, agentID)
		if err != nil {
			return err
		}
		ps, err := memory.Passages(txn, agentID)
		if err != nil {
			return err
		}
		q.Timezone = a.Timezone
		out = memory.SearchArchival(ps, q)
		return nil
	})
	return out, err
}

func renderPassage(p *schema.Passage) letta.Passage {
	return letta.Passage{
		CreatedAt: letta.Timestamp{Time: p.CreatedAt}, UpdatedAt: letta.Timestamp{Time: p.UpdatedAt},
		Metadata: map[string]any{}, Tags: nonNil(p.Tags), ID: p.ID, Text: p.Text,
	}
}
