package schema

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/kelpie/kelpie/embedding"
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

// PassageScanVectors held each embedded passage's vector again, quantized
// to int8 (embedding.Quantize, a quarter of the size), at the same place,
// before the vector index (VectorPostings) existed: a search scans those
// left whole, and the first insert into their space moves them into the
// index. Nothing writes them any more.
var PassageScanVectors = &Family{"passage-scan-vector", "passageq8/",
	"passageq8/<agent-id or archive-id>/<seq, 16 hex>/<passage-id>",
	"the passage's embedding quantized for scanning: its model (EmbeddingModelHash, 4 bytes), a float32 scale, then one int8 per dimension"}

// EmbeddingModelHash names an embedding model in a scan vector, so that a
// search compares only vectors of its query's model without reading the
// passages (FNV-1a of the handle, little-endian).
func EmbeddingModelHash(handle string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(handle))
	return h.Sum32()
}

// SplitScanVector splits a stored scan vector into its model hash and the
// quantized vector (embedding.Quantize's); a value too short to hold them
// has hash 0 and no vector.
func SplitScanVector(v []byte) (uint32, []byte) {
	if len(v) < 8 {
		return 0, nil
	}
	return binary.LittleEndian.Uint32(v), v[4:]
}

// PassageScanVectorsOf prefixes the scan vectors of an owner's passages.
func PassageScanVectorsOf(ownerID string) []byte { return join(PassageScanVectors, ownerID, "") }

// PassageScanVectorFor is the scan-vector key of the passage at passageKey.
func PassageScanVectorFor(passageKey []byte) []byte {
	return []byte(PassageScanVectors.Prefix + strings.TrimPrefix(string(passageKey), Passages.Prefix))
}

// PassageKeyOfScanVector is the passage key of a scan-vector key.
func PassageKeyOfScanVector(key []byte) []byte {
	return []byte(Passages.Prefix + strings.TrimPrefix(string(key), PassageScanVectors.Prefix))
}

// DeletePassageVectors deletes the vectors of the passage at passageKey.
func DeletePassageVectors(txn kv.Txn, passageKey []byte) error {
	if err := txn.Delete(PassageVectorFor(passageKey)); err != nil {
		return err
	}
	return txn.Delete(PassageScanVectorFor(passageKey))
}

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

// PutPassageVector stores the exact vector of a passage whose record
// names its model (its quantized copy is the index's: agent/vecindex).
func PutPassageVector(txn kv.Txn, p *Passage, v []float32) error {
	if p.Embedding == "" || len(v) == 0 || len(v) > embedding.MaxDim {
		return fmt.Errorf("passage %s: a vector of %d dimensions for embedding %q", p.ID, len(v), p.Embedding)
	}
	return txn.Set(PassageVectorKey(p.Owner(), p.Seq, p.ID), embedding.Encode(v))
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
