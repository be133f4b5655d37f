package kvtest

import (
	"sync"
	"sync/atomic"
	"testing"
)

// RunWriters runs b.N calls of op, numbered from 0, spread over w
// goroutines, and reports commits per second: the engines' commit
// benchmarks measure the same way.
func RunWriters(b *testing.B, w int, op func(i uint64) error) {
	var next atomic.Uint64
	n := uint64(b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	for range w {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}
