package embedding

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// MaxDim is the largest vector dimension stored (text-embedding-3-large
// has 3072).
const MaxDim = 8192

// Normalize scales v to unit length in place and returns it; a zero
// vector is returned as is.
func Normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= inv
	}
	return v
}

// Dot is the dot product of a and b, which have the same length; for
// normalised vectors it is their cosine similarity.
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// DotEncoded is Dot of q and a vector as Encode stores it, without
// decoding it first.
func DotEncoded(q []float32, enc []byte) float32 {
	enc = enc[:4*len(q)]
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(q); i += 2 {
		s0 += q[i] * math.Float32frombits(binary.LittleEndian.Uint32(enc[4*i:]))
		s1 += q[i+1] * math.Float32frombits(binary.LittleEndian.Uint32(enc[4*i+4:]))
	}
	for ; i < len(q); i++ {
		s0 += q[i] * math.Float32frombits(binary.LittleEndian.Uint32(enc[4*i:]))
	}
	return s0 + s1
}

// Encode stores v as little-endian float32s.
func Encode(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

// Dim is the dimension of an encoded vector, or an error if it is not one.
func Dim(enc []byte) (int, error) {
	if len(enc) == 0 || len(enc)%4 != 0 || len(enc)/4 > MaxDim {
		return 0, fmt.Errorf("an encoded vector of %d bytes: want a positive multiple of 4, at most %d dimensions", len(enc), MaxDim)
	}
	return len(enc) / 4, nil
}

// Decode reads a vector stored by Encode.
func Decode(enc []byte) ([]float32, error) {
	n, err := Dim(enc)
	if err != nil {
		return nil, err
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(enc[4*i:]))
	}
	return v, nil
}

// Hit is a ranked item: its position in the caller's list and its score.
type Hit struct {
	Index int
	Score float32
}

// TopK keeps the k best hits offered to it (highest score; among equal
// scores the later index, the newer item).
type TopK struct {
	k int
	h hitHeap
}

// NewTopK returns an empty TopK of k (k ≥ 1).
func NewTopK(k int) *TopK { return &TopK{k: k} }

// Offer considers a hit.
func (t *TopK) Offer(index int, score float32) {
	h := Hit{index, score}
	if len(t.h) < t.k {
		heap.Push(&t.h, h)
		return
	}
	if worse(t.h[0], h) {
		t.h[0] = h
		heap.Fix(&t.h, 0)
	}
}

// Accepts reports whether a hit of score would be kept now (an equal
// score may be kept or not, as its index decides).
func (t *TopK) Accepts(score float32) bool {
	return len(t.h) < t.k || t.h[0].Score <= score
}

// Best returns the hits kept, best first.
func (t *TopK) Best() []Hit {
	out := make([]Hit, len(t.h))
	h := append(hitHeap(nil), t.h...)
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&h).(Hit)
	}
	return out
}

// worse reports whether a ranks below b.
func worse(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score < b.Score
	}
	return a.Index < b.Index
}

// hitHeap is a min-heap: its root is the worst hit kept.
type hitHeap []Hit

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return worse(h[i], h[j]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(Hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Quantize encodes v (unit length) for scanning: a little-endian float32
// scale, then each component as round(x/scale) in int8, scale being
// max|x|/127. It is a quarter of Encode's size; DotQuantized estimates
// Dot from it within about |q|·scale/2 per component.
func Quantize(v []float32) []byte {
	var m float32
	for _, x := range v {
		m = max(m, x, -x)
	}
	scale := m / 127
	out := make([]byte, 4+len(v))
	binary.LittleEndian.PutUint32(out, math.Float32bits(scale))
	if scale == 0 {
		return out
	}
	inv := 1 / scale
	for i, x := range v {
		out[4+i] = byte(int8(math.Round(float64(x * inv))))
	}
	return out
}

// QuantizedDim is the dimension of a vector Quantize encoded.
func QuantizedDim(enc []byte) int { return len(enc) - 4 }

// DotQuantized estimates Dot(q, v) from Quantize(v).
func DotQuantized(q []float32, enc []byte) float32 {
	scale := math.Float32frombits(binary.LittleEndian.Uint32(enc))
	c := enc[4 : 4+len(q)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(q); i += 4 {
		s0 += q[i] * float32(int8(c[i]))
		s1 += q[i+1] * float32(int8(c[i+1]))
		s2 += q[i+2] * float32(int8(c[i+2]))
		s3 += q[i+3] * float32(int8(c[i+3]))
	}
	for ; i < len(q); i++ {
		s0 += q[i] * float32(int8(c[i]))
	}
	return scale * (s0 + s1 + s2 + s3)
}

// Dequantize decodes a vector Quantize encoded, approximately.
func Dequantize(enc []byte) []float32 {
	scale := math.Float32frombits(binary.LittleEndian.Uint32(enc))
	out := make([]float32, QuantizedDim(enc))
	for i, c := range enc[4:] {
		out[i] = scale * float32(int8(c))
	}
	return out
}

// HashedWords embeds text without a model: a hashed bag of its lower-cased
// words (each word adds ±1 at a position its FNV-1a hash picks), normalised
// to unit length; a text without words is a fixed unit vector. Texts
// sharing words are near, and the same text gives the same vector on every
// run: the stand-in for a model of the test double and the simulator.
func HashedWords(text string, dim int) []float32 {
	v := make([]float32, dim)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, w := range words {
		h := fnv.New64a()
		h.Write([]byte(w))
		x := h.Sum64()
		sign := float32(1)
		if x>>63 == 1 {
			sign = -1
		}
		v[int(x%uint64(dim))] += sign
	}
	for _, x := range v {
		if x != 0 {
			return Normalize(v)
		}
	}
	v[0] = 1
	return v
}
