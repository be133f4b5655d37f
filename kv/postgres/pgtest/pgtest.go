// Package pgtest runs throwaway Postgres servers for tests: each in its own
// temporary directory, listening only on a free loopback port, run as the
// unprivileged postgres user when the test runs as root (initdb refuses
// root), and removed with its files when the test binary (or the test)
// ends. A test binary shares one server, started on first use; each test
// gets a database of its own on it.
//
// Postgres's programs are found on PATH or under /usr/lib/postgresql. When
// they are missing a test is skipped on a developer's machine but fails
// under CI, which installs them (kelpietest.NeedTool).
package pgtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kelpie/kelpie/internal/kelpietest"
)

// Bounds on waiting for the server, guards against hanging rather than
// performance assertions.
const (
	startTimeout = 60 * time.Second
	stopTimeout  = 60 * time.Second
)

// superuser is the role initdb creates; loopback connections are trusted.
const superuser = "kelpie"

// Server is one Postgres server in a temporary directory.
type Server struct {
	dir  string // removed by Remove
	bin  string // the directory of initdb and postgres
	port int
	cred *syscall.Credential // whom the server runs as; nil: this process's user

	mu     sync.Mutex
	cmd    *exec.Cmd     // the running postmaster; nil when stopped
	exited chan struct{} // closed when cmd has exited
}

// Start initialises a new server in a temporary directory and starts it.
func Start() (*Server, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kelpie-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: bin}
	if err := s.init(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Restart(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// findBin returns the directory holding initdb and postgres.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real), nil
		}
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		return "", errors.New("initdb is not on PATH nor under /usr/lib/postgresql")
	}
	slices.Sort(found)
	return filepath.Dir(found[len(found)-1]), nil
}

// init runs initdb, as the postgres user when this process is root.
func (s *Server) init() error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root, and initdb refuses root: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.dir, uid, gid); err != nil {
			return err
		}
	}
	cmd := s.command("initdb", "-D", s.data(), "-U", superuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--data-checksums", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	return nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	cmd.Dir = s.dir
	// If the test binary dies, the server shuts down rather than linger.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGINT}
	return cmd
}

// Restart starts the server (again) on its directory and port, and waits
// until it accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: server already running")
	}
	if s.port == 0 {
		port, err := freePort()
		if err != nil {
			return err
		}
		s.port = port
	}
	logPath := filepath.Join(s.dir, "server.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := s.command("postgres", "-D", s.data(), "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.After(startTimeout)
	for {
		err := s.psql("postgres", "SELECT 1")
		if err == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited at start: %s", out)
		case <-deadline:
			cmd.Process.Kill()
			<-exited
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within %v: %v\n%s", startTimeout, err, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop shuts the server down (a fast shutdown: open connections are
// closed, nothing committed is lost) and waits until it has exited.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("postgres did not stop within %v", stopTimeout)
	}
}

// Remove stops the server and deletes its directory.
func (s *Server) Remove() error {
	err := s.Stop()
	return errors.Join(err, os.RemoveAll(s.dir))
}

// URL is the connection URL of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, db)
}

// CreateDatabase creates an empty database, named with letters, digits and
// underscores, and returns its URL.
func (s *Server) CreateDatabase(name string) (string, error) {
	if err := s.psql("postgres", "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// psql runs one SQL command in database db with Postgres's own client (the
// engine's driver is for kv/postgres alone).
func (s *Server) psql(db, command string) error {
	cmd := exec.Command(filepath.Join(s.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", superuser, "-d", db, "-c", command)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("psql %q: %v: %s", command, err, out)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// need skips or fails t (kelpietest.NeedTool) when Postgres is not installed.
func need(t testing.TB) {
	t.Helper()
	if _, err := findBin(); err != nil {
		kelpietest.NeedTool(t, "initdb")
	}
}

// NewServer starts a server of t's own, removed when t ends: for a test
// that stops and restarts it.
func NewServer(t testing.TB) *Server {
	t.Helper()
	need(t)
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Remove(); err != nil {
			t.Errorf("removing the Postgres server: %v", err)
		}
	})
	return s
}

// The test binary's shared server, started on first use, and its database.
var shared struct {
	sync.Mutex
	srv     *Server
	url     string
	err     error
	schemas int
}

// NewDatabase returns the URL of a new, empty place to keep tables on the
// test binary's shared server: a schema of its own, which the URL makes the
// only one on the search path. The binary's TestMain must call Main, which
// removes the server at the end.
func NewDatabase(t testing.TB) string {
	t.Helper()
	need(t)
	const db = "kelpie_test"
	shared.Lock()
	if shared.srv == nil && shared.err == nil {
		if shared.srv, shared.err = Start(); shared.err == nil {
			shared.url, shared.err = shared.srv.CreateDatabase(db)
		}
	}
	srv, url, err := shared.srv, shared.url, shared.err
	shared.schemas++
	schema := fmt.Sprintf("test_%d", shared.schemas)
	shared.Unlock()
	if err != nil {
		t.Fatalf("starting Postgres: %v", err)
	}
	if err := srv.psql(db, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	return url + "&search_path=" + schema
}

// Main runs the tests and then removes the shared server, if one started.
// Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.srv != nil {
		if err := shared.srv.Remove(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: removing the Postgres server: %v\n", err)
			code = max(code, 1)
		}
	}
	shared.Unlock()
	os.Exit(code)
}
