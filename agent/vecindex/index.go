package vecindex

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// Limits of the index.
const (
	// MaxListVectors is the most postings a list holds: the insert that
	// would make one more splits it in two.
	MaxListVectors = 512
	// ProbeVectors is how many postings a search reads, at least, from
	// the lists nearest its query (whole lists: it may read up to
	// MaxListVectors more). A space holding no more is searched exactly.
	ProbeVectors = 4096
	// SplitIterations bounds the 2-means iterations of a split.
	SplitIterations = 8
	// MinSplitShare: a 2-means whose smaller half holds under
	// 1/MinSplitShare of the list is replaced by a split at the median
	// (so that every split makes progress and lists stay balanced).
	MinSplitShare = 8
)

// list is a list of a space: its id, how many postings it holds, and its
// quantized centroid.
type list struct {
	id       uint32
	size     uint32
	centroid []byte
}

// Add indexes the vector of the passage stored at passageKey (of owner),
// made by the model whose EmbeddingModelHash is model: its posting goes to
// the list of the nearest centroid, which moves towards it, or is split if
// it grows past MaxListVectors (and the postings near the split are
// reassigned). The first insert into a space moves the space's scan
// vectors, if any, into the index.
func Add(txn kv.Txn, owner string, model uint32, passageKey []byte, vec []float32) error {
	space := schema.VectorSpace(model, len(vec))
	lists, err := readLists(txn, owner, space)
	if err != nil {
		return err
	}
	if len(lists) == 0 {
		if lists, err = adopt(txn, owner, model, space, len(vec)); err != nil {
			return err
		}
	}
	q := embedding.Quantize(vec)
	if len(lists) == 0 {
		lists = []list{{id: 0, centroid: q}}
	}
	i := nearest(lists, vec)
	l := lists[i]
	if err := putPosting(txn, owner, space, l.id, passageKey, q); err != nil {
		return err
	}
	if l.size < MaxListVectors {
		l.centroid = grown(l.centroid, l.size, vec)
		l.size++
		return putList(txn, owner, space, l)
	}
	ms, err := listMembers(txn, owner, space, l.id)
	if err != nil {
		return err
	}
	split, err := store(txn, owner, space, partition(ms), &l.id, nextID(lists))
	if err != nil {
		return err
	}
	return reassign(txn, owner, space, slices.Delete(slices.Clone(lists), i, i+1), split)
}

// Remove removes the passage stored at passageKey (of owner) from the
// index, if it is there: its posting and member entry; its list's count
// drops, and an emptied list is deleted.
func Remove(txn kv.Txn, owner string, passageKey []byte) error {
	mk := schema.VectorMemberKey(owner, passageKey)
	loc, err := txn.Get(mk)
	if errors.Is(err, kv.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	space, name, _ := strings.Cut(string(loc), "/")
	id, err := strconv.ParseUint(name, 16, 32)
	if err != nil {
		return fmt.Errorf("vector member %q names no list: %q", mk, loc)
	}
	if err := txn.Delete(schema.VectorPostingKey(owner, space, uint32(id), passageKey)); err != nil {
		return err
	}
	if err := txn.Delete(mk); err != nil {
		return err
	}
	ck := schema.VectorCentroidKey(owner, space, uint32(id))
	v, err := txn.Get(ck)
	if err != nil {
		return schema.Dangling(err, "list %q of vector member %q", ck, mk)
	}
	size, centroid := schema.DecodeCentroid(v)
	if size <= 1 {
		return txn.Delete(ck)
	}
	return putList(txn, owner, space, list{id: uint32(id), size: size - 1, centroid: centroid})
}

// Scan calls fn with the passage key and quantized vector of owner's
// vectors of model and q's dimension that a search for q reads: those of
// the lists nearest q until probe postings are read, or all of them when
// probe is 0. A space without an index is read whole from its scan
// vectors.
func Scan(txn kv.Txn, owner string, model uint32, q []float32, probe int, fn func(passageKey, quantized []byte) error) error {
	space := schema.VectorSpace(model, len(q))
	lists, err := readLists(txn, owner, space)
	if err != nil {
		return err
	}
	if len(lists) == 0 {
		return scanLegacy(txn, schema.PassageScanVectorsOf(owner), model, len(q), fn)
	}
	scores := make([]float32, len(lists))
	for i, l := range lists {
		scores[i] = embedding.DotQuantized(q, l.centroid)
	}
	read := 0
	for _, i := range bestFirst(scores) {
		if probe > 0 && read >= probe {
			break
		}
		read += int(lists[i].size)
		err := kv.ScanEach(txn, kv.PrefixRange(schema.VectorPostingsOfList(owner, space, lists[i].id)), false, func(p kv.KeyValue) (bool, error) {
			if embedding.QuantizedDim(p.Value) != len(q) {
				return false, fmt.Errorf("posting %q has %d dimensions, its space %d", p.Key, embedding.QuantizedDim(p.Value), len(q))
			}
			return true, fn(schema.PassageKeyOfPosting(owner, p.Key), p.Value)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ScanAll calls fn with every stored vector of model and dim, of every
// owner, indexed or not.
func ScanAll(txn kv.Txn, model uint32, dim int, fn func(passageKey, quantized []byte) error) error {
	space := schema.VectorSpace(model, dim)
	err := kv.ScanEach(txn, kv.PrefixRange([]byte(schema.VectorPostings.Prefix)), false, func(p kv.KeyValue) (bool, error) {
		owner, rest, _ := strings.Cut(string(p.Key[len(schema.VectorPostings.Prefix):]), "/")
		if !strings.HasPrefix(rest, space+"/") {
			return true, nil
		}
		return true, fn(schema.PassageKeyOfPosting(owner, p.Key), p.Value)
	})
	if err != nil {
		return err
	}
	return scanLegacy(txn, []byte(schema.PassageScanVectors.Prefix), model, dim, fn)
}

// scanLegacy calls fn with the scan vectors under prefix of model and dim.
func scanLegacy(txn kv.Txn, prefix []byte, model uint32, dim int, fn func(passageKey, quantized []byte) error) error {
	return kv.ScanEach(txn, kv.PrefixRange(prefix), false, func(p kv.KeyValue) (bool, error) {
		hash, quantized := schema.SplitScanVector(p.Value)
		if hash != model || embedding.QuantizedDim(quantized) != dim {
			return true, nil // another space's vector
		}
		return true, fn(schema.PassageKeyOfScanVector(p.Key), quantized)
	})
}

// adopt moves the scan vectors of a space into its new index, and returns
// its lists (none if it had no vectors).
func adopt(txn kv.Txn, owner string, model uint32, space string, dim int) ([]list, error) {
	var ms []member
	err := scanLegacy(txn, schema.PassageScanVectorsOf(owner), model, dim, func(pk, q []byte) error {
		ms = append(ms, member{key: pk, q: q})
		return txn.Delete(schema.PassageScanVectorFor(pk))
	})
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	return store(txn, owner, space, partition(ms), nil, 0)
}

// readLists reads a space's lists, in id order.
func readLists(txn kv.Txn, owner, space string) ([]list, error) {
	kvs, err := txn.Scan(kv.PrefixRange(schema.VectorCentroidsOf(owner, space)), 0, false)
	if err != nil {
		return nil, err
	}
	out := make([]list, len(kvs))
	for i, p := range kvs {
		id, err := strconv.ParseUint(schema.LastPart(p.Key), 16, 32)
		size, centroid := schema.DecodeCentroid(p.Value)
		if err != nil || centroid == nil {
			return nil, fmt.Errorf("list %q: not a list id or centroid", p.Key)
		}
		out[i] = list{id: uint32(id), size: size, centroid: centroid}
	}
	return out, nil
}

// bestFirst returns the indexes of scores, highest score first (in index
// order among equals).
func bestFirst(scores []float32) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case scores[a] > scores[b]:
			return -1
		case scores[a] < scores[b]:
			return 1
		}
		return 0
	})
	return order
}

// nearest is the index of the list whose centroid is nearest v (the
// first of equals).
func nearest(lists []list, v []float32) int {
	best, bestScore := 0, float32(0)
	for i, l := range lists {
		if s := embedding.DotQuantized(v, l.centroid); i == 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// nextID is an id no list of lists has.
func nextID(lists []list) uint32 {
	var n uint32
	for _, l := range lists {
		n = max(n, l.id+1)
	}
	return n
}

func putList(txn kv.Txn, owner, space string, l list) error {
	return txn.Set(schema.VectorCentroidKey(owner, space, l.id), schema.EncodeCentroid(l.size, l.centroid))
}

func putPosting(txn kv.Txn, owner, space string, id uint32, passageKey, q []byte) error {
	if err := txn.Set(schema.VectorPostingKey(owner, space, id, passageKey), q); err != nil {
		return err
	}
	return txn.Set(schema.VectorMemberKey(owner, passageKey), []byte(space+"/"+schema.ListName(id)))
}

// listMembers reads a list's postings.
func listMembers(txn kv.Txn, owner, space string, id uint32) ([]member, error) {
	var ms []member
	err := kv.ScanEach(txn, kv.PrefixRange(schema.VectorPostingsOfList(owner, space, id)), false, func(p kv.KeyValue) (bool, error) {
		ms = append(ms, member{key: schema.PassageKeyOfPosting(owner, p.Key), q: p.Value})
		return true, nil
	})
	return ms, err
}

// store writes groups as lists of a space: the first keeps the list id
// *from (the list they are all in now; nil: they are in none, and the
// first gets id next) and the others get next, next+1, ...; only members
// that change list are rewritten. It returns the lists written.
func store(txn kv.Txn, owner, space string, groups []group, from *uint32, next uint32) ([]list, error) {
	out := make([]list, len(groups))
	for i, g := range groups {
		id := next + uint32(i)
		if from != nil {
			id = *from
			if i > 0 {
				id = next + uint32(i-1)
			}
		}
		out[i] = list{id: id, size: uint32(len(g.members)), centroid: embedding.Quantize(g.centroid)}
		if err := putList(txn, owner, space, out[i]); err != nil {
			return nil, err
		}
		if from != nil && id == *from {
			continue
		}
		for _, m := range g.members {
			if from != nil {
				if err := txn.Delete(schema.VectorPostingKey(owner, space, *from, m.key)); err != nil {
					return nil, err
				}
			}
			if err := putPosting(txn, owner, space, id, m.key, m.q); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
