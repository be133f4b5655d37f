package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Spec: a warning repeated within the interval is written once; the next
// line of it says how many were left out; other messages and Info lines
// pass.
func TestQuietRepeats(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(quietRepeats(slog.NewTextHandler(&buf, nil)))
	for range 100 {
		log.Error("disk full", "path", "/data")
		log.Info("request")
	}
	log.Warn("other")
	out := buf.String()
	if n := strings.Count(out, "disk full"); n != 1 {
		t.Errorf("disk full written %d times:\n%s", n, out)
	}
	if n := strings.Count(out, "msg=request"); n != 100 {
		t.Errorf("info lines: %d", n)
	}
	if !strings.Contains(out, "msg=other") {
		t.Error("another message was held back")
	}
}
