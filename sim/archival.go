package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/embedding"
)

// Archival memory with embeddings. The simulated embeddings provider
// embeds every text as the LLM double does (embedding.HashedWords, in
// simEmbeddingDim dimensions), so a passage is nearest to a query of its
// own text; the LLM faults of the profile make an embeddings request fail
// (a server error, or a timeout). Passages created through the API are
// then embedded (or refused, 503, when embedding failed), the agent loop
// embeds the model's archival tool calls, and searches rank by meaning.
//
// The checker: once the run is over, the audit searches each agent's
// passages for each one's own text (POST /v1/passages/search), and every
// passage whose create was acknowledged and that nothing may have deleted
// must be found, first of the vector ranking (the audit's faults are
// silenced, so the search is hybrid).

// simEmbeddingDim is the dimension of the simulated embeddings.
const simEmbeddingDim = 32

// simEmbedder is the run's embeddings provider.
type simEmbedder struct{ sys *system }

// Embed implements embedding.Embedder.
func (e simEmbedder) Embed(ctx context.Context, handle string, texts []string) ([][]float32, error) {
	s, inj := e.sys, e.sys.inj
	switch {
	case inj.fire(LLMError, "embed", []byte(handle)):
		s.notePath(ctx, pathLLM, "llm_error on an embeddings request")
		return nil, errors.New("sim: the embeddings server failed (500)")
	case inj.fire(LLMTimeout, "embed", []byte(handle)):
		s.notePath(ctx, pathLLM, "llm_timeout on an embeddings request")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("sim embeddings: %w", ctx.Err())
		case <-s.clock.After(time.Duration(1+inj.intn(5)) * time.Millisecond):
		}
		return nil, fmt.Errorf("sim: embeddings request timed out: %w", context.DeadlineExceeded)
	}
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = embedding.HashedWords(t, simEmbeddingDim)
	}
	return out, nil
}

// passageSearch is what the audit's search of a passage's own text found.
type passageSearch struct {
	status     int
	excused    bool   // a damaged value was on its path
	mode       string // the search mode it reported
	vectorRank int    // the passage's place in the vector ranking; 0: not found by it
	found      bool
	// ties is how many of the agent's passages (itself included) are as
	// near its text by meaning as it is: the simulated embeddings hash
	// words into few dimensions, so two texts may embed alike, and any of
	// them may come first.
	ties int
}

// searchPassages searches, in each agent's archival memory read whole by
// the audit's listings, for each passage's own text.
func (r *auditReader) searchPassages(a *audit) map[string]*passageSearch {
	out := map[string]*passageSearch{}
	for _, path := range sortedKeys(a.listings) {
		la := a.listings[path]
		if la.kind != passagesListing || la.whole == nil {
			continue
		}
		status, body, _ := r.get(fmt.Sprintf("%s?limit=%d", path, agent.MaxListLimit))
		var ps []struct{ ID, Text string }
		if status != 200 || json.Unmarshal(body, &ps) != nil {
			continue
		}
		vecs := make([][]float32, len(ps))
		for i, p := range ps {
			vecs[i] = embedding.Normalize(embedding.HashedWords(p.Text, simEmbeddingDim))
		}
		for i, p := range ps {
			s := r.searchPassage(la.object, p.ID, p.Text)
			for _, v := range vecs {
				if embedding.Dot(vecs[i], v) >= 1-1e-5 {
					s.ties++
				}
			}
			out[p.ID] = s
		}
	}
	return out
}

func (r *auditReader) searchPassage(agentID, id, text string) *passageSearch {
	req, _ := json.Marshal(map[string]any{"query": text, "agent_id": agentID, "limit": 100})
	status, body, excused := r.do("POST", "/v1/passages/search", req)
	ps := &passageSearch{status: status, excused: excused}
	var hits []struct {
		Passage  struct{ ID string } `json:"passage"`
		Metadata struct {
			SearchMode string `json:"search_mode"`
			VectorRank int    `json:"vector_rank"`
		} `json:"metadata"`
	}
	if status != 200 || json.Unmarshal(body, &hits) != nil {
		return ps
	}
	for _, h := range hits {
		ps.mode = h.Metadata.SearchMode
		if h.Passage.ID == id {
			ps.found, ps.vectorRank = true, h.Metadata.VectorRank
		}
	}
	return ps
}

// checkPassageSearches: each passage of agentID that must be listed (an
// acknowledged create, no delete that may have happened) is found by the
// audit's search for its text, first by meaning.
func (c *checker) checkPassageSearches(a *audit, agentID string, must map[string]*opRecord) {
	for _, id := range sortedKeys(must) {
		s := a.searches[id]
		if s == nil || s.status != 200 {
			continue // not listed (checkPresence says so), or not read (get says why)
		}
		c.count("passages_searched", 1)
		switch op := must[id]; {
		case !s.found:
			c.report("archival-search", fmt.Sprintf("agent %s: a search for the text of passage %s, which op #%d created and was acknowledged, does not find it", agentID, id, op.ID),
				c.historyOf(id, op.ID))
		case s.mode != "hybrid" || s.vectorRank < 1 || s.vectorRank > s.ties:
			c.report("archival-search", fmt.Sprintf("agent %s: a search for the text of passage %s (op #%d) found it %s, at vector rank %d (%d passages embed alike): want hybrid, first by meaning", agentID, id, op.ID, s.mode, s.vectorRank, s.ties),
				c.historyOf(id, op.ID))
		}
	}
}
