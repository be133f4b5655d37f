package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/api"
)

func TestHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("kelpie --help exited %d", code)
	}
	if !strings.Contains(out.String(), "serve") {
		t.Errorf("kelpie --help does not mention serve:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"serve", "--help"}, &out, &errOut); code != 0 {
		t.Fatalf("kelpie serve --help exited %d", code)
	}
	for _, flag := range []string{"-addr", "-data-dir", "-storage", "-idle-timeout", "-max-activations", "KELPIE_ADDR", "KELPIE_DATA_DIR"} {
		if !strings.Contains(errOut.String(), flag) {
			t.Errorf("kelpie serve --help does not explain %s:\n%s", flag, errOut.String())
		}
	}
}

// TestVersion: both spellings print Kelpie's version and the Letta API
// version it serves.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var out, errOut bytes.Buffer
		if code := run([]string{arg}, &out, &errOut); code != 0 {
			t.Fatalf("kelpie %s exited %d: %s", arg, code, errOut.String())
		}
		want := "kelpie " + version + " (Letta API " + api.LettaAPIVersion + ")\n"
		if out.String() != want {
			t.Errorf("kelpie %s printed %q, want %q", arg, out.String(), want)
		}
	}
}

func TestBadInvocations(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"serve", "--storage", "floppy", "--addr", "127.0.0.1:0"},
		{"serve", "--max-activations", "0"},
		{"serve", "--log-level", "loud"},
		{"serve", "extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code == 0 {
			t.Errorf("kelpie %q exited 0; want an error", args)
		} else if errOut.Len() == 0 {
			t.Errorf("kelpie %q failed without saying why", args)
		}
	}
}

func TestEnvironmentFallback(t *testing.T) {
	t.Setenv("KELPIE_IDLE_TIMEOUT", "forever")
	var out, errOut bytes.Buffer
	if code := run([]string{"serve"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "KELPIE_IDLE_TIMEOUT") {
		t.Fatalf("bad KELPIE_IDLE_TIMEOUT: exit %d, stderr %q", code, errOut.String())
	}
}

// TestServeMemory starts the server in-process on memory storage, checks
// the log line and health, and shuts it down.
func TestServeMemory(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- runServer(ctx, serveConfig{addr: "127.0.0.1:0", storage: "memory", idleTimeout: time.Minute, maxActivations: 10}, log, ready)
	}()
	addr := <-ready
	resp, err := http.Get("http://" + addr + "/v1/health/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":"ok"`) {
		t.Fatalf("health: %d %s", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kelpie listening", "storage=memory", "data_dir="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs.String())
		}
	}
}

// Spec: the API key can come from a file (out of ps), not with --api-key
// too; an empty file is an error.
func TestAPIKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	os.WriteFile(path, []byte("s3cret\n"), 0o600)
	c := serveConfig{apiKeyFile: path}
	if err := c.resolve(); err != nil || c.apiKey != "s3cret" {
		t.Fatalf("resolve: %v, key %q", err, c.apiKey)
	}
	if err := (&serveConfig{apiKey: "a", apiKeyFile: path}).resolve(); err == nil {
		t.Error("both --api-key and --api-key-file accepted")
	}
	os.WriteFile(path, []byte("\n"), 0o600)
	if err := (&serveConfig{apiKeyFile: path}).resolve(); err == nil {
		t.Error("an empty key file accepted")
	}
}

// Spec: resolve runs the collector at defaultGCPercent and extraProcs
// processors beyond Go's default, however often it runs, unless GOGC and
// GOMAXPROCS say otherwise.
func TestProcessSettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOGC", "")
	t.Setenv("GOMAXPROCS", "")
	for range 2 {
		if err := (&serveConfig{}).resolve(); err != nil {
			t.Fatal(err)
		}
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Errorf("GOGC %d, want %d", got, defaultGCPercent)
	}
	if got := runtime.GOMAXPROCS(0); got != defaultProcs+extraProcs {
		t.Errorf("GOMAXPROCS %d, want %d+%d", got, defaultProcs, extraProcs)
	}
	t.Setenv("GOGC", "100")
	t.Setenv("GOMAXPROCS", "1")
	runtime.GOMAXPROCS(1)
	if err := (&serveConfig{}).resolve(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC %d with GOGC=100 set", got)
	}
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Errorf("GOMAXPROCS %d with GOMAXPROCS=1 set", got)
	}
}

// Spec: listening beyond loopback without a key is warned about; on
// loopback, or with a key, it is not.
func TestWarnIfOpen(t *testing.T) {
	for _, c := range []struct {
		ip   string
		key  string
		warn bool
	}{{"0.0.0.0", "", true}, {"10.1.2.3", "", true}, {"127.0.0.1", "", false}, {"0.0.0.0", "k", false}} {
		var buf bytes.Buffer
		warnIfOpen(&net.TCPAddr{IP: net.ParseIP(c.ip), Port: 8283}, c.key, slog.New(slog.NewTextHandler(&buf, nil)))
		if got := strings.Contains(buf.String(), "without an API key"); got != c.warn {
			t.Errorf("%s key=%q: warned %v", c.ip, c.key, got)
		}
	}
}

// Spec: sizes read as people write them.
func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512MiB": 512 << 20, "2GiB": 2 << 30, "1 GB": 1e9, "10KB": 10e3} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "-1MiB", "1.5GiB", "99999999999TiB"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("parseBytes(%q) accepted", bad)
		}
	}
}
