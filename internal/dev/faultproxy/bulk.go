package faultproxy

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// BulkProxy listens on 127.0.0.1 in front of a real OpenSearch or
// Elasticsearch and throttles bulk items the way a busy cluster does. In a
// _bulk request it answers the items Reject picks with a synthesised 429
// (es_rejected_execution_exception) and forwards only the others — a
// rejected item is really not indexed — merging the answers in request
// order. Every other request, and the headers of every answer
// (X-Elastic-Product, which the Elasticsearch client checks), pass
// through. The client speaks plain HTTP to the proxy; the proxy speaks to
// the cluster with the given TLS configuration and passes the client's
// Authorization header on. Safe for concurrent use.
type BulkProxy struct {
	target  *url.URL
	rp      *httputil.ReverseProxy
	forward *http.Client
	addr    string

	mu       sync.Mutex
	srv      *http.Server       // nil once closed
	reject   func(seq int) bool // seq numbers bulk items as the proxy sees them, from 0
	seq      int
	rejected int
	passed   int
	wg       sync.WaitGroup // Serve goroutines and outage timers

	relistenErr error // an outage that could not end
}

// NewBulkProxy starts a proxy for target (e.g. https://127.0.0.1:9250)
// on 127.0.0.1:0. tlsCfg is used for an https target (nil: the system
// roots). Close stops it.
func NewBulkProxy(target string, tlsCfg *tls.Config) (*BulkProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	p := &BulkProxy{target: u, forward: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.Transport = tr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	return p, nil
}

func (p *BulkProxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	p.wg.Go(func() { _ = srv.Serve(ln) })
}

// Outage refuses connections for d, starting now, and returns at once: it
// closes the listener and every connection, in flight or idle, and
// listens again on the same address after d (a refused connection, not a
// slow one). An error is returned when the proxy is closed, or later by
// Close when it could not listen again.
func (p *BulkProxy) Outage(d time.Duration) error {
	p.mu.Lock()
	srv := p.srv
	p.mu.Unlock()
	if srv == nil {
		return errors.New("faultproxy: outage of a closed proxy")
	}
	if err := srv.Close(); err != nil {
		return err
	}
	p.wg.Go(func() {
		time.Sleep(d)
		var err error
		for range 50 {
			p.mu.Lock()
			closed := p.srv != srv
			p.mu.Unlock()
			if closed {
				return
			}
			var ln net.Listener
			if ln, err = net.Listen("tcp", p.addr); err == nil {
				p.serve(ln)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.mu.Lock()
		p.relistenErr = fmt.Errorf("faultproxy: listen again on %s after an outage: %w", p.addr, err)
		p.mu.Unlock()
	})
	return nil
}

// URL is the proxy's address, http://127.0.0.1:PORT.
func (p *BulkProxy) URL() string { return "http://" + p.addr }

// Close stops the proxy and closes its connections; it reports an outage
// that could not end.
func (p *BulkProxy) Close() error {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	var err error
	if srv != nil {
		if err = srv.Close(); errors.Is(err, net.ErrClosed) {
			err = nil // closed by an outage already
		}
	}
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(err, p.relistenErr)
}

// SetReject sets which bulk items are answered 429: those whose sequence
// number (counting every bulk item the proxy has seen, from 0) f picks.
func (p *BulkProxy) SetReject(f func(seq int) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reject = f
}

// Counts returns the bulk items rejected and passed so far.
func (p *BulkProxy) Counts() (rejected, passed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rejected, p.passed
}

func (p *BulkProxy) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/_bulk") {
		p.rp.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	if len(lines)%2 != 0 {
		http.Error(w, "fault proxy: odd number of bulk lines (only index actions expected)", http.StatusBadRequest)
		return
	}
	n := len(lines) / 2
	rejected := make([]bool, n)
	var kept bytes.Buffer
	p.mu.Lock()
	for i := range n {
		if p.reject != nil && p.reject(p.seq) {
			rejected[i] = true
			p.rejected++
		} else {
			kept.Write(lines[2*i])
			kept.WriteByte('\n')
			kept.Write(lines[2*i+1])
			kept.WriteByte('\n')
			p.passed++
		}
		p.seq++
	}
	p.mu.Unlock()

	var upstream struct {
		Errors bool              `json:"errors"`
		Items  []json.RawMessage `json:"items"`
	}
	header := http.Header{"X-Elastic-Product": {"Elasticsearch"}} // for an answer made up entirely here
	if kept.Len() > 0 {
		u := *p.target
		u.Path = r.URL.Path
		u.RawQuery = r.URL.RawQuery
		req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, u.String(), &kept)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		if a := r.Header.Get("Authorization"); a != "" {
			req.Header.Set("Authorization", a)
		}
		resp, err := p.forward.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		header = resp.Header
		if resp.StatusCode != http.StatusOK {
			copyHeader(w.Header(), resp.Header)
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(b)
			return
		}
		if err := json.Unmarshal(b, &upstream); err != nil {
			http.Error(w, "fault proxy: upstream answer: "+err.Error(), http.StatusBadGateway)
			return
		}
	}
	items := make([]json.RawMessage, 0, n)
	next, anyRejected := 0, false
	for i := range n {
		if !rejected[i] {
			if next >= len(upstream.Items) {
				http.Error(w, "fault proxy: upstream returned too few items", http.StatusBadGateway)
				return
			}
			items = append(items, upstream.Items[next])
			next++
			continue
		}
		anyRejected = true
		var act struct {
			Index struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"index"`
		}
		_ = json.Unmarshal(lines[2*i], &act)
		synth, _ := json.Marshal(map[string]any{"index": map[string]any{
			"_index": act.Index.Index, "_id": act.Index.ID, "status": 429,
			"error": map[string]any{"type": "es_rejected_execution_exception", "reason": "rejected by the test fault proxy"},
		}})
		items = append(items, synth)
	}
	copyHeader(w.Header(), header)
	w.Header().Del("Content-Length")
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"took": 0, "errors": upstream.Errors || anyRejected, "items": items})
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		for _, v := range vs {
			dst.Add(k, v)
		}
	}
}
