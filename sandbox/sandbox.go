package sandbox

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kelpie/kelpie/agent/tool"
)

//go:embed run.py
var runScript string

//go:embed derive.py
var deriveScript string

// Default limits of one tool call, each with its unit.
const (
	DefaultCPUTime     = 10 * time.Second // CPU time (RLIMIT_CPU)
	DefaultWallTime    = 30 * time.Second // from start to result, then the process group is killed
	DefaultMemoryBytes = 512 << 20        // address space (RLIMIT_AS)
	DefaultProcesses   = 32               // processes and threads of the call's user (RLIMIT_NPROC)
	DefaultFileBytes   = 16 << 20         // the largest file it may write (RLIMIT_FSIZE)
	DefaultTmpBytes    = 64 << 20         // its private /tmp (a tmpfs)
	DefaultOutputBytes = 1 << 20          // stdout and stderr kept, each; more kills the call
	MaxResultBytes     = 4 << 20          // the result itself; more is an error
	DefaultConcurrency = 8                // calls running at once; more wait their turn
	deriveWallTime     = 10 * time.Second // a schema derivation, which runs no tool code
	killGrace          = 100 * time.Millisecond
)

// Limits bound one call. Zero fields take the defaults above.
type Limits struct {
	CPUTime     time.Duration
	WallTime    time.Duration
	MemoryBytes int64
	Processes   int
	FileBytes   int64
	TmpBytes    int64
	OutputBytes int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.CPUTime <= 0 {
		l.CPUTime = DefaultCPUTime
	}
	if l.WallTime <= 0 {
		l.WallTime = DefaultWallTime
	}
	def(&l.MemoryBytes, DefaultMemoryBytes)
	def(&l.FileBytes, DefaultFileBytes)
	def(&l.TmpBytes, DefaultTmpBytes)
	if l.Processes <= 0 {
		l.Processes = DefaultProcesses
	}
	if l.OutputBytes <= 0 {
		l.OutputBytes = DefaultOutputBytes
	}
	return l
}

// Config configures a Sandbox. Zero fields take defaults.
type Config struct {
	// Python is the interpreter, as seen inside the sandbox; empty means
	// /usr/bin/python3.
	Python string
	// Bwrap is bubblewrap; empty means "bwrap" on the PATH.
	Bwrap string
	// Unsafe runs tools without bubblewrap (limits still apply) when it is
	// missing: only with an explicit --unsafe-tools-no-sandbox.
	Unsafe bool
	// Network gives tools the host's network; by default they have none.
	Network bool
	// UIDBase is the first of Concurrency user ids the calls run as when
	// the server runs as root, one per call running, so that the process
	// limit counts that call's processes alone (root is exempt from it)
	// and the call's leftovers can be found by user. 0 means a range of
	// its own for this process: DefaultUIDBase + pid * MaxConcurrency, so
	// that two servers on one machine never share a user id.
	UIDBase uint32
	// Concurrency is how many calls run at once (at most MaxConcurrency);
	// 0 means DefaultConcurrency.
	Concurrency int
	Limits      Limits
}

// DefaultUIDBase is where the user ids of calls under a root server begin.
const DefaultUIDBase = 2_000_000

// MaxConcurrency bounds Config.Concurrency (and so each process's range of
// user ids).
const MaxConcurrency = 256

// ErrNoBubblewrap is New's error when bubblewrap is missing and Unsafe is
// not set.
var ErrNoBubblewrap = errors.New("bubblewrap (bwrap) is not installed, so custom tools cannot run isolated: they will not run; install it (Debian: apt-get install bubblewrap) or start with --unsafe-tools-no-sandbox")

// Sandbox runs Python tool code in separate, isolated processes.
type Sandbox struct {
	cfg    Config
	bwrap  string // "" when running unsandboxed
	refuse bool   // no bubblewrap and not Unsafe: no tool code runs
	uids   chan uint32
}

// New finds bubblewrap and returns a Sandbox. Without bubblewrap (and
// without Unsafe) it returns ErrNoBubblewrap with a Sandbox that derives
// schemas (which runs no tool code) but answers every call with an error.
func New(cfg Config) (*Sandbox, error) {
	if cfg.Python == "" {
		cfg.Python = "/usr/bin/python3"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	cfg.Concurrency = min(cfg.Concurrency, MaxConcurrency)
	if cfg.UIDBase == 0 {
		cfg.UIDBase = DefaultUIDBase + uint32(os.Getpid())*MaxConcurrency
	}
	cfg.Limits = cfg.Limits.withDefaults()
	s := &Sandbox{cfg: cfg, uids: make(chan uint32, cfg.Concurrency)}
	for i := range cfg.Concurrency {
		s.uids <- cfg.UIDBase + uint32(i)
	}
	name := cfg.Bwrap
	if name == "" {
		name = "bwrap"
	}
	path, err := exec.LookPath(name)
	switch {
	case err != nil && cfg.Unsafe:
		return s, nil
	case err != nil:
		s.refuse = true
		return s, ErrNoBubblewrap
	}
	s.bwrap = path
	return s, nil
}

// Isolated reports whether calls run under bubblewrap.
func (s *Sandbox) Isolated() bool { return s.bwrap != "" }

// Run runs one call. It always returns an Outcome: a tool that fails,
// hangs, floods its output or exceeds a limit gets an error result saying
// which, and its processes are gone when Run returns.
func (s *Sandbox) Run(ctx context.Context, job tool.Job) tool.Outcome {
	if s.refuse {
		return tool.Failed("custom tools do not run on this server: bubblewrap is not installed to isolate them")
	}
	args := job.Args
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	l := s.cfg.Limits
	input, err := json.Marshal(map[string]any{
		"source": job.Source, "name": job.Name, "args": args,
		"limits": map[string]any{
			"cpu_seconds": int64((l.CPUTime + time.Second - 1) / time.Second), "memory_bytes": l.MemoryBytes,
			"processes": l.Processes, "file_bytes": l.FileBytes,
		},
	})
	if err != nil {
		return tool.Failed("the arguments of %s could not be encoded: %v", job.Name, err)
	}
	p, err := s.exec(ctx, runScript, input, job.Env, l.WallTime)
	if err != nil {
		return tool.Failed("%s could not be started: %v", job.Name, err)
	}
	out := tool.Outcome{Stdout: p.stdout.String(), Stderr: p.stderr.String()}
	if msg := p.failure(job.Name, l); msg != "" {
		out.Result = "Error: " + msg
		return out
	}
	var res struct {
		OK     bool   `json:"ok"`
		Result string `json:"result"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(p.result.Bytes(), &res); err != nil {
		out.Result = fmt.Sprintf("Error: %s ended without a result (exit status %d)", job.Name, p.exitCode)
		return out
	}
	out.OK = res.OK
	out.Result = res.Result
	if !res.OK {
		out.Result = "Error: " + res.Error
	}
	return out
}

// Derive returns the JSON schema of the function in source, derived as
// Letta derives it, without running the source.
func (s *Sandbox) Derive(ctx context.Context, source string) (map[string]any, error) {
	p, err := s.exec(ctx, deriveScript, []byte(source), nil, deriveWallTime)
	if err != nil {
		return nil, err
	}
	var res struct {
		Schema map[string]any `json:"schema"`
		Error  string         `json:"error"`
	}
	if msg := p.failure("schema derivation", s.cfg.Limits); msg != "" {
		return nil, &tool.DeriveError{Msg: msg}
	}
	if err := json.Unmarshal(p.stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("sandbox: schema derivation answered %q: %w", clip(p.stdout.String()), err)
	}
	if res.Error != "" {
		return nil, &tool.DeriveError{Msg: res.Error}
	}
	return res.Schema, nil
}

// process is a finished call's process.
type process struct {
	stdout, stderr, result *capped
	exitCode               int
	signal                 syscall.Signal
	timedOut, cancelled    bool
	startedAt              time.Time
}

// failure says why the process did not produce a result, or "".
func (p *process) failure(name string, l Limits) string {
	switch {
	case p.stdout.over || p.stderr.over:
		return fmt.Sprintf("%s printed more than %d bytes and was stopped", name, l.OutputBytes)
	case p.result.over:
		return fmt.Sprintf("%s returned more than %d bytes", name, MaxResultBytes)
	case p.timedOut:
		return fmt.Sprintf("%s did not finish within %s and was stopped", name, l.WallTime)
	case p.cancelled:
		return fmt.Sprintf("%s was stopped: the request was cancelled", name)
	case p.signal == syscall.SIGXCPU || p.signal == syscall.SIGKILL && time.Since(p.startedAt) >= l.CPUTime:
		return fmt.Sprintf("%s used more than %s of CPU time and was stopped", name, l.CPUTime)
	case p.signal != 0:
		return fmt.Sprintf("%s crashed (signal %s)", name, p.signal)
	case p.result.Len() == 0 && p.exitCode != 0:
		return fmt.Sprintf("%s exited with status %d without a result", name, p.exitCode)
	}
	return ""
}

// exec runs script with input on stdin, in the sandbox, under the limits,
// for at most wall.
func (s *Sandbox) exec(ctx context.Context, script string, input []byte, env map[string]string, wall time.Duration) (*process, error) {
	var uid uint32
	select {
	case uid = <-s.uids:
		defer func() { s.uids <- uid }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l := s.cfg.Limits
	cmd := s.command(script, env, uid)
	p := &process{stdout: newCapped(l.OutputBytes), stderr: newCapped(l.OutputBytes), result: newCapped(MaxResultBytes)}
	resultR, resultW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer resultR.Close()
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.ExtraFiles = []*os.File{resultW}
	p.startedAt = time.Now()
	if err := cmd.Start(); err != nil {
		resultW.Close()
		return nil, err
	}
	resultW.Close()
	var copied sync.WaitGroup
	copied.Go(func() { io.Copy(p.result, resultR) })

	kill := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		killUser(cmd)
	}
	timer := time.NewTimer(wall)
	defer timer.Stop()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var waitErr error
	cancelled, outFull, errFull, resFull := ctx.Done(), p.stdout.full, p.stderr.full, p.result.full
	for waiting := true; waiting; {
		select {
		case waitErr = <-done:
			waiting = false
		case <-timer.C:
			p.timedOut = true
			kill()
		case <-cancelled:
			p.cancelled, cancelled = true, nil
			kill()
		case <-outFull:
			outFull = nil
			kill()
		case <-errFull:
			errFull = nil
			kill()
		case <-resFull:
			resFull = nil
			kill()
		}
	}
	kill() // whatever it left behind in its group
	copied.Wait()
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			p.exitCode = ws.ExitStatus()
			if ws.Signaled() {
				p.signal = ws.Signal()
			}
		}
	} else if waitErr != nil {
		return nil, waitErr
	}
	if s.bwrap != "" && p.signal == 0 && p.exitCode > 128 {
		p.signal = syscall.Signal(p.exitCode - 128) // bubblewrap passes a child's death by signal on so
	}
	return p, nil
}

// killUser kills every process of the call's own user id, if it has one
// (a root server's calls do): whatever left the process group (a new
// session, a process bubblewrap had not yet tied to its life) is found
// by its user.
func killUser(cmd *exec.Cmd) {
	cred := cmd.SysProcAttr.Credential
	if cred == nil {
		return
	}
	for range maxKillRounds { // a fork bomb may fork while it is killed
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		found := false
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || ownerOf(pid) != int(cred.Uid) {
				continue
			}
			found = true
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if !found {
			return
		}
	}
}

// maxKillRounds bounds killUser's sweeps of /proc.
const maxKillRounds = 20

// ownerOf returns the real user id of live process pid, or -1 (also for
// a zombie: dead already, waiting for a parent that may be the host's
// init to reap it).
func ownerOf(pid int) int {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil || strings.Contains(string(data), "\nState:\tZ") {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if uid, err := strconv.Atoi(f[0]); err == nil {
					return uid
				}
			}
		}
	}
	return -1
}

// command builds the process: python running script, inside bubblewrap
// unless the sandbox is unsafe.
func (s *Sandbox) command(script string, env map[string]string, uid uint32) *exec.Cmd {
	python := []string{s.cfg.Python, "-I", "-c", script}
	var cmd *exec.Cmd
	if s.bwrap == "" {
		cmd = exec.Command(python[0], python[1:]...)
		cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + os.TempDir(), "LANG=C.UTF-8"}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	} else {
		cmd = exec.Command(s.bwrap, append(s.bwrapArgs(env), python...)...)
		cmd.Env = []string{}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uid, Gid: uid}
	}
	return cmd
}

// bwrapArgs isolates a call: its own user, pid, ipc, uts, cgroup and
// (unless Network) network namespaces; the system read-only; a private
// tmpfs /tmp as its home and working directory; nothing else of the host
// (the data directory included) visible; only env in its environment.
func (s *Sandbox) bwrapArgs(env map[string]string) []string {
	args := []string{"--die-with-parent", "--new-session", "--unshare-all"}
	if s.cfg.Network {
		args = append(args, "--share-net", "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf")
	}
	for _, dir := range []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"} {
		if target, err := os.Readlink(dir); err == nil {
			args = append(args, "--symlink", target, dir) // merged /usr: /lib -> usr/lib
		} else {
			args = append(args, "--ro-bind-try", dir, dir)
		}
	}
	for _, f := range []string{"/etc/ld.so.cache", "/etc/localtime", "/etc/ssl", "/etc/ca-certificates", "/etc/alternatives"} {
		args = append(args, "--ro-bind-try", f, f)
	}
	args = append(args,
		"--proc", "/proc", "--dev", "/dev",
		"--size", fmt.Sprint(s.cfg.Limits.TmpBytes), "--tmpfs", "/tmp",
		"--chdir", "/tmp", "--clearenv",
		"--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--setenv", "HOME", "/tmp", "--setenv", "LANG", "C.UTF-8")
	for k, v := range env {
		args = append(args, "--setenv", k, v)
	}
	return append(args, "--")
}

// capped keeps at most max bytes; a write beyond closes full once (the
// caller then kills the process) and is dropped. It is not an
// io.ReaderFrom, so copies go through Write and its cap.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
	full chan struct{}
}

func newCapped(max int) *capped { return &capped{max: max, full: make(chan struct{})} }

func (c *capped) Write(b []byte) (int, error) {
	if c.over {
		return len(b), nil
	}
	if c.buf.Len()+len(b) > c.max {
		c.buf.Write(b[:c.max-c.buf.Len()])
		c.over = true
		close(c.full)
		return len(b), nil
	}
	return c.buf.Write(b)
}

func (c *capped) String() string { return c.buf.String() }
func (c *capped) Bytes() []byte  { return c.buf.Bytes() }
func (c *capped) Len() int       { return c.buf.Len() }

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return strings.TrimSpace(s)
}
