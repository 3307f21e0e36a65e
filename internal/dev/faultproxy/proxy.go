package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is an HTTP reverse proxy on 127.0.0.1 in front of one service —
// OpenSearch, S3, DynamoDB — for tests that put it between worker
// processes and the real service and change what it answers while they
// run: the service throttles, fails, or is down. Each request goes to the
// current Rule; it is forwarded unless the rule returns a Fault. Safe for
// concurrent use.
type Proxy struct {
	ln     net.Listener
	srv    *http.Server
	rp     *httputil.ReverseProxy
	rule   atomic.Pointer[Rule]
	served sync.WaitGroup

	forwarded, faulted atomic.Int64
}

// Fault is an answer the proxy gives instead of forwarding a request.
type Fault struct {
	// Status, Header and Body make the answer.
	Status int
	Header http.Header
	Body   string
	// Drop closes the connection without an answer, as a service that
	// went down does (the client sees a reset or EOF).
	Drop bool
}

// Rule picks the fault for a request, or nil to forward it. It must not
// read the body and must be safe for concurrent use.
type Rule func(r *http.Request) *Fault

// NewProxy listens on 127.0.0.1 (a free port) and forwards to target, an
// http URL. It serves until Close.
func NewProxy(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not an http URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = 2 * time.Minute
	p := &Proxy{ln: ln, rp: httputil.NewSingleHostReverseProxy(u)}
	p.rp.Transport = tr
	p.rp.ErrorLog = nil
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	p.served.Go(func() { _ = p.srv.Serve(ln) })
	return p, nil
}

// URL is the proxy's base URL (http://127.0.0.1:port).
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetRule makes r the rule for the requests from now on; nil forwards
// everything.
func (p *Proxy) SetRule(r Rule) {
	if r == nil {
		p.rule.Store(nil)
		return
	}
	p.rule.Store(&r)
}

// Stats returns how many requests were forwarded and how many got a
// fault.
func (p *Proxy) Stats() (forwarded, faulted int64) { return p.forwarded.Load(), p.faulted.Load() }

// Close stops the proxy and drops its connections.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	p.served.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	var f *Fault
	if rp := p.rule.Load(); rp != nil {
		f = (*rp)(r)
	}
	if f == nil {
		p.forwarded.Add(1)
		p.rp.ServeHTTP(w, r)
		return
	}
	p.faulted.Add(1)
	if f.Drop {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return
		}
		http.Error(w, "faultproxy: drop", http.StatusBadGateway)
		return
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Body)))
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
}

// Down is the fault of a service that is not there: the connection closes
// without an answer.
func Down() *Fault { return &Fault{Drop: true} }

// OpenSearchRejected is OpenSearch's answer when its write queue is full:
// a whole-request 429 es_rejected_execution_exception.
func OpenSearchRejected() *Fault {
	return &Fault{Status: http.StatusTooManyRequests, Header: http.Header{"Content-Type": {"application/json"}},
		Body: `{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution (injected by faultproxy)"}],"type":"es_rejected_execution_exception","reason":"rejected execution (injected by faultproxy)"},"status":429}`}
}

// S3SlowDown is S3's 503 SlowDown.
func S3SlowDown() *Fault {
	return &Fault{Status: http.StatusServiceUnavailable, Header: http.Header{"Content-Type": {"application/xml"}},
		Body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate (injected by faultproxy).</Message><RequestId>faultproxy</RequestId></Error>`}
}

// DynamoDBThrottled is DynamoDB's 400 ProvisionedThroughputExceededException.
func DynamoDBThrottled() *Fault {
	return &Fault{Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"faultproxy"}},
		Body: `{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded (injected by faultproxy)"}`}
}

// DynamoDBAccessDenied is DynamoDB's 400 AccessDeniedException: the
// caller's policy does not allow the operation.
func DynamoDBAccessDenied() *Fault {
	return &Fault{Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Requestid": {"faultproxy"}},
		Body: `{"__type":"com.amazon.coral.service#AccessDeniedException","message":"User is not authorized to perform: dynamodb:BatchWriteItem (injected by faultproxy)"}`}
}

// S3AccessDenied is S3's 403 AccessDenied.
func S3AccessDenied() *Fault {
	return &Fault{Status: http.StatusForbidden, Header: http.Header{"Content-Type": {"application/xml"}},
		Body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied (injected by faultproxy)</Message><RequestId>faultproxy</RequestId></Error>`}
}

// Operation is the AWS JSON-protocol operation of r (its X-Amz-Target
// after the dot: "BatchWriteItem", "PutRecords"), or "".
func Operation(r *http.Request) string {
	t := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		return t[i+1:]
	}
	return ""
}
