package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/embedding"
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
	// Embedded is the text's embedding, computed before the invocation;
	// nil when no provider is configured.
	Embedded *memory.Embedded `json:"embedded,omitempty"`
}

// Create stores a passage in an agent's archival memory.
func (s *Archival) Create(ctx context.Context, agentID string, req letta.CreatePassageRequest) ([]letta.Passage, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if err := memory.CheckPassage(req.Text, req.Tags); err != nil {
		return nil, err
	}
	a, err := s.c.getAgent(ctx, agentID)
	if err != nil {
		return nil, err
	}
	embs, _, err := memory.Embed(ctx, s.c.embedder, memory.EmbeddingHandle(a), []string{req.Text})
	if err != nil {
		return nil, err
	}
	id, err := s.c.newIDFor(ctx, "passage")
	if err != nil {
		return nil, err
	}
	payload := passagePayload{ID: id, Text: req.Text, Tags: req.Tags}
	if embs != nil {
		payload.Embedded = embs[0]
	}
	var p letta.Passage
	if err := s.c.invoke(ctx, schema.AgentActor(agentID), opInsertPassage, payload, &p); err != nil {
		return nil, err
	}
	return []letta.Passage{p}, nil
}

func insertPassage(_ *core, call *actor.Call, a *schema.Agent, p passagePayload) ([]byte, error) {
	rec, err := memory.InsertPassage(call.Txn, a.ID, p.ID, p.Text, p.Tags, p.Embedded, call.Now)
	if err != nil {
		return nil, err
	}
	var vec []float32
	if p.Embedded != nil {
		vec = p.Embedded.Vector
	}
	return schema.Encode(renderPassage(rec, vec))
}

// getAgent reads an agent's record.
func (c *core) getAgent(ctx context.Context, agentID string) (*schema.Agent, error) {
	var a *schema.Agent
	err := c.read(ctx, func(txn kv.Txn) (err error) {
		a, err = schema.GetAgent(txn, agentID)
		return err
	})
	return a, err
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

// List lists an agent's passages, its own and those of the archives
// attached to it (as Letta lists the passages of an agent's archives), by
// creation time; cursors are passage ids.
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
		ps, err := listedPassages(txn, agentID)
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
			r, err := renderStored(txn, p)
			if err != nil {
				return err
			}
			if out, size = append(out, r), size+512+len(p.Text)+16*len(r.Embedding); page.Full(len(out), size) {
				break
			}
		}
		return nil
	})
	return out, err
}

// listedPassages returns the passages of an agent and of the archives
// attached to it: each owner's in insertion order (whatever the clock
// did between inserts), merged by creation time (the agent's first among
// equal times).
func listedPassages(txn kv.Txn, agentID string) ([]*schema.Passage, error) {
	archives, err := schema.AgentArchiveIDs(txn, agentID)
	if err != nil {
		return nil, err
	}
	var lists [][]*schema.Passage
	total := 0
	for _, owner := range append([]string{agentID}, archives...) {
		ps, err := memory.Passages(txn, owner)
		if err != nil {
			return nil, err
		}
		lists, total = append(lists, ps), total+len(ps)
	}
	out := make([]*schema.Passage, 0, total)
	for len(out) < total {
		next := -1
		for i, l := range lists {
			if len(l) > 0 && (next < 0 || l[0].CreatedAt.Before(lists[next][0].CreatedAt)) {
				next = i
			}
		}
		out, lists[next] = append(out, lists[next][0]), lists[next][1:]
	}
	return out, nil
}

// Search searches an agent's archival memory (see memory.SearchArchival):
// the query is embedded first, outside any transaction; without an
// embedding (no provider, or it failed) the search ranks by words and says
// why.
func (s *Archival) Search(ctx context.Context, agentID string, q ArchivalQuery) (*letta.ArchivalSearchResponse, error) {
	if err := letta.CheckID("agent_id", "agent", agentID); err != nil {
		return nil, err
	}
	if q.TopK < 0 || q.TopK > memory.MaxArchivalSearchTopK {
		return nil, letta.Invalidf("top_k %d is out of range: want 1 to %d", q.TopK, memory.MaxArchivalSearchTopK)
	}
	a, err := s.c.getAgent(ctx, agentID)
	if err != nil {
		return nil, err
	}
	s.c.embedQuery(ctx, memory.EmbeddingHandle(a), &q)
	q.Timezone = a.Timezone
	var out *letta.ArchivalSearchResponse
	err = s.c.read(ctx, func(txn kv.Txn) error {
		if _, err := schema.GetAgent(txn, agentID); err != nil {
			return err
		}
		out, err = memory.SearchArchival(txn, agentID, q)
		return err
	})
	return out, err
}

// embedQuery sets q's embedding, or why it has none. A failing provider
// does not fail the search: it falls back to words and says so.
func (c *core) embedQuery(ctx context.Context, handle string, q *ArchivalQuery) {
	if strings.TrimSpace(q.Query) == "" {
		return
	}
	embs, why, err := memory.Embed(ctx, c.embedder, handle, []string{q.Query})
	switch {
	case err != nil:
		c.log.WarnContext(ctx, "agent: embedding a search query failed", "error", err)
		q.NoVector = err.Error() + ": passages are ranked by matching words only"
	case embs == nil:
		q.NoVector = why
	default:
		q.Embedded = embs[0]
	}
}

// renderPassage is a passage as the API shows it, with its vector (nil
// if it has none) and the config of the model that made it.
func renderPassage(p *schema.Passage, vec []float32) letta.Passage {
	out := letta.Passage{
		CreatedAt: letta.Timestamp{Time: p.CreatedAt}, UpdatedAt: letta.Timestamp{Time: p.UpdatedAt},
		Metadata: nonNilMap(p.Metadata), Tags: nonNil(p.Tags), ID: p.ID, Text: p.Text,
	}
	if p.ArchiveID != "" {
		out.ArchiveID = new(p.ArchiveID)
	}
	if p.FolderID != "" {
		out.SourceID, out.FileID = new(p.FolderID), new(p.FileID)
	}
	if p.Embedding != "" && vec != nil {
		out.Embedding = make([]float64, len(vec))
		for i, x := range vec {
			out.Embedding[i] = float64(x)
		}
		if cfg, err := embeddingConfigFor(p.Embedding); err == nil {
			cfg.EmbeddingDim = len(vec)
			out.EmbeddingConfig = cfg
		}
	}
	return out
}

// renderStored renders a stored passage with its stored vector.
func renderStored(txn kv.Txn, p *schema.Passage) (letta.Passage, error) {
	enc, err := schema.GetPassageVector(txn, p)
	if err != nil || enc == nil {
		return renderPassage(p, nil), err
	}
	vec, err := embedding.Decode(enc)
	if err != nil {
		return letta.Passage{}, fmt.Errorf("passage %s: %w", p.ID, err)
	}
	return renderPassage(p, vec), nil
}
