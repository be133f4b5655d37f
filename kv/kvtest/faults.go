package kvtest

import (
	"errors"
	"math/rand/v2"
	"sync"

	"github.com/kelpie/kelpie/kv"
)

// ErrInjected is the error a FaultyEngine returns for an injected fault.
var ErrInjected = errors.New("kvtest: injected fault")

// FaultyEngine wraps an Engine and makes Apply fail at random, in the two
// ways a crash around a commit can look to the committer:
//   - DropRate: the batch is not applied and Apply fails ("crash during
//     transaction");
//   - LoseAckRate: the batch is applied and Apply fails anyway ("crash after
//     write": the acknowledgement is lost).
//
// Faults are drawn from a seeded source, so a seed names a fault schedule
// (exactly so when commits arrive in a fixed order).
type FaultyEngine struct {
	kv.Engine
	DropRate    float64
	LoseAckRate float64

	mu       sync.Mutex
	rng      *rand.Rand
	dropped  int
	lostAcks int
}

// NewFaultyEngine wraps eng with faults drawn from seed.
func NewFaultyEngine(eng kv.Engine, seed uint64, dropRate, loseAckRate float64) *FaultyEngine {
	return &FaultyEngine{Engine: eng, DropRate: dropRate, LoseAckRate: loseAckRate, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Apply implements kv.Engine.
func (e *FaultyEngine) Apply(batch []kv.Mutation) error {
	e.mu.Lock()
	p := e.rng.Float64()
	drop := p < e.DropRate
	loseAck := !drop && p < e.DropRate+e.LoseAckRate
	if drop {
		e.dropped++
	}
	if loseAck {
		e.lostAcks++
	}
	e.mu.Unlock()
	if drop {
		return ErrInjected
	}
	if err := e.Engine.Apply(batch); err != nil {
		return err
	}
	if loseAck {
		return ErrInjected
	}
	return nil
}

// Counts returns how many faults of each kind were injected.
func (e *FaultyEngine) Counts() (dropped, lostAcks int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped, e.lostAcks
}
