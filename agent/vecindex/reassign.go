package vecindex

import (
	"slices"

	"github.com/kelpie/kelpie/embedding"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// ReassignNeighbours is how many lists nearest a split list have their
// postings checked against the split's two new centroids (and the split
// lists' postings against theirs): a split moves the centroids near it,
// so vectors there may now be nearer another list's (SPFresh's
// reassignment). It bounds a split's reads to (ReassignNeighbours+2)
// lists.
const ReassignNeighbours = 4

// grown moves a list's centroid towards a vector added to it: the
// normalised mean of its size members and v, its centroid standing for
// the mean of the members it has.
func grown(centroid []byte, size uint32, v []float32) []byte {
	c := embedding.Dequantize(centroid)
	for i, x := range v {
		c[i] = c[i]*float32(size) + x
	}
	return embedding.Quantize(embedding.Normalize(c))
}

// reassign runs after a list split into split (its new lists): the
// postings of split and of the ReassignNeighbours other lists nearest
// them each move to whichever of those lists' centroids is nearest, if
// nearer than its own and the list has room; a list emptied is deleted.
// others are the space's lists but the one split.
func reassign(txn kv.Txn, owner, space string, others, split []list) error {
	near := make([]float32, len(others))
	for i, o := range others {
		v := embedding.Dequantize(o.centroid)
		for j, s := range split {
			if d := embedding.DotQuantized(v, s.centroid); j == 0 || d > near[i] {
				near[i] = d
			}
		}
	}
	order := bestFirst(near)
	cands := slices.Clone(split)
	for _, i := range order[:min(len(order), ReassignNeighbours)] {
		cands = append(cands, others[i])
	}
	members := make([][]member, len(cands))
	for i, l := range cands {
		ms, err := listMembers(txn, owner, space, l.id)
		if err != nil {
			return err
		}
		members[i] = ms
	}
	changed := make([]bool, len(cands))
	for i := range cands {
		for _, m := range members[i] {
			v := embedding.Dequantize(m.q)
			best, bestScore := i, embedding.DotQuantized(v, cands[i].centroid)
			for j, l := range cands {
				if s := embedding.DotQuantized(v, l.centroid); j != i && s > bestScore && l.size < MaxListVectors {
					best, bestScore = j, s
				}
			}
			if best == i {
				continue
			}
			if err := txn.Delete(schema.VectorPostingKey(owner, space, cands[i].id, m.key)); err != nil {
				return err
			}
			if err := putPosting(txn, owner, space, cands[best].id, m.key, m.q); err != nil {
				return err
			}
			cands[i].size--
			cands[best].size++
			changed[i], changed[best] = true, true
		}
	}
	for i, l := range cands {
		switch {
		case !changed[i]:
		case l.size == 0:
			if err := txn.Delete(schema.VectorCentroidKey(owner, space, l.id)); err != nil {
				return err
			}
		default:
			if err := putList(txn, owner, space, l); err != nil {
				return err
			}
		}
	}
	return nil
}
