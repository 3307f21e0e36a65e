// Package bench measures the lease protocol on the local stack with real
// worker processes: failover after SIGKILL, handoff after SIGTERM,
// scale-out convergence, and DynamoDB calls at rest, counted at a proxy in
// front of DynamoDB. It prints figures; it never passes or fails on them.
package bench

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// ddbProxy forwards DynamoDB requests and counts them by operation (the
// X-Amz-Target header), so the workers' cost is measured where it is
// billed: at the API.
type ddbProxy struct {
	srv *http.Server
	ln  net.Listener

	mu     sync.Mutex
	counts map[string]int64 // guarded by mu
}

func startDDBProxy(target string) (*ddbProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &ddbProxy{ln: ln, counts: map[string]int64{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		if i := strings.LastIndexByte(op, '.'); i >= 0 {
			op = op[i+1:]
		}
		p.mu.Lock()
		p.counts[op]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *ddbProxy) URL() string { return "http://" + p.ln.Addr().String() }

// snapshot returns the counts and resets them.
func (p *ddbProxy) snapshot() map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.counts
	p.counts = map[string]int64{}
	return out
}

func (p *ddbProxy) Close() error { return p.srv.Close() }

// isWrite reports DynamoDB operations billed as writes.
func isWrite(op string) bool {
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems":
		return true
	}
	return false
}
