package agent

import (
	"context"

	"github.com/kelpie/kelpie/agent/memory"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of POST /v1/passages/search (Letta's).
const (
	DefaultPassageSearchLimit = 50
	MaxPassageSearchLimit     = 100
)

// SearchAll searches passages (POST /v1/passages/search): an agent's own
// and its archives' with AgentID, else one archive's with ArchiveID, else
// every agent's and archive's. The query is embedded with the agent's or
// archive's model (the default model across them) before the read;
// passages embedded by another model are ranked by words only. Each hit's
// metadata says how it was found.
func (s *Archival) SearchAll(ctx context.Context, req letta.PassageSearchRequest) ([]letta.PassageSearchResult, error) {
	q := ArchivalQuery{Query: or(req.Query, ""), Tags: req.Tags, TopK: DefaultPassageSearchLimit}
	if m := or(req.TagMatchMode, "any"); m != "any" && m != "all" {
		return nil, letta.Invalidf("tag_match_mode must be 'any' or 'all', not %q", m)
	}
	q.TagMatchAll = or(req.TagMatchMode, "") == "all"
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > MaxPassageSearchLimit {
			return nil, letta.Invalidf("limit %d is out of range: want 1 to %d", *req.Limit, MaxPassageSearchLimit)
		}
		q.TopK = *req.Limit
	}
	if req.StartDate != nil {
		q.Start = &req.StartDate.Time
	}
	if req.EndDate != nil {
		q.End = &req.EndDate.Time
	}
	owners, handle, err := s.searched(ctx, req)
	if err != nil {
		return nil, err
	}
	s.c.embedQuery(ctx, handle, &q)
	out := []letta.PassageSearchResult{}
	err = s.c.read(ctx, func(txn kv.Txn) error {
		hits, mode, err := memory.RankPassages(txn, owners, q)
		if err != nil {
			return err
		}
		for _, h := range hits {
			p, err := renderStored(txn, h.Passage)
			if err != nil {
				return err
			}
			out = append(out, letta.PassageSearchResult{Passage: p, Score: h.Score, Metadata: hitMetadata(h, mode, q.NoVector)})
		}
		return nil
	})
	return out, err
}

// searched returns the owners of the passages a search covers (nil: all)
// and the model its query is embedded with.
func (s *Archival) searched(ctx context.Context, req letta.PassageSearchRequest) (owners []string, handle string, err error) {
	switch {
	case req.AgentID != nil:
		if err := letta.CheckID("agent_id", "agent", *req.AgentID); err != nil {
			return nil, "", err
		}
		err = s.c.read(ctx, func(txn kv.Txn) error {
			a, err := schema.GetAgent(txn, *req.AgentID)
			if err != nil {
				return err
			}
			archives, err := schema.AgentArchiveIDs(txn, a.ID)
			owners, handle = append([]string{a.ID}, archives...), memory.EmbeddingHandle(a)
			return err
		})
		return owners, handle, err
	case req.ArchiveID != nil:
		if err := letta.CheckID("archive_id", "archive", *req.ArchiveID); err != nil {
			return nil, "", err
		}
		err = s.c.read(ctx, func(txn kv.Txn) error {
			a, err := schema.GetArchive(txn, *req.ArchiveID)
			if err == nil {
				owners, handle = []string{a.ID}, a.Embedding
			}
			return err
		})
		return owners, handle, err
	}
	return nil, memory.DefaultEmbedding, nil
}

// hitMetadata says how a hit was found: the search mode (and why it was
// lexical), and its place in each ranking.
func hitMetadata(h memory.Ranked, mode, noVector string) map[string]any {
	md := map[string]any{"search_mode": mode, "combined_score": h.Score}
	if mode == memory.ModeLexical && noVector != "" {
		md["note"] = noVector
	}
	if h.VectorRank > 0 {
		md["vector_rank"], md["vector_score"] = h.VectorRank, h.VectorScore
	}
	if h.LexicalRank > 0 {
		md["fts_rank"] = h.LexicalRank
	}
	return md
}
