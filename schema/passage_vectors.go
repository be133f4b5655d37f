package schema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kelpie/kelpie/kv"
)

// PassageVectors holds the embedding of each embedded passage apart from
// its record, in the same order (owner, seq, id), so that a vector search
// scans only vectors, and a merge with the passages' scan pairs each with
// its passage. The passage record names the embedding model (Embedding);
// the vector is its bytes, little-endian float32, normalised to unit length.
var PassageVectors = &Family{"passage-vector", "passagevec/",
	"passagevec/<agent-id or archive-id>/<seq, 16 hex>/<passage-id>",
	"the passage's embedding: little-endian float32s, unit length (its model is the passage's embedding)"}

// PassageVectorKey is where a passage's vector is.
func PassageVectorKey(ownerID string, seq uint64, passageID string) []byte {
	return fmt.Appendf(nil, "%s%s/%016x/%s", PassageVectors.Prefix, ownerID, seq, passageID)
}

// PassageVectorsOf prefixes the vectors of an owner's passages, in
// insertion order.
func PassageVectorsOf(ownerID string) []byte { return join(PassageVectors, ownerID, "") }

// PassageVectorFor is the vector key of the passage stored at passageKey.
func PassageVectorFor(passageKey []byte) []byte {
	return []byte(PassageVectors.Prefix + strings.TrimPrefix(string(passageKey), Passages.Prefix))
}

// PutPassageVector stores the vector of a passage whose record names its
// model; enc is embedding.Encode's.
func PutPassageVector(txn kv.Txn, p *Passage, enc []byte) error {
	if p.Embedding == "" || len(enc) == 0 || len(enc)%4 != 0 {
		return fmt.Errorf("passage %s: a vector of %d bytes for embedding %q", p.ID, len(enc), p.Embedding)
	}
	return txn.Set(PassageVectorKey(p.Owner(), p.Seq, p.ID), enc)
}

// GetPassageVector returns a passage's stored vector, nil if it has none.
func GetPassageVector(txn kv.Txn, p *Passage) ([]byte, error) {
	if p.Embedding == "" {
		return nil, nil
	}
	v, err := txn.Get(PassageVectorKey(p.Owner(), p.Seq, p.ID))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("passage %s names embedding %q but has no vector", p.ID, p.Embedding)
	}
	return v, err
}
