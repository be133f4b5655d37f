package metrics

import (
	"context"
	"errors"

	"github.com/kelpie/kelpie/kv"
)

// CommitStarted implements kv.CommitObserver: it times the commit and
// counts its outcome.
func (m *Metrics) CommitStarted(context.Context) func(error) {
	start := m.clock.Now()
	return func(err error) {
		m.commitSeconds.Observe(m.clock.Now().Sub(start).Seconds())
		m.commits.WithLabelValues(commitOutcome(err)).Inc()
	}
}

var _ kv.CommitObserver = (*Metrics)(nil)

func commitOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, kv.ErrConflict):
		return "conflict"
	case errors.Is(err, kv.ErrFenced):
		return "fenced"
	}
	return "error"
}
