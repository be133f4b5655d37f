package warm

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// settle waits until the number of goroutines is at most n, and returns it.
func settle(n int) int {
	for range 200 {
		if g := runtime.NumGoroutine(); g <= n {
			return g
		}
		time.Sleep(5 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

// Spec: every function handed to Go runs; once they have returned, at most
// maxIdle goroutines stay, and a later function leaves no goroutine more;
// Close sends them all away, and Go still runs what it is given afterwards.
func TestPool(t *testing.T) {
	const maxIdle, burst = 4, 50
	base := runtime.NumGoroutine()
	p := New(maxIdle)

	var wg sync.WaitGroup
	release := make(chan struct{})
	ran := make(chan int, burst)
	for i := range burst {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			<-release
			ran <- i
		})
	}
	close(release)
	wg.Wait()
	if len(ran) != burst {
		t.Fatalf("%d of %d functions ran", len(ran), burst)
	}
	if g := settle(base + maxIdle); g != base+maxIdle {
		t.Fatalf("after a burst of %d: %d goroutines beyond the test's, want the %d idle ones", burst, g-base, maxIdle)
	}

	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
	if g := settle(base + maxIdle); g != base+maxIdle {
		t.Fatalf("a function on a warm goroutine left %d goroutines beyond the test's, want %d", g-base, maxIdle)
	}

	p.Close()
	if g := settle(base); g != base {
		t.Fatalf("after Close: %d goroutines beyond the test's, want 0", g-base)
	}
	after := make(chan struct{})
	p.Go(func() { close(after) })
	<-after
	if g := settle(base); g != base {
		t.Fatalf("a function run after Close left %d goroutines beyond the test's", g-base)
	}
}
