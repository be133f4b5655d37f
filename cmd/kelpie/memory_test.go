package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Spec: memory is returned to the OS once when requests stop, once more
// when the agents they activated have been evicted, and not again until
// requests come and stop again.
func TestIdleReleasesMemoryTwice(t *testing.T) {
	const evictAfter = time.Minute
	r := &idleReleaser{evictAfter: evictAfter}
	h := r.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	request := func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)) }
	now := time.Unix(0, 0)
	check := func(after time.Duration, want bool, when string) {
		t.Helper()
		now = now.Add(after)
		if got := r.due(now); got != want {
			t.Fatalf("%s: due = %v, want %v", when, got, want)
		}
	}
	check(0, false, "first check")
	request()
	check(memoryCheckInterval, false, "a check that saw requests")
	check(memoryCheckInterval, true, "requests stopped")
	check(memoryCheckInterval, false, "idle, agents not yet evicted")
	check(evictAfter, true, "agents evicted")
	check(evictAfter, false, "long idle")
	request()
	check(memoryCheckInterval, false, "requests again")
	check(memoryCheckInterval, true, "requests stopped again")
}
