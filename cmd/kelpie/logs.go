package main

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Repeated warnings and errors are rate-limited: a failing disk or a
// misbehaving client must not flood the log.
const (
	logRepeatInterval = 10 * time.Second // least time between two lines of one message
	maxTrackedLogs    = 1024             // distinct messages remembered at once
)

// quietRepeats wraps a handler so that a Warn or Error message repeated
// within logRepeatInterval is counted instead of written; the next line of
// that message says how many were left out.
func quietRepeats(h slog.Handler) slog.Handler {
	return &repeatHandler{Handler: h, seen: &repeats{last: map[string]*repeat{}}}
}

type repeatHandler struct {
	slog.Handler
	seen *repeats
}

type repeats struct {
	mu   sync.Mutex
	last map[string]*repeat
}

type repeat struct {
	at         time.Time
	suppressed int
}

func (h *repeatHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.Handler.Handle(ctx, r)
	}
	s := h.seen
	s.mu.Lock()
	rep := s.last[r.Message]
	if rep != nil && r.Time.Sub(rep.at) < logRepeatInterval {
		rep.suppressed++
		s.mu.Unlock()
		return nil
	}
	if len(s.last) >= maxTrackedLogs {
		clear(s.last)
	}
	suppressed := 0
	if rep != nil {
		suppressed = rep.suppressed
	}
	s.last[r.Message] = &repeat{at: r.Time}
	s.mu.Unlock()
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeats_suppressed", suppressed))
	}
	return h.Handler.Handle(ctx, r)
}

func (h *repeatHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &repeatHandler{Handler: h.Handler.WithAttrs(as), seen: h.seen}
}

func (h *repeatHandler) WithGroup(name string) slog.Handler {
	return &repeatHandler{Handler: h.Handler.WithGroup(name), seen: h.seen}
}
