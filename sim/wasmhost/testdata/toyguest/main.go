// Command toyguest is a small wasip1 program that exercises the sources of
// nondeterminism a Go program has — goroutine interleaving, channels and
// select, timers and sleeps, math/rand, map iteration order, the garbage
// collector — and prints a hash of the order in which things happened. The
// wasmhost tests run it twice with one seed and expect the same hash.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	workers := 8
	if len(os.Args) > 1 && os.Args[1] == "forever" {
		for { // to be stopped by the host
			time.Sleep(time.Hour)
		}
	}
	if len(os.Args) > 1 {
		if n, err := strconv.Atoi(os.Args[1]); err == nil {
			workers = n
		}
	}
	start := time.Now()
	var (
		mu     sync.Mutex
		events []string
	)
	record := func(format string, args ...any) {
		mu.Lock()
		events = append(events, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	results := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := map[int]string{}
			for i := 0; i < 50; i++ {
				m[rand.Intn(1000)] = strconv.Itoa(i)
				if rand.Intn(4) == 0 {
					time.Sleep(time.Duration(rand.Intn(5000)) * time.Microsecond)
				}
				_ = make([]byte, 64<<10) // garbage, so the collector runs
				select {
				case results <- w*1000 + i:
				case <-time.After(time.Duration(rand.Intn(3)) * time.Millisecond):
					record("timeout w=%d i=%d", w, i)
				}
			}
			for k, v := range m { // iteration order is randomized per map
				record("w=%d k=%d v=%s", w, k, v)
				break
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	tick := time.NewTicker(700 * time.Microsecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case r, ok := <-results:
			if !ok {
				done = true
				break
			}
			record("got %d at %v", r, time.Since(start))
		case <-tick.C:
			record("tick at %v", time.Since(start))
		}
	}
	h := sha256.New()
	for _, e := range events {
		fmt.Fprintln(h, e)
	}
	fmt.Printf("events=%d elapsed=%v now=%s trace=%s\n", len(events), time.Since(start),
		time.Now().UTC().Format(time.RFC3339Nano), hex.EncodeToString(h.Sum(nil)))
}
