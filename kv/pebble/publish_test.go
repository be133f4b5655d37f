package pebble

import (
	"slices"
	"testing"

	"github.com/kelpie/kelpie/kv"
)

// Spec: a read waits for a batch in flight exactly when the batch wrote a
// key the read covers: its key, or a key of its range (End excluded; nil
// End unbounded).
func TestFlightWrote(t *testing.T) {
	f := &flight{keys: []string{"a/1", "a/3", "b"}}
	r := func(start, end string) kv.Range {
		out := kv.Range{Start: []byte(start)}
		if end != "" {
			out.End = []byte(end)
		}
		return out
	}
	for _, c := range []struct {
		r    kv.Range
		want bool
	}{
		{kv.Range{Start: []byte("a/1"), End: keyAfter([]byte("a/1"))}, true},
		{kv.Range{Start: []byte("a/2"), End: keyAfter([]byte("a/2"))}, false},
		{kv.Range{Start: []byte("a"), End: keyAfter([]byte("a"))}, false},
		{kv.PrefixRange([]byte("a/")), true},
		{r("a/2", "a/3"), false},
		{r("a/2", "a/4"), true},
		{r("a/4", "b"), false},
		{r("a/4", ""), true},
		{r("c", ""), false},
		{r("", "a/1"), false},
		{r("", ""), true},
	} {
		if got := f.wrote(c.r); got != c.want {
			t.Errorf("wrote [%q, %q) = %v, want %v", c.r.Start, c.r.End, got, c.want)
		}
		var in bool
		for _, k := range f.keys {
			in = in || inRange(k, c.r)
		}
		if in != c.want {
			t.Errorf("inRange over [%q, %q) = %v, want %v", c.r.Start, c.r.End, in, c.want)
		}
	}
}

// Spec: a point read waits for the batches in flight that wrote its key,
// and only for them (Engine.syncs.writers indexes them by key); once they
// land, their keys are forgotten.
func TestAwaitKey(t *testing.T) {
	e := &Engine{}
	e.syncs.init()
	f := &flight{keys: []string{"a", "b"}, done: make(chan struct{})}
	g := &flight{keys: []string{"b"}, done: make(chan struct{})}
	e.syncs.start(f)
	e.syncs.start(g)
	if err := e.awaitKey([]byte("c")); err != nil {
		t.Fatalf("a key no batch wrote: %v", err)
	}
	if w := e.syncs.writers; !slices.Equal(w["a"], []*flight{f}) || !slices.Equal(w["b"], []*flight{f, g}) {
		t.Fatalf("writers in flight by key: %v", w)
	}
	e.land(f, nil)
	if w := e.syncs.writers; len(w["a"]) != 0 || !slices.Equal(w["b"], []*flight{g}) {
		t.Fatalf("writers in flight by key after one landed: %v", w)
	}
	if err := e.awaitKey([]byte("a")); err != nil {
		t.Fatal(err)
	}
	returned := make(chan error, 1)
	go func() { returned <- e.awaitKey([]byte("b")) }()
	e.land(g, nil)
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	if len(e.syncs.writers) != 0 || len(e.syncs.inflight) != 0 {
		t.Fatalf("landed flights still known: %v %v", e.syncs.writers, e.syncs.inflight)
	}
}
