// Package clock is the one way Kelpie's code reads time. Production uses
// Real; the simulation supplies its own Clock, so that nothing under test
// reads the wall clock directly.
package clock

import "time"

// Clock tells the time and wakes sleepers.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that fires every d until stopped.
	NewTicker(d time.Duration) Ticker
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Ticker is the part of time.Ticker the runtime uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the system clock. Its zero value is ready to use.
type Real struct{}

// Now returns the wall-clock time.
func (Real) Now() time.Time { return time.Now() }

// NewTicker wraps time.NewTicker.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

// After wraps time.After.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }
