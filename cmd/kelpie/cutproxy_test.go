package main

import (
	"io"
	"net"
	"sync"
	"testing"
)

// cutProxy is a loopback TCP proxy to a server that the test can cut off:
// a cut connection goes silent (nothing passes, nothing is closed), as a
// network partition leaves it, and connections made while cut are held
// silent too. Refuse instead closes every connection at once, as a host
// that is down does. Heal closes the silent ones and forwards new ones
// again.
type cutProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cut    bool
	refuse bool                  // with cut: close connections instead of holding them
	conns  map[net.Conn]net.Conn // client side -> server side (nil: silent)
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]net.Conn{}}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// Addr is where to connect instead of the target.
func (p *cutProxy) Addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		switch {
		case cut && p.refuse:
			c.Close()
		case cut:
			p.conns[c] = nil
		}
		p.mu.Unlock()
		if !cut {
			go p.forward(c)
		}
	}
}

func (p *cutProxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		up.Close()
		up = nil
	}
	p.conns[c] = up
	p.mu.Unlock()
	if up == nil {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	// One side ended. If the proxy was cut, the client side stays open
	// and silent; otherwise the connection ends on both sides.
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut {
		c.Close()
		up.Close()
		delete(p.conns, c)
	}
}

// Cut silences every connection and every new one.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c, up := range p.conns {
		if up != nil {
			up.Close()
			p.conns[c] = nil
		}
	}
}

// Refuse closes every connection, and every new one at once.
func (p *cutProxy) Refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.refuse = true, true
	for c, up := range p.conns {
		c.Close()
		if up != nil {
			up.Close()
		}
		delete(p.conns, c)
	}
}

// Heal closes the silent connections and forwards new ones again.
func (p *cutProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.refuse = false, false
	for c, up := range p.conns {
		if up == nil {
			c.Close()
			delete(p.conns, c)
		}
	}
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, up := range p.conns {
		c.Close()
		if up != nil {
			up.Close()
		}
	}
}
