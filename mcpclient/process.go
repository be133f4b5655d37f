package mcpclient

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kelpie/kelpie/schema"
)

// defaultEnv are the variables of Kelpie's environment a stdio server gets
// (the MCP SDKs' default environment); its config's env adds to them.
var defaultEnv = []string{"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"}

// process is a running stdio server.
type process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr *tailBuffer
	done   chan struct{} // closed once the process has been reaped
	err    error         // how it ended, once done
	once   sync.Once
}

// startProcess starts s's command in a process group of its own, talking
// over pipes. The pipes are plain files, so the server's output reaches
// the session without a copying goroutine and a read sees EOF once the
// server (and whatever it started) has exited.
func startProcess(s *schema.MCPServer) (*process, error) {
	cmd := exec.Command(s.Command, s.Args...)
	for _, k := range defaultEnv {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	p := &process{cmd: cmd, stdin: inW, stdout: outR, stderr: &tailBuffer{max: MaxStderrBytes}, done: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, p.stderr
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("could not start %q: %w", s.Command, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends the server: its stdin closed (the MCP way to ask it to exit),
// then, after StopGrace at most, its whole process group killed; it
// returns once the server has been reaped.
func (p *process) stop() {
	p.once.Do(func() {
		p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(StopGrace):
		}
		// Also kills what the server started and left behind in its group.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		p.stdout.Close()
	})
}

// exited says how the server ended and what it printed last, or "" while
// it runs.
func (p *process) exited() string {
	select {
	case <-p.done:
	default:
		return ""
	}
	why := "the server exited"
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		why = "the server exited: " + ee.ProcessState.String()
	}
	if tail := strings.TrimSpace(p.stderr.String()); tail != "" {
		why += "; it printed: " + tail
	}
	return why
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// boundedBody fails a read past its limit, so that a server cannot flood
// the client.
type boundedBody struct {
	io.ReadCloser
	left int64
}

var errTooLarge = fmt.Errorf("the server's response exceeded %d bytes", MaxResponseBytes)

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
