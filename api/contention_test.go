package api

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// Spec: reads never fail because of concurrent writes, and edits of one
// block queue rather than fail, whichever route they take: through the
// block, or by label through any of the agents that share it.
func TestContendedBlockEditsQueueAndReadsNeverFail(t *testing.T) {
	c, _ := newTestServer(t, Options{})
	b := c.createBlock(`{"label":"shared","value":"v"}`)
	var agents []string
	for i := range 4 {
		a := c.createAgent(fmt.Sprintf(`{"name":"a%d","block_ids":["%s"]}`, i, b.ID))
		agents = append(agents, a.ID)
	}
	const writers, edits, readers = 8, 25, 4
	var (
		mu       sync.Mutex
		failures = map[string]int{} // "route status" -> count
		wg       sync.WaitGroup
	)
	send := func(method, path, body string) {
		req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		status := 0
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
		if status != http.StatusOK {
			mu.Lock()
			failures[fmt.Sprintf("%s %s: %d %v", method, strings.SplitN(path, "?", 2)[0], status, err)]++
			mu.Unlock()
		}
	}
	writing := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range edits {
				body := fmt.Sprintf(`{"value":"w%d-%d"}`, w, i)
				if i%2 == 0 {
					send("PATCH", "/v1/blocks/"+b.ID, body)
				} else {
					send("PATCH", "/v1/agents/"+agents[(w+i)%len(agents)]+"/core-memory/blocks/shared", body)
				}
			}
		})
	}
	var rg sync.WaitGroup
	for r := range readers {
		rg.Go(func() {
			for {
				select {
				case <-writing:
					return
				default:
				}
				send("GET", "/v1/blocks/"+b.ID, "")
				send("GET", "/v1/agents/"+agents[r%len(agents)], "")
				send("GET", "/v1/agents?limit=50", "")
			}
		})
	}
	wg.Wait()
	close(writing)
	rg.Wait()
	for what, n := range failures {
		t.Errorf("%s: %d times", what, n)
	}
}
