package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startServer runs a server in-process on cfg until the test ends; it
// returns the API's base URL and a function that stops it.
func startServer(t *testing.T, cfg serveConfig) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runServer(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return base, stop
}

// backupWriter creates agents and edits its first agent's block, counting
// what was acknowledged.
type backupWriter struct {
	mu      sync.Mutex
	created []string // agents acknowledged, in order
	edited  int      // last edit acknowledged: value "v<edited>"
}

func (w *backupWriter) run(t *testing.T, base string, stop <-chan struct{}) {
	body := map[string]any{"model": "openai/gpt-4o-mini", "memory_blocks": []map[string]string{{"label": "human", "value": "v0"}}}
	for i := 1; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		var a agentJSON
		if _, err := call(http.DefaultClient, "POST", base+"/v1/agents", body, &a); err != nil {
			t.Error(err)
			return
		}
		w.mu.Lock()
		w.created = append(w.created, a.ID)
		first := w.created[0]
		w.mu.Unlock()
		url := base + "/v1/agents/" + first + "/core-memory/blocks/human"
		if _, err := call(http.DefaultClient, "PATCH", url, map[string]string{"value": "v" + strconv.Itoa(i)}, nil); err != nil {
			t.Error(err)
			return
		}
		w.mu.Lock()
		w.edited = i
		w.mu.Unlock()
	}
}

// Spec: a backup taken while the server runs and clients write holds every
// write acknowledged before it began; restored into a new data dir it
// passes kelpie check and serves those writes. Backup and restore refuse a
// target that is not empty.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	dataDir := t.TempDir()
	cfg := serveConfig{addr: "127.0.0.1:0", dataDir: dataDir, storage: "pebble", idleTimeout: time.Minute, maxActivations: 1000}
	base, stopServer := startServer(t, cfg)

	const writers = 8
	ws := make([]*backupWriter, writers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = &backupWriter{}
		wg.Go(func() { ws[i].run(t, base, stop) })
	}
	time.Sleep(300 * time.Millisecond)

	// What was acknowledged before the backup began.
	type acked struct {
		created []string
		edited  int
	}
	before := make([]acked, writers)
	for i, w := range ws {
		w.mu.Lock()
		before[i] = acked{append([]string(nil), w.created...), w.edited}
		w.mu.Unlock()
	}
	backupDir := filepath.Join(t.TempDir(), "backup")
	var out, errOut bytes.Buffer
	if code := run([]string{"backup", "--data-dir", dataDir, "--to", backupDir}, &out, &errOut); code != 0 {
		t.Fatalf("kelpie backup exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "taken by the running server") {
		t.Errorf("backup of a served data dir did not go through the server: %s", out.String())
	}
	time.Sleep(100 * time.Millisecond) // writes after the backup
	close(stop)
	wg.Wait()
	stopServer()
	total := 0
	for i, w := range ws {
		total += len(before[i].created)
		if len(w.created) <= len(before[i].created) {
			t.Errorf("writer %d made no write during or after the backup", i)
		}
	}
	t.Logf("%d agents acknowledged before the backup began", total)

	if code := run([]string{"backup", "--data-dir", dataDir, "--to", backupDir}, &out, &errOut); code != 1 {
		t.Errorf("a backup into a non-empty directory exited %d, want 1", code)
	}
	out.Reset()
	offline := filepath.Join(t.TempDir(), "offline")
	if code := run([]string{"backup", "--data-dir", dataDir, "--to", offline}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "no server was running") {
		t.Errorf("a backup of a stopped server's data exited %d: %s %s", code, out.String(), errOut.String())
	}
	restored := filepath.Join(t.TempDir(), "restored")
	out.Reset()
	if code := run([]string{"restore", "--from", backupDir, "--data-dir", restored}, &out, &errOut); code != 0 {
		t.Fatalf("kelpie restore exited %d: %s\n%s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"check", "--data-dir", restored}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "ok:") {
		t.Fatalf("kelpie check of the restored data exited %d:\n%s", code, out.String())
	}
	if code := run([]string{"restore", "--from", backupDir, "--data-dir", restored}, &out, &errOut); code != 1 {
		t.Errorf("a restore into a non-empty data dir exited %d, want 1", code)
	}
	if code := run([]string{"restore", "--from", t.TempDir(), "--data-dir", filepath.Join(t.TempDir(), "x")}, &out, &errOut); code != 1 {
		t.Errorf("a restore from a directory that is no backup exited %d, want 1", code)
	}

	cfg.dataDir = restored
	base, _ = startServer(t, cfg)
	for i, b := range before {
		for _, id := range b.created {
			if _, err := call(http.DefaultClient, "GET", base+"/v1/agents/"+id, nil, nil); err != nil {
				t.Errorf("writer %d: agent acknowledged before the backup is missing: %v", i, err)
			}
		}
		if len(b.created) == 0 {
			continue
		}
		var block struct {
			Value string `json:"value"`
		}
		if _, err := call(http.DefaultClient, "GET", base+"/v1/agents/"+b.created[0]+"/core-memory/blocks/human", nil, &block); err != nil {
			t.Fatal(err)
		}
		if n, err := strconv.Atoi(strings.TrimPrefix(block.Value, "v")); err != nil || n < b.edited {
			t.Errorf("writer %d: restored block holds %q, older than edit v%d acknowledged before the backup", i, block.Value, b.edited)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, adminSocketName)); !os.IsNotExist(err) {
		t.Errorf("the admin socket outlived its server: %v", err)
	}
}
