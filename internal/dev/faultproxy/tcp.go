package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
)

// TCP is a TCP proxy in front of one server that a test can take down
// and bring back, for processes it cannot give a Transport (the binary
// under test points its endpoint at Addr). Down, it closes every
// connection it carries and accepts new ones only to close them before
// reading a byte, so nothing sent while it is down reaches the server:
// the client sees a reset or EOF, as when the server is unreachable. Its
// methods are safe for concurrent use.
type TCP struct {
	ln     net.Listener
	target string

	mu    sync.Mutex // guards down and conns
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewTCP listens on 127.0.0.1 (a free port) and forwards to target
// (host:port). Close stops it.
func NewTCP(target string) (*TCP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCP{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *TCP) Addr() string { return p.ln.Addr().String() }

// SetDown takes the server away (true) or brings it back (false).
// Taking it down closes the connections open now.
func (p *TCP) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *TCP) Close() error {
	err := p.ln.Close()
	p.SetDown(true)
	p.wg.Wait()
	return err
}

func (p *TCP) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // a reset, as from a host that refuses
			}
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve pipes c to a new connection to the target until either side
// closes.
func (p *TCP) serve(c net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			dst.Close()
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	<-done
}
