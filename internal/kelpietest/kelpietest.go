// Package kelpietest is test support: it builds the kelpie binary and runs
// it as a real process for end-to-end tests (on a free loopback port, with a
// temporary data directory, killed when the test ends), and gives storage
// tests a clock they step and a way to damage a WAL.
package kelpietest

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a test waits for the server to come up. It is
// a guard against hanging, not a performance assertion.
const startTimeout = 60 * time.Second

// Build compiles ./cmd/kelpie into a temporary directory and returns the
// binary's path.
func Build(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bin := filepath.Join(t.TempDir(), "kelpie")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kelpie")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kelpie: %v\n%s", err, out)
	}
	return bin
}

// Server is a running 'kelpie serve' process.
type Server struct {
	Cmd *exec.Cmd
	// URL is the base URL, such as http://127.0.0.1:43210.
	URL string

	mu   sync.Mutex
	logs bytes.Buffer
}

var listenLine = regexp.MustCompile(`"kelpie listening" addr=(\S+)`)

// Start runs 'bin serve --addr 127.0.0.1:0 args...' with the extra
// environment env ("NAME=value"), waits until it answers health checks, and
// kills it when the test ends.
func Start(t testing.TB, bin string, env []string, args ...string) *Server {
	t.Helper()
	return start(t, exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...), env)
}

// StartLimited is Start with the process's open-file limit (soft and hard)
// set to nofile, as `ulimit -n` sets it.
func StartLimited(t testing.TB, nofile int, bin string, env []string, args ...string) *Server {
	t.Helper()
	script := fmt.Sprintf(`ulimit -n %d && exec "$@"`, nofile)
	return start(t, exec.Command("sh", append([]string{"-c", script, "sh", bin, "serve", "--addr", "127.0.0.1:0"}, args...)...), env)
}

func start(t testing.TB, cmd *exec.Cmd, env []string) *Server {
	t.Helper()
	cmd.Env = append(cmd.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{Cmd: cmd}
	t.Cleanup(func() {
		if s.Cmd.ProcessState == nil {
			s.Cmd.Process.Kill()
			s.Cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.mu.Lock()
			fmt.Fprintln(&s.logs, sc.Text())
			s.mu.Unlock()
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case <-time.After(startTimeout):
		t.Fatalf("kelpie did not report its address; logs:\n%s", s.Logs())
	}
	for deadline := time.Now().Add(startTimeout); ; {
		resp, err := http.Get(s.URL + "/v1/health/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kelpie never became healthy: %v; logs:\n%s", err, s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logs returns what the server has logged so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// Kill ends the process with SIGKILL: no shutdown code runs.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.Cmd.Wait()
}

// Stop sends SIGTERM and returns the process's exit error (nil for a clean
// exit), failing the test if it does not exit in time.
func (s *Server) Stop(t testing.TB) error {
	t.Helper()
	s.Cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.Cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(startTimeout):
		t.Fatalf("kelpie did not exit after SIGTERM; logs:\n%s", s.Logs())
		return nil
	}
}
