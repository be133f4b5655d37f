package pebble

import (
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
