package schema

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/kelpie/kelpie/kv"
)

// The vector index (package agent/vecindex): an inverted file of each
// owner's passage vectors, per space (the vectors of one embedding model
// and dimension). A space's vectors are split into lists, each with a
// centroid; a vector's posting, its quantized vector, is stored under its
// list, so a search reads the centroids and scans only the lists nearest
// its query. A member entry locates each passage's posting for deletes.
// Postings replace the passage's scan vector (PassageScanVectors): a space
// with an index has no scan vectors left (they are moved into the index by
// the first insert into the space); a space without one is scanned whole.
var (
	VectorCentroids = &Family{"vector-centroid", "veccentroid/",
		"veccentroid/<agent-id or archive-id>/<space>/<list, 8 hex>",
		"a list of the owner's vector index in a space (VectorSpace): how many postings it holds (uint32, little-endian), then its centroid (embedding.Quantize)"}
	VectorPostings = &Family{"vector-posting", "vecpost/",
		"vecpost/<agent-id or archive-id>/<space>/<list, 8 hex>/<seq, 16 hex>/<passage-id>",
		"the passage's vector in its list, quantized (embedding.Quantize)"}
	VectorMembers = &Family{"vector-member", "vecmember/",
		"vecmember/<agent-id or archive-id>/<seq, 16 hex>/<passage-id>",
		"where the passage's posting is: <space>/<list, 8 hex>"}
)

// VectorSpace names the space of vectors made by a model (its
// EmbeddingModelHash) of a dimension.
func VectorSpace(model uint32, dim int) string { return fmt.Sprintf("%08x-%d", model, dim) }

// ListName is a list's id as keys write it.
func ListName(list uint32) string { return fmt.Sprintf("%08x", list) }

// VectorCentroidKey is where a list's centroid is; VectorCentroidsOf
// prefixes a space's centroids, in list order.
func VectorCentroidKey(owner, space string, list uint32) []byte {
	return join(VectorCentroids, owner, space+"/"+ListName(list))
}
func VectorCentroidsOf(owner, space string) []byte { return join(VectorCentroids, owner, space+"/") }

// VectorPostingKey is where the posting of the passage at passageKey is,
// in a list of a space; VectorPostingsOfList prefixes a list's postings
// and VectorPostingsOf an owner's or, with a space, a space's.
func VectorPostingKey(owner, space string, list uint32, passageKey []byte) []byte {
	return join(VectorPostings, owner, space+"/"+ListName(list)+"/"+passageTail(owner, passageKey))
}
func VectorPostingsOfList(owner, space string, list uint32) []byte {
	return join(VectorPostings, owner, space+"/"+ListName(list)+"/")
}
func VectorPostingsOf(owner, space string) []byte {
	if space == "" {
		return join(VectorPostings, owner, "")
	}
	return join(VectorPostings, owner, space+"/")
}

// VectorMemberKey is the member entry of the passage at passageKey;
// VectorMembersOf prefixes an owner's.
func VectorMemberKey(owner string, passageKey []byte) []byte {
	return join(VectorMembers, owner, passageTail(owner, passageKey))
}
func VectorMembersOf(owner string) []byte { return join(VectorMembers, owner, "") }

// PassageKeyOfPosting is the passage key of a posting key of owner.
func PassageKeyOfPosting(owner string, postingKey []byte) []byte {
	rest := strings.TrimPrefix(string(postingKey), string(VectorPostingsOf(owner, "")))
	// rest: <space>/<list>/<seq>/<id>
	for range 2 {
		rest = rest[strings.IndexByte(rest, '/')+1:]
	}
	return []byte(string(PassagesOf(owner)) + rest)
}

// passageTail is "<seq>/<passage-id>" of a passage key of owner.
func passageTail(owner string, passageKey []byte) string {
	return strings.TrimPrefix(string(passageKey), string(PassagesOf(owner)))
}

// EncodeCentroid is a centroid record: the list's size and its quantized
// centroid; DecodeCentroid splits one (a value too short has size 0 and no
// centroid).
func EncodeCentroid(size uint32, quantized []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, size), quantized...)
}
func DecodeCentroid(v []byte) (size uint32, quantized []byte) {
	if len(v) < 8 {
		return 0, nil
	}
	return binary.LittleEndian.Uint32(v), v[4:]
}

// DeleteVectorIndex deletes an owner's vector index: centroids, postings
// and member entries of every space.
func DeleteVectorIndex(txn kv.Txn, owner string) error {
	for _, prefix := range [][]byte{join(VectorCentroids, owner, ""), VectorPostingsOf(owner, ""), VectorMembersOf(owner)} {
		if err := deleteEach(txn, prefix, nil); err != nil {
			return err
		}
	}
	return nil
}
