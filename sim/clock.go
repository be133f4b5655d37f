package sim

import (
	"sync/atomic"
	"time"

	"github.com/kelpie/kelpie/clock"
)

// Clock is the clock the simulated service reads: a base clock (the real
// one by default, which under GOOS=wasip1 the host simulates) with an offset
// that clock faults move. Skews and jumps change what Now reports; tickers
// and timers run on the base clock, as a wall-clock step does not change how
// long a sleep lasts.
type Clock struct {
	base   clock.Clock
	offset atomic.Int64 // nanoseconds added to the base clock's Now
}

var _ clock.Clock = (*Clock)(nil)

// NewClock returns a Clock over base (clock.Real when nil) with no offset.
func NewClock(base clock.Clock) *Clock {
	if base == nil {
		base = clock.Real{}
	}
	return &Clock{base: base}
}

// Now returns the base clock's time plus the offset.
func (c *Clock) Now() time.Time { return c.base.Now().Add(c.Offset()) }

// NewTicker returns the base clock's ticker.
func (c *Clock) NewTicker(d time.Duration) clock.Ticker { return c.base.NewTicker(d) }

// After returns the base clock's timer.
func (c *Clock) After(d time.Duration) <-chan time.Time { return c.base.After(d) }

// Offset returns how far Now is from the base clock.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Skew sets the offset to d.
func (c *Clock) Skew(d time.Duration) { c.offset.Store(int64(d)) }

// Jump moves the clock by d, forwards or back.
func (c *Clock) Jump(d time.Duration) { c.offset.Add(int64(d)) }
