package sim

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
)

// Every random choice of a run derives from its seed: each component draws
// from its own PCG stream, so that one component drawing more or less does
// not shift the others' choices.

// Streams of the components.
const (
	streamFaults  = 0x6661756c7473 // "faults"
	streamIDs     = 0x696473       // "ids"
	streamClient  = 0x636c69656e74 // "client" + client number
	streamVariant = 0x76617269616e // "varian(t)"
	streamLLM     = 0x6c6c6d       // "llm"
	streamAudit   = 0x6175646974   // "audit"
)

// splitmix64 scrambles x; it spreads nearby seeds far apart.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// newRand returns the generator of one component's stream.
func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix64(seed), splitmix64(seed^splitmix64(stream))))
}

// lockedReader is an io.Reader of a seeded stream, safe for concurrent use:
// the service's source of ids and names.
type lockedReader struct {
	mu  sync.Mutex
	rng *rand.Rand
}

var _ io.Reader = (*lockedReader)(nil)

func (r *lockedReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var buf [8]byte
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(buf[:], r.rng.Uint64())
		copy(p[i:], buf[:])
	}
	return len(p), nil
}
