package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildKelpie compiles the binary once per test run.
func buildKelpie(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kelpie")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// server is a running 'kelpie serve' process.
type server struct {
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
	mu   *sync.Mutex
}

var listenLine = regexp.MustCompile(`"kelpie listening" addr=(\S+)`)

// startServer runs the binary on a free loopback port over dataDir and
// waits until it answers health checks.
func startServer(t *testing.T, bin, dataDir string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--idle-timeout", "50ms", "--max-activations", "8", "--default-model", "openai/gpt-4o-mini")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: &bytes.Buffer{}, mu: &sync.Mutex{}}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			fmt.Fprintln(s.logs, sc.Text())
			s.mu.Unlock()
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not report its address; logs:\n%s", s.logsText())
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get(s.base + "/v1/health/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never became healthy: %v; logs:\n%s", err, s.logsText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) logsText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

func (s *server) kill(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.cmd.Wait()
}

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

// TestKillDashNine drives the real binary with concurrent creates and block
// edits over HTTP, kills it with SIGKILL mid-load, restarts it on the same
// data directory and checks that every acknowledged write is there.
func TestKillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildKelpie(t)
	dataDir := t.TempDir()
	srv := startServer(t, bin, dataDir)

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
					_, err := call(client, "POST", srv.base+"/v1/agents/", map[string]any{
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
				_, err := call(client, "PATCH", srv.base+"/v1/agents/"+id+"/core-memory/blocks/human", map[string]any{"value": value}, nil)
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
	srv.kill(t)
	wg.Wait()
	// Every answer a client received was sent by the server before it
	// died, so every acknowledgement recorded so far must survive.
	before := created
	t.Logf("killed with SIGKILL after %d acknowledged writes on %d agents", acked.Load(), len(before))

	srv = startServer(t, bin, dataDir)
	for id, es := range before {
		var a agentJSON
		if _, err := call(client, "GET", srv.base+"/v1/agents/"+id, nil, &a); err != nil {
			t.Errorf("acknowledged create of %s lost: %v", id, err)
			continue
		}
		got := ""
		for _, b := range a.Blocks {
			if b.Label == "human" {
				got = b.Value
			}
		}
		// The value is the last acknowledged edit or one sent after it
		// (edits in flight at the kill may or may not have landed).
		last := 0
		for i, e := range es {
			if e.acked {
				last = i
			}
		}
		ok := false
		for _, e := range es[last:] {
			ok = ok || e.value == got
		}
		if !ok {
			t.Errorf("agent %s: human block is %q; last acknowledged value %q", id, got, es[last].value)
		}
	}
	var count int
	if _, err := call(client, "GET", srv.base+"/v1/agents/count", nil, &count); err != nil {
		t.Fatal(err)
	}
	if count < len(before) {
		t.Errorf("count after restart is %d, fewer than the %d acknowledged creates", count, len(before))
	}
	// A clean shutdown on SIGTERM exits 0.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- srv.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("graceful shutdown: %v; logs:\n%s", err, srv.logsText())
		}
	case <-time.After(60 * time.Second):
		t.Errorf("server did not exit after SIGTERM")
	}
}
