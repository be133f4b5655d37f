package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

// call sends a JSON request and decodes a JSON answer into out.
func call(client *http.Client, method, url string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != 200 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, data)
	}
	if out != nil {
		return 200, json.Unmarshal(data, out)
	}
	return 200, nil
}

type agentJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Blocks []struct {
		Label string `json:"label"`
		Value string `json:"value"`
	} `json:"blocks"`
}

// edit is one block edit a client sent, and whether it was acknowledged.
type edit struct {
	value string
	acked bool
}

// lastAckedOrLater reports whether got is the value of the last
// acknowledged edit of es or of one sent after it (edits whose outcome is
// unknown may or may not have landed), and returns that last value.
func lastAckedOrLater(es []edit, got string) (ok bool, last string) {
	i := 0
	for j, e := range es {
		if e.acked {
			i = j
		}
	}
	for _, e := range es[i:] {
		ok = ok || e.value == got
	}
	return ok, es[i].value
}

// TestKillDashNine drives the real binary with concurrent creates and block
// edits over HTTP, kills it with SIGKILL mid-load, restarts it on the same
// data directory and checks that every acknowledged write is there.
func TestKillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	killDashNine(t, kelpietest.Build(t), nil, "--data-dir", t.TempDir())
}

// killDashNine runs TestKillDashNine on the binary bin, started with env
// and storage flags.
func killDashNine(t *testing.T, bin string, env []string, storage ...string) {
	args := append(storage, "--idle-timeout", "50ms", "--max-activations", "8", "--default-model", "openai/gpt-4o-mini")
	srv := kelpietest.Start(t, bin, env, args...)

	const clients = 16
	var (
		acked   atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = map[string][]edit{} // agent id -> its edits in order; index 0 is the create
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var mine []string
			for n := 0; !stop.Load(); n++ {
				if len(mine) == 0 || rng.IntN(3) == 0 {
					value := fmt.Sprintf("c%d-create-%d", c, n)
					var a agentJSON
					_, err := call(client, "POST", srv.URL+"/v1/agents/", map[string]any{
						"name":          fmt.Sprintf("c%d-%d", c, n),
						"memory_blocks": []map[string]any{{"label": "human", "value": value}, {"label": "persona", "value": "p"}},
					}, &a)
					if err != nil {
						if !stop.Load() {
							t.Errorf("create before the kill: %v", err)
						}
						return
					}
					mu.Lock()
					created[a.ID] = []edit{{value: value, acked: true}}
					mu.Unlock()
					mine = append(mine, a.ID)
					acked.Add(1)
					continue
				}
				id := mine[rng.IntN(len(mine))]
				value := fmt.Sprintf("c%d-edit-%d", c, n)
				mu.Lock()
				created[id] = append(created[id], edit{value: value})
				i := len(created[id]) - 1
				mu.Unlock()
				_, err := call(client, "PATCH", srv.URL+"/v1/agents/"+id+"/core-memory/blocks/human", map[string]any{"value": value}, nil)
				if err != nil {
					if !stop.Load() {
						t.Errorf("edit before the kill: %v", err)
					}
					return
				}
				mu.Lock()
				created[id][i].acked = true
				mu.Unlock()
				acked.Add(1)
			}
		})
	}
	target := int64(200 + rand.IntN(600))
	deadline := time.Now().Add(2 * time.Minute)
	for acked.Load() < target && !t.Failed() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Errors from here on are the kill's doing, not the server's.
	stop.Store(true)
	srv.Kill(t)
	wg.Wait()
	// Every answer a client received was sent by the server before it
	// died, so every acknowledgement recorded so far must survive.
	before := created
	t.Logf("killed with SIGKILL after %d acknowledged writes on %d agents", acked.Load(), len(before))

	srv = kelpietest.Start(t, bin, env, args...)
	for id, es := range before {
		var a agentJSON
		if _, err := call(client, "GET", srv.URL+"/v1/agents/"+id, nil, &a); err != nil {
			t.Errorf("acknowledged create of %s lost: %v", id, err)
			continue
		}
		got := ""
		for _, b := range a.Blocks {
			if b.Label == "human" {
				got = b.Value
			}
		}
		if ok, last := lastAckedOrLater(es, got); !ok {
			t.Errorf("agent %s: human block is %q; last acknowledged value %q", id, got, last)
		}
	}
	var count int
	if _, err := call(client, "GET", srv.URL+"/v1/agents/count", nil, &count); err != nil {
		t.Fatal(err)
	}
	if count < len(before) {
		t.Errorf("count after restart is %d, fewer than the %d acknowledged creates", count, len(before))
	}
	// A clean shutdown on SIGTERM exits 0.
	if err := srv.Stop(t); err != nil {
		t.Errorf("graceful shutdown: %v; logs:\n%s", err, srv.Logs())
	}
}
