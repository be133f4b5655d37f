// Package warm runs functions on goroutines that stay, a bounded number of
// them, once their function returns, to run the next one: a new goroutine
// grows its stack by copying to the depth of what it runs, at each start,
// and a warm one has grown already. The bound is the pool's, whatever the
// number of functions handed to it; past it a goroutine exits.
package warm

import (
	"sync"
	"sync/atomic"
)

// Pool runs functions on warm goroutines. Use New; the zero Pool is not
// usable.
type Pool struct {
	maxIdle int32
	handoff chan func() // to an idle goroutine
	stop    chan struct{}
	once    sync.Once
	idle    atomic.Int32
}

// New returns a pool that keeps at most maxIdle idle goroutines.
func New(maxIdle int) *Pool {
	if maxIdle < 0 {
		panic("warm: a negative number of idle goroutines")
	}
	return &Pool{maxIdle: int32(maxIdle), handoff: make(chan func()), stop: make(chan struct{})}
}

// Go runs fn on an idle goroutine of the pool, or on a new one.
func (p *Pool) Go(fn func()) {
	select {
	case p.handoff <- fn:
	default:
		go p.run(fn)
	}
}

// Close sends the idle goroutines away, and the running ones once their
// function returns. Go still runs what it is given after Close, each on a
// goroutine that then exits.
func (p *Pool) Close() { p.once.Do(func() { close(p.stop) }) }

func (p *Pool) run(fn func()) {
	for {
		fn()
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		select {
		case fn = <-p.handoff:
			p.idle.Add(-1)
		case <-p.stop:
			p.idle.Add(-1)
			return
		}
	}
}
