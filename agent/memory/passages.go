package memory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kelpie/kelpie/agent/vecindex"
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

// Embedded is a text's embedding, computed before the transaction that
// stores it: its model handle and its unit-length vector.
type Embedded struct {
	Handle string
	Vector []float32
}

// InsertPassage stores a passage as the agent's newest, with its
// embedding if emb is not nil.
func InsertPassage(txn kv.Txn, agentID, id, text string, tags []string, emb *Embedded, now time.Time) (*schema.Passage, error) {
	return InsertPassageRecord(txn, &schema.Passage{ID: id, AgentID: agentID, Text: text, Tags: tags, CreatedAt: now, UpdatedAt: now}, emb)
}

// InsertArchivePassage stores a passage as a shared archive's newest, with
// its embedding if emb is not nil.
func InsertArchivePassage(txn kv.Txn, archiveID, id, text string, tags []string, emb *Embedded, now time.Time) (*schema.Passage, error) {
	return InsertPassageRecord(txn, &schema.Passage{ID: id, ArchiveID: archiveID, Text: text, Tags: tags, CreatedAt: now, UpdatedAt: now}, emb)
}

// InsertPassageRecord stores p as its owner's newest passage (its Seq is
// set here), with its vector, indexed, if emb is not nil.
func InsertPassageRecord(txn kv.Txn, p *schema.Passage, emb *Embedded) (*schema.Passage, error) {
	if _, err := txn.Get(schema.PassageIDKey(p.ID)); err == nil {
		return nil, letta.Conflictf("passage %s already exists", p.ID)
	}
	p.Seq = 1
	last, err := txn.Scan(kv.PrefixRange(schema.PassagesOf(p.Owner())), 1, true)
	if err != nil {
		return nil, err
	}
	if len(last) == 1 {
		prev, err := schema.DecodePassage(last[0].Value)
		if err != nil {
			return nil, fmt.Errorf("passage %q: %w", last[0].Key, err)
		}
		p.Seq = prev.Seq + 1
	}
	if p.Tags == nil {
		p.Tags = []string{}
	}
	if emb == nil {
		return p, schema.PutPassage(txn, p)
	}
	p.Embedding = emb.Handle
	if err := schema.PutPassage(txn, p); err != nil {
		return nil, err
	}
	if err := schema.PutPassageVector(txn, p, emb.Vector); err != nil {
		return nil, err
	}
	k := schema.PassageKey(p.Owner(), p.Seq, p.ID)
	return p, vecindex.Add(txn, p.Owner(), schema.EmbeddingModelHash(emb.Handle), k, emb.Vector)
}

// DeletePassage deletes a passage of an agent or archive (owner).
func DeletePassage(txn kv.Txn, ownerID, passageID string) error {
	k, err := txn.Get(schema.PassageIDKey(passageID))
	if errors.Is(err, kv.ErrNotFound) || err == nil && !strings.HasPrefix(string(k), string(schema.PassagesOf(ownerID))) {
		return letta.NotFoundf("Passage %s not found", passageID)
	}
	if err != nil {
		return err
	}
	data, err := txn.Get(k)
	if err != nil {
		return schema.Dangling(err, "passage %s at %q", passageID, k)
	}
	p, err := schema.DecodePassage(data)
	if err != nil {
		return fmt.Errorf("passage %q: %w", k, err)
	}
	if err := schema.IndexPassage(txn, p, -1); err != nil {
		return err
	}
	if err := txn.Delete(k); err != nil {
		return err
	}
	if err := schema.DeletePassageVectors(txn, k); err != nil {
		return err
	}
	if err := vecindex.Remove(txn, ownerID, k); err != nil {
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
