package main

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/kelpie/kelpie/clock"
)

// Limits of client connections.
const (
	headerReadTimeout  = 10 * time.Second // a request's headers must arrive within this
	requestReadTimeout = 60 * time.Second // and its whole body within this
	idleConnTimeout    = 30 * time.Second // a keep-alive connection idle this long is closed
	maxConnections     = 100_000          // whatever the file descriptor limit allows
	// Of the process's file descriptors, these are kept from client
	// connections: storage gets a quarter (within its bounds), and the
	// rest of the process (logs, the listener, connections to model
	// providers) otherFDs.
	minStorageFDs = 64
	maxStorageFDs = 1000
	otherFDs      = 64
)

// fdBudget splits the process's file descriptor limit (Go raises the soft
// limit to the hard one at start) between client connections and storage.
func fdBudget() (conns, storage int) {
	limit := 1 << 20
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < uint64(limit) {
		limit = int(rl.Cur)
	}
	storage = min(max(limit/4, minStorageFDs), maxStorageFDs)
	conns = min(max(limit-storage-otherFDs, 1), maxConnections)
	return conns, storage
}

// connLimiter keeps the server's connections under a cap. At the cap, a new
// connection closes the one idle longest to make room; if none is idle, the
// new one is answered 503 and closed. Idle connections never starve new
// clients, and the process never runs out of file descriptors for storage.
type connLimiter struct {
	max int
	log *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]*connInfo
}

type connInfo struct {
	state     http.ConnState
	idleSince time.Time
}

func newConnLimiter(max int, log *slog.Logger) *connLimiter {
	return &connLimiter{max: max, log: log, conns: map[net.Conn]*connInfo{}}
}

// track is the server's ConnState hook.
func (l *connLimiter) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
		return
	}
	info := l.conns[c]
	if info == nil {
		info = &connInfo{}
		l.conns[c] = info
	}
	info.state = state
	if state == http.StateIdle {
		info.idleSince = clock.Real{}.Now()
	}
}

// busy counts the connections serving a request.
func (l *connLimiter) busy() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, info := range l.conns {
		if info.state == http.StateActive {
			n++
		}
	}
	return n
}

// admit decides about a new connection: it makes room if the cap is
// reached, and reports whether the connection may be served.
func (l *connLimiter) admit() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) < l.max {
		return true
	}
	var oldest net.Conn
	var since time.Time
	for c, info := range l.conns {
		if info.state == http.StateIdle && (oldest == nil || info.idleSince.Before(since)) {
			oldest, since = c, info.idleSince
		}
	}
	if oldest == nil {
		return false
	}
	oldest.Close()
	delete(l.conns, oldest) // the server's StateClosed follows
	return true
}

// overloaded is the whole answer to a connection beyond the cap.
const overloaded = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 57\r\n\r\n{\"detail\":\"Server has too many connections, retry later\"}"

// listener wraps ln so that every accepted connection is admitted first.
func (l *connLimiter) listener(ln net.Listener) net.Listener { return &limitedListener{ln, l} }

type limitedListener struct {
	net.Listener
	l *connLimiter
}

func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil || ll.l.admit() {
			return c, err
		}
		ll.l.log.Warn("connection refused: at the connection cap with none idle", "cap", ll.l.max, "remote", c.RemoteAddr().String())
		c.SetWriteDeadline(clock.Real{}.Now().Add(time.Second))
		c.Write([]byte(overloaded))
		c.Close()
	}
}
