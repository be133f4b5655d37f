package sim

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"time"
)

// injector decides which faults happen. It holds the profile's faults with
// their counters for the whole run (across restarts) and the fault stream's
// generator.
type injector struct {
	rec *recorder

	mu       sync.Mutex
	quiet    bool // no more faults: the run is over
	rng      *rand.Rand
	faults   map[FaultKind]*faultState
	counts   map[string]int
	diskFull int // batches still to fail with disk full
	// damaged are the keys a corruption fault damaged (at rest or as
	// read): an operation that meets a damaged value there met the fault.
	damaged map[string]bool
}

type faultState struct {
	Fault
	seen, fired int
}

func newInjector(p Profile, seed uint64, rec *recorder) *injector {
	in := &injector{rec: rec, rng: newRand(seed, streamFaults), faults: map[FaultKind]*faultState{}, counts: map[string]int{}, damaged: map[string]bool{}}
	for _, f := range p.Faults {
		if f.Prob > 0 {
			in.faults[f.Kind] = &faultState{Fault: f}
		}
	}
	return in
}

// fire reports whether to inject kind now, for an operation of class op
// ("read", "write" or "" for client operations) on keys (a key filter
// matches when any key has the prefix). It counts and records the fault.
func (in *injector) fire(kind FaultKind, op string, keys ...[]byte) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	f := in.faults[kind]
	if f == nil || in.quiet || (f.Op != "" && op != "" && f.Op != op) {
		return false
	}
	if f.Key != "" {
		match := false
		for _, k := range keys {
			if bytes.HasPrefix(k, []byte(f.Key)) {
				match = true
				break
			}
		}
		if !match {
			return false
		}
	}
	f.seen++
	if f.seen <= f.After || (f.Max > 0 && f.fired >= f.Max) {
		return false
	}
	if in.rng.Float64() >= f.Prob {
		return false
	}
	f.fired++
	in.counts[string(kind)]++
	var key []byte
	if len(keys) > 0 {
		key = keys[0]
	}
	in.rec.event("fault %s n=%d key=%q", kind, f.fired, key)
	return true
}

// silence stops all faults.
func (in *injector) silence() {
	in.mu.Lock()
	in.quiet = true
	in.diskFull = 0
	in.mu.Unlock()
}

// count records an event that is not a drawn fault, such as a restart.
func (in *injector) count(name string) {
	in.mu.Lock()
	in.counts[name]++
	in.mu.Unlock()
}

// intn draws from the fault stream.
func (in *injector) intn(n int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.IntN(n)
}

// latency returns how long a Latency fault delays.
func (in *injector) latency() time.Duration {
	return time.Duration(50+in.intn(950)) * time.Microsecond
}

// takeDiskFull reports whether the disk is full for this batch: it starts
// being so when a DiskFull fault fires and stays so for a few batches.
func (in *injector) takeDiskFull(keys [][]byte) bool {
	if in.fire(DiskFull, "write", keys...) {
		in.mu.Lock()
		in.diskFull = 1 + in.rng.IntN(8)
		in.mu.Unlock()
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.diskFull > 0 {
		in.diskFull--
		return true
	}
	return false
}

// damage records that the value of key was damaged.
func (in *injector) damage(key []byte) {
	in.mu.Lock()
	in.damaged[string(key)] = true
	in.mu.Unlock()
}

// damagedAny reports whether a key that match accepts was damaged.
func (in *injector) damagedAny(match func(key []byte) bool) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	for k := range in.damaged {
		if match([]byte(k)) {
			return true
		}
	}
	return false
}

func (in *injector) snapshotCounts() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]int, len(in.counts))
	for k, v := range in.counts {
		out[k] = v
	}
	return out
}

// corruptMarker replaces a byte of a damaged value. No value the workload
// writes contains it, so a response that does carries damaged data.
const corruptMarker = '~'

// corrupt returns a damaged copy of a stored (sealed) value: one
// alphanumeric byte past the 4-byte checksum becomes corruptMarker, or, in a
// value without one, a checksum byte flips.
func corrupt(v []byte, pick int) []byte {
	out := bytes.Clone(v)
	var cands []int
	for i := 4; i < len(out); i++ {
		c := out[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' {
			cands = append(cands, i)
		}
	}
	if len(cands) > 0 {
		out[cands[pick%len(cands)]] = corruptMarker
		return out
	}
	if len(out) > 0 {
		out[pick%len(out)] ^= 0x20
	}
	return out
}
