package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/api"
	"github.com/kelpie/kelpie/internal/kelpietest"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/kv/pebble"
)

// serveOn serves the API over a Pebble engine, in this process.
func serveOn(t *testing.T, eng *pebble.Engine) *httptest.Server {
	t.Helper()
	svc, err := agent.New(agent.Config{Store: kv.NewDB(eng), DefaultModel: "openai/gpt-4o-mini", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(svc, api.Options{}))
	t.Cleanup(func() {
		srv.Close()
		svc.Close(t.Context())
		eng.Close()
	})
	return srv
}

// Spec: a full disk answers writes 507 at once, with nothing applied;
// reads go on; writes resume by themselves when space is freed.
func TestFullDiskOverHTTP(t *testing.T) {
	mem := vfs.NewMem()
	roomy := vfs.DiskUsage{AvailBytes: 10 << 30, TotalBytes: 20 << 30}
	mem.TestingSetDiskUsage(roomy)
	clk := kelpietest.NewStepClock(time.Unix(0, 0))
	eng, err := pebble.Open("db", pebble.Options{FS: mem, MinFreeBytes: 1 << 30, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveOn(t, eng)
	client := srv.Client()
	var a agentJSON
	if st, err := call(client, "POST", srv.URL+"/v1/agents", map[string]any{"name": "before"}, &a); st != 200 || err != nil {
		t.Fatalf("create: %d %v", st, err)
	}
	mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: 100 << 20, TotalBytes: 20 << 30})
	clk.Advance(time.Second)
	if st, _ := call(client, "POST", srv.URL+"/v1/agents", map[string]any{"name": "full"}, nil); st != 507 {
		t.Fatalf("create on a full disk: %d, want 507", st)
	}
	if st, err := call(client, "GET", srv.URL+"/v1/agents/"+a.ID, nil, nil); st != 200 || err != nil {
		t.Fatalf("read on a full disk: %d %v", st, err)
	}
	var list []agentJSON
	call(client, "GET", srv.URL+"/v1/agents", nil, &list)
	if len(list) != 1 {
		t.Fatalf("the refused create left %d agents", len(list))
	}
	mem.TestingSetDiskUsage(roomy)
	clk.Advance(time.Second)
	if st, err := call(client, "POST", srv.URL+"/v1/agents", map[string]any{"name": "after"}, nil); st != 200 || err != nil {
		t.Fatalf("create after space was freed: %d %v", st, err)
	}
}

// Spec: corruption found while serving fails the requests that touch it
// with a clear 500; the process serves everything else; `kelpie check`
// reports the damage offline, and finds nothing on healthy data.
func TestCorruptionOverHTTPAndCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "pebble")
	eng, err := pebble.Open(store, pebble.Options{MemTableSize: 64 << 10, MinFreeBytes: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := serveOn(t, eng)
	var ids []string
	for i := range 300 {
		var a agentJSON
		body := map[string]any{"name": fmt.Sprintf("a%d", i), "description": strings.Repeat("d", 2000)}
		if st, err := call(srv.Client(), "POST", srv.URL+"/v1/agents", body, &a); st != 200 || err != nil {
			t.Fatalf("create: %d %v", st, err)
		}
		ids = append(ids, a.ID)
	}
	srv.Close()
	eng.Close()

	bin := kelpietest.Build(t)
	out, err := exec.Command(bin, "check", "--data-dir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok: nothing damaged") {
		t.Fatalf("kelpie check on healthy data: %v\n%s", err, out)
	}

	tables, _ := filepath.Glob(filepath.Join(store, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no tables written")
	}
	flipBytes(t, tables[0])
	out, err = exec.Command(bin, "check", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "damaged storage") {
		t.Fatalf("kelpie check on a damaged table: %v\n%s", err, out)
	}

	eng, err = pebble.Open(store, pebble.Options{MinFreeBytes: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv = serveOn(t, eng)
	corrupt, fine := 0, 0
	for _, id := range ids {
		switch st, err := call(srv.Client(), "GET", srv.URL+"/v1/agents/"+id, nil, nil); {
		case st == 500 && strings.Contains(err.Error(), "storage corruption detected"):
			corrupt++
		case st == 200:
			fine++
		default:
			t.Fatalf("GET agent: %d %v", st, err)
		}
	}
	if corrupt == 0 || fine == 0 {
		t.Fatalf("%d corrupt and %d fine reads; want some of each", corrupt, fine)
	}
}

// flipBytes damages a file in its middle.
func flipBytes(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(data) / 3; i < len(data)/3+64; i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Spec: a store whose WAL was truncated after its writes were acknowledged
// does not start silently without them: serve refuses it, naming what is
// missing, and check reports it; --accept-data-loss starts it with what is
// left, and the loss is not reported again.
func TestTruncatedWALRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := kelpietest.Build(t)
	dir := t.TempDir()
	srv := kelpietest.Start(t, bin, nil, "--data-dir", dir, "--default-model", "openai/gpt-4o-mini")
	const agents = 60
	for i := range agents {
		if st, err := call(http.DefaultClient, "POST", srv.URL+"/v1/agents", map[string]any{"name": fmt.Sprintf("a%d", i)}, nil); st != 200 || err != nil {
			t.Fatalf("create: %d %v", st, err)
		}
	}
	if err := srv.Stop(t); err != nil {
		t.Fatalf("stop: %v\n%s", err, srv.Logs())
	}
	kelpietest.TruncateWALs(t, filepath.Join(dir, "pebble"))

	out, err := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "acknowledged writes are missing") {
		t.Fatalf("serve on a truncated WAL: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "check", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "lost writes:") {
		t.Fatalf("check on a truncated WAL: %v\n%s", err, out)
	}

	srv = kelpietest.Start(t, bin, nil, "--data-dir", dir, "--accept-data-loss")
	if !strings.Contains(srv.Logs(), "storage lost acknowledged writes") {
		t.Errorf("--accept-data-loss started without saying what was lost:\n%s", srv.Logs())
	}
	var n int
	if st, err := call(http.DefaultClient, "GET", srv.URL+"/v1/agents/count", nil, &n); st != 200 || err != nil || n >= agents {
		t.Fatalf("count after the accepted loss: %d %v %d, want fewer than %d", st, err, n, agents)
	}
	if err := srv.Stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if out, err := exec.Command(bin, "check", "--data-dir", dir).CombinedOutput(); strings.Contains(string(out), "lost writes:") {
		t.Fatalf("check reports an accepted loss again: %v\n%s", err, out)
	}
	kelpietest.Start(t, bin, nil, "--data-dir", dir)
}

// Spec: a second server on a data directory in use is refused, naming the
// process that holds it.
func TestDataDirInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := kelpietest.Build(t)
	dir := t.TempDir()
	first := kelpietest.Start(t, bin, nil, "--data-dir", dir)
	out, err := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", dir).CombinedOutput()
	want := fmt.Sprintf("in use by pid %d", first.Cmd.Process.Pid)
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("second server: %v\n%s\nwant %q", err, out, want)
	}
}
