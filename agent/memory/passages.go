package memory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent/prompt"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/letta"
	"github.com/kelpie/kelpie/schema"
)

// Limits of archival memory.
const (
	MaxPassageChars       = 100_000
	DefaultArchivalTopK   = 10
	MaxArchivalSearchTopK = 1000
)

// CheckPassage validates a passage's text and tags.
func CheckPassage(text string, tags []string) error {
	if err := letta.CheckChars("text", text, MaxPassageChars); err != nil {
		return err
	}
	if strings.TrimSpace(text) == "" {
		return letta.Invalidf("text must not be empty")
	}
	return letta.CheckTags("tags", tags)
}

// InsertPassage stores a passage as the agent's newest.
func InsertPassage(txn kv.Txn, agentID, id, text string, tags []string, now time.Time) (*schema.Passage, error) {
	if _, err := txn.Get(schema.PassageIDKey(id)); err == nil {
		return nil, letta.Conflictf("passage %s already exists", id)
	}
	var seq uint64 = 1
	last, err := txn.Scan(kv.PrefixRange(schema.PassagesOf(agentID)), 1, true)
	if err != nil {
		return nil, err
	}
	if len(last) == 1 {
		prev, err := schema.DecodePassage(last[0].Value)
		if err != nil {
			return nil, fmt.Errorf("passage %q: %w", last[0].Key, err)
		}
		seq = prev.Seq + 1
	}
	if tags == nil {
		tags = []string{}
	}
	p := &schema.Passage{ID: id, AgentID: agentID, Seq: seq, Text: text, Tags: tags, CreatedAt: now, UpdatedAt: now}
	return p, schema.PutPassage(txn, p)
}

// DeletePassage deletes a passage of an agent.
func DeletePassage(txn kv.Txn, agentID, passageID string) error {
	k, err := txn.Get(schema.PassageIDKey(passageID))
	if errors.Is(err, kv.ErrNotFound) || err == nil && !strings.HasPrefix(string(k), string(schema.PassagesOf(agentID))) {
		return letta.NotFoundf("Passage %s not found", passageID)
	}
	if err != nil {
		return err
	}
	if err := txn.Delete(k); err != nil {
		return err
	}
	return txn.Delete(schema.PassageIDKey(passageID))
}

// Passages returns an agent's passages, oldest first.
func Passages(txn kv.Txn, agentID string) ([]*schema.Passage, error) {
	kvs, err := txn.Scan(kv.PrefixRange(schema.PassagesOf(agentID)), 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]*schema.Passage, 0, len(kvs))
	for _, p := range kvs {
		rec, err := schema.DecodePassage(p.Value)
		if err != nil {
			return nil, fmt.Errorf("passage %q: %w", p.Key, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// Tags returns the distinct tags of passages, sorted.
func Tags(ps []*schema.Passage) []string {
	var tags []string
	for _, p := range ps {
		tags = append(tags, p.Tags...)
	}
	slices.Sort(tags)
	return slices.Compact(tags)
}

// ArchivalQuery is a search of archival memory.
type ArchivalQuery struct {
	Query       string
	Tags        []string
	TagMatchAll bool
	TopK        int // 0: DefaultArchivalTopK
	Start, End  *time.Time
	Timezone    string // of the times shown
}

// SearchArchival ranks passages by how many of the query's words they
// contain, newer first among equals. (Kelpie has no embeddings yet.)
func SearchArchival(ps []*schema.Passage, q ArchivalQuery) *letta.ArchivalSearchResponse {
	topK := q.TopK
	if topK == 0 {
		topK = DefaultArchivalTopK
	}
	words := strings.Fields(strings.ToLower(q.Query))
	var hits []scored[*schema.Passage]
	for _, p := range ps {
		if q.Start != nil && p.CreatedAt.Before(*q.Start) || q.End != nil && p.CreatedAt.After(*q.End) {
			continue
		}
		if !MatchTags(p.Tags, q.Tags, q.TagMatchAll) {
			continue
		}
		score := wordsIn(p.Text, words)
		if len(words) > 0 && score == 0 {
			continue
		}
		hits = append(hits, scored[*schema.Passage]{p, score})
	}
	slices.SortStableFunc(hits, func(a, b scored[*schema.Passage]) int {
		if a.score != b.score {
			return b.score - a.score
		}
		return b.item.CreatedAt.Compare(a.item.CreatedAt)
	})
	out := &letta.ArchivalSearchResponse{Results: []letta.ArchivalResult{}}
	for _, h := range hits[:min(len(hits), topK)] {
		tags := h.item.Tags
		if tags == nil {
			tags = []string{}
		}
		out.Results = append(out.Results, letta.ArchivalResult{
			ID: h.item.ID, Timestamp: prompt.Clock(h.item.CreatedAt, q.Timezone), Content: h.item.Text, Tags: tags,
		})
	}
	out.Count = len(out.Results)
	return out
}

// scored is a search hit with its score.
type scored[T any] struct {
	item  T
	score int
}

// wordsIn counts how many of words (lower case) occur in text, ignoring
// case.
func wordsIn(text string, words []string) int {
	lower := strings.ToLower(text)
	n := 0
	for _, w := range words {
		if strings.Contains(lower, w) {
			n++
		}
	}
	return n
}

// MatchTags reports whether have holds any (or, with all, every) tag of
// want; an empty want matches everything.
func MatchTags(have, want []string, all bool) bool {
	if len(want) == 0 {
		return true
	}
	for _, t := range want {
		if slices.Contains(have, t) != all {
			return !all
		}
	}
	return all
}
