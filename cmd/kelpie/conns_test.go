package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

// Spec: under a low file-descriptor limit, idle keep-alive connections
// beyond the cap and slow clients do not stop new clients from being
// served (storage keeps its descriptors), nor a clean shutdown; a request
// without the API key gets a 401 and its connection closed.
func TestConnectionsUnderLowFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := kelpietest.Build(t)
	const nofile = 256 // the cap is then 256 - 64 (storage) - 64 (other) = 128
	srv := kelpietest.StartLimited(t, nofile, bin, nil, "--data-dir", t.TempDir(), "--default-model", "openai/gpt-4o-mini", "--api-key", "k")
	addr := strings.TrimPrefix(srv.URL, "http://")

	var idle []net.Conn
	for range 2 * nofile { // far past the cap: the oldest idle ones make room
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		fmt.Fprintf(c, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		idle = append(idle, c)
	}
	var slow []net.Conn
	for range 8 { // headers that never finish
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		fmt.Fprintf(c, "POST /v1/agents HTTP/1.1\r\nHost: x\r\n")
		slow = append(slow, c)
	}
	defer func() {
		for _, c := range append(idle, slow...) {
			c.Close()
		}
	}()

	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 20 {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/agents", strings.NewReader(fmt.Sprintf(`{"name":"n%d"}`, i)))
		req.Header.Set("Authorization", "Bearer k")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("create %d with %d idle and %d slow connections open: %v\nlogs:\n%s", i, len(idle), len(slow), err, srv.Logs())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("create %d: %d\nlogs:\n%s", i, resp.StatusCode, srv.Logs())
		}
	}

	resp, err := http.Get(srv.URL + "/v1/agents")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !resp.Close {
		t.Errorf("without the key: status %d, connection closed %v; want 401, closed", resp.StatusCode, resp.Close)
	}

	start := time.Now()
	if err := srv.Stop(t); err != nil {
		t.Fatalf("shutdown with slow clients connected: %v\nlogs:\n%s", err, srv.Logs())
	}
	if d := time.Since(start); d > shutdownGracePeriod {
		t.Errorf("shutdown took %v, more than the grace period %v", d, shutdownGracePeriod)
	}
	if logs := srv.Logs(); !strings.Contains(logs, "waiting for requests in flight") || !strings.Contains(logs, "stopped") {
		t.Errorf("shutdown logs:\n%s", logs)
	}
}
