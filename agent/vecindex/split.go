package vecindex

import (
	"slices"

	"github.com/kelpie/kelpie/embedding"
)

// member is a vector being placed: its passage key and quantized vector.
type member struct {
	key []byte
	q   []byte
}

// group is a set of members that become one list, with their centroid
// (the normalised mean).
type group struct {
	members  []member
	centroid []float32
}

// partition splits ms into groups of at most MaxListVectors by repeated
// 2-means bisection (one bisection when a list has just overflowed).
func partition(ms []member) []group {
	vs := make([][]float32, len(ms))
	for i, m := range ms {
		vs[i] = embedding.Dequantize(m.q)
	}
	return bisectInto(nil, ms, vs)
}

func bisectInto(out []group, ms []member, vs [][]float32) []group {
	if len(ms) <= MaxListVectors {
		return append(out, group{members: ms, centroid: mean(vs, nil, false)})
	}
	side := bisect(vs)
	var ms0, ms1 []member
	var vs0, vs1 [][]float32
	for i, s := range side {
		if s {
			ms1, vs1 = append(ms1, ms[i]), append(vs1, vs[i])
		} else {
			ms0, vs0 = append(ms0, ms[i]), append(vs0, vs[i])
		}
	}
	return bisectInto(bisectInto(out, ms0, vs0), ms1, vs1)
}

// bisect splits vs (at least two) in two by spherical 2-means, seeded by
// the farthest points (no randomness: the same vectors split the same
// way): side[i] says which half vs[i] is in. Both halves are non-empty,
// and the smaller holds at least 1/MinSplitShare of vs (else the split is
// at the median of the 2-means' direction).
func bisect(vs [][]float32) []bool {
	centre := mean(vs, nil, false)
	a := farthest(vs, centre)
	b := farthest(vs, vs[a])
	c0, c1 := slices.Clone(vs[a]), slices.Clone(vs[b])
	side := make([]bool, len(vs))
	for it := range SplitIterations {
		changed := false
		for i, v := range vs {
			s := embedding.Dot(v, c1) > embedding.Dot(v, c0)
			changed = changed || s != side[i]
			side[i] = s
		}
		if it > 0 && !changed {
			break
		}
		c0, c1 = mean(vs, side, false), mean(vs, side, true)
	}
	n1 := 0
	for _, s := range side {
		if s {
			n1++
		}
	}
	if min(n1, len(vs)-n1)*MinSplitShare >= len(vs) {
		return side
	}
	// Unbalanced (or degenerate: identical vectors): split at the median
	// of the direction the 2-means found, ties in input order.
	d := make([]float32, len(vs))
	order := make([]int, len(vs))
	for i, v := range vs {
		d[i], order[i] = embedding.Dot(v, c1)-embedding.Dot(v, c0), i
	}
	slices.SortStableFunc(order, func(x, y int) int {
		switch {
		case d[x] < d[y]:
			return -1
		case d[x] > d[y]:
			return 1
		}
		return 0
	})
	for k, i := range order {
		side[i] = k >= len(vs)/2
	}
	return side
}

// farthest is the index of the vector of vs least similar to c (the first
// of equals).
func farthest(vs [][]float32, c []float32) int {
	best, bestScore := 0, float32(0)
	for i, v := range vs {
		if s := embedding.Dot(v, c); i == 0 || s < bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// mean is the normalised mean of the vectors of vs on one side (all of
// them when side is nil).
func mean(vs [][]float32, side []bool, which bool) []float32 {
	m := make([]float32, len(vs[0]))
	for i, v := range vs {
		if side != nil && side[i] != which {
			continue
		}
		for j, x := range v {
			m[j] += x
		}
	}
	return embedding.Normalize(m)
}
