package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DynamoFaults is what a DynamoProxy does to the requests it receives.
// The zero value passes everything through.
type DynamoFaults struct {
	// Latency is added before each request is forwarded.
	Latency time.Duration
	// BlackHole accepts requests and never answers them: the client's own
	// timeout (or the proxy's Close) ends each one. Nothing is forwarded.
	BlackHole bool
	// ServerErrorRate answers this fraction of requests 500
	// InternalServerError without forwarding them.
	ServerErrorRate float64
	// ThrottleRate answers this fraction of requests 400
	// ProvisionedThroughputExceededException (DynamoDB's throttling)
	// without forwarding them.
	ThrottleRate float64
	// Operations limits the faults to these operations ("UpdateItem",
	// "Scan", ...); empty means every operation.
	Operations []string
}

// DynamoStats counts what a DynamoProxy saw and did.
type DynamoStats struct {
	// Calls counts requests by operation (forwarded or not).
	Calls map[string]int64
	// Forwarded counts requests sent to DynamoDB.
	Forwarded int64
	// Injected counts requests answered with an injected error, and
	// BlackHoled those never answered.
	Injected, BlackHoled int64
	// ReadUnits and WriteUnits sum the ConsumedCapacity DynamoDB returned
	// (clients must ask for it: ReturnConsumedCapacity TOTAL); a failed
	// conditional write counts one write unit, as DynamoDB bills it.
	ReadUnits, WriteUnits float64
	// Labels splits the forwarded calls and their units by the label the
	// proxy's Label function gave each request.
	Labels map[string]LabelStats
}

// LabelStats counts the forwarded calls with one label.
type LabelStats struct {
	Calls                 int64
	ReadUnits, WriteUnits float64
}

// DynamoProxy is an HTTP proxy in front of DynamoDB (or the local
// emulator) that injects faults into one client's requests: latency, a
// black hole, 5xx and throttling answers. Start one per worker to fault
// that worker alone. It also counts calls and capacity units by
// operation, for cost measurements. Safe for concurrent use; faults can
// change while it runs.
type DynamoProxy struct {
	srv  *http.Server
	ln   net.Listener
	rp   *httputil.ReverseProxy
	stop chan struct{} // closed by Close: ends black-holed requests

	mu     sync.Mutex
	faults DynamoFaults
	rng    *rand.Rand
	stats  DynamoStats
	label  func(op string, body []byte) string
}

type labelKey struct{}

// SetLabel makes the proxy classify every forwarded request with f (given
// the operation and the request body) and count calls and units per
// label in Stats.Labels.
func (p *DynamoProxy) SetLabel(f func(op string, body []byte) string) {
	p.mu.Lock()
	p.label = f
	p.mu.Unlock()
}

// StartDynamoProxy listens on 127.0.0.1 (a free port) and forwards to
// target, e.g. "http://127.0.0.1:8000".
func StartDynamoProxy(target string) (*DynamoProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: DynamoDB endpoint %q is not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	p := &DynamoProxy{ln: ln, stop: make(chan struct{}), rng: rand.New(rand.NewPCG(1, 2)), stats: newStats()}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	p.rp.ModifyResponse = p.count
	p.rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URL is the endpoint to give the client (AWS_ENDPOINT_URL_DYNAMODB).
func (p *DynamoProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Set replaces the faults.
func (p *DynamoProxy) Set(f DynamoFaults) {
	p.mu.Lock()
	p.faults = f
	p.mu.Unlock()
}

// Stats returns a copy of the counters.
func (p *DynamoProxy) Stats() DynamoStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Calls = make(map[string]int64, len(p.stats.Calls))
	for k, v := range p.stats.Calls {
		s.Calls[k] = v
	}
	s.Labels = make(map[string]LabelStats, len(p.stats.Labels))
	for k, v := range p.stats.Labels {
		s.Labels[k] = v
	}
	return s
}

func newStats() DynamoStats {
	return DynamoStats{Calls: map[string]int64{}, Labels: map[string]LabelStats{}}
}

// ResetStats zeroes the counters and returns what they were.
func (p *DynamoProxy) ResetStats() DynamoStats {
	s := p.Stats()
	p.mu.Lock()
	p.stats = newStats()
	p.mu.Unlock()
	return s
}

// Close stops the proxy and ends black-holed requests.
func (p *DynamoProxy) Close() error {
	close(p.stop)
	return p.srv.Close()
}

type fate int

const (
	passThrough fate = iota
	blackHoled
	answer500
	answerThrottled
)

// ServeHTTP applies the faults to one request.
func (p *DynamoProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	p.mu.Lock()
	f := p.faults
	p.stats.Calls[op]++
	applies := len(f.Operations) == 0
	for _, o := range f.Operations {
		applies = applies || o == op
	}
	what := passThrough
	if applies {
		x := p.rng.Float64()
		switch {
		case f.BlackHole:
			what = blackHoled
		case x < f.ServerErrorRate:
			what = answer500
		case x < f.ServerErrorRate+f.ThrottleRate:
			what = answerThrottled
		}
	}
	switch what {
	case blackHoled:
		p.stats.BlackHoled++
	case answer500, answerThrottled:
		p.stats.Injected++
	}
	p.mu.Unlock()
	if applies && f.Latency > 0 {
		select {
		case <-time.After(f.Latency):
		case <-r.Context().Done():
			return
		case <-p.stop:
			return
		}
	}
	switch what {
	case blackHoled:
		select {
		case <-r.Context().Done():
		case <-p.stop:
		}
		return
	case answer500:
		dynamoError(w, http.StatusInternalServerError, "com.amazonaws.dynamodb.v20120810#InternalServerError", "injected by faultproxy")
		return
	case answerThrottled:
		dynamoError(w, http.StatusBadRequest, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "Rate exceeded (injected by faultproxy)")
		return
	}
	p.mu.Lock()
	p.stats.Forwarded++
	label := p.label
	p.mu.Unlock()
	if label != nil {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r = r.WithContext(context.WithValue(r.Context(), labelKey{}, label(op, body)))
	}
	p.rp.ServeHTTP(w, r)
}

func dynamoError(w http.ResponseWriter, status int, typ, msg string) {
	body, _ := json.Marshal(map[string]string{"__type": typ, "message": msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-Requestid", "faultproxy")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// count adds the capacity a response reports. Bodies are small JSON
// documents; they are read and put back.
func (p *DynamoProxy) count(resp *http.Response) error {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	op := resp.Request.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	var units float64
	if resp.StatusCode == http.StatusOK {
		var out struct{ ConsumedCapacity json.RawMessage }
		if json.Unmarshal(body, &out) == nil && len(out.ConsumedCapacity) > 0 {
			var one struct{ CapacityUnits float64 }
			var many []struct{ CapacityUnits float64 }
			if json.Unmarshal(out.ConsumedCapacity, &one) == nil {
				units = one.CapacityUnits
			} else if json.Unmarshal(out.ConsumedCapacity, &many) == nil {
				for _, c := range many {
					units += c.CapacityUnits
				}
			}
		}
	} else if bytes.Contains(body, []byte("ConditionalCheckFailed")) {
		units = 1
	}
	lbl, labelled := resp.Request.Context().Value(labelKey{}).(string)
	p.mu.Lock()
	ls := p.stats.Labels[lbl]
	ls.Calls++
	if isWriteOp(op) {
		p.stats.WriteUnits += units
		ls.WriteUnits += units
	} else {
		p.stats.ReadUnits += units
		ls.ReadUnits += units
	}
	if labelled {
		p.stats.Labels[lbl] = ls
	}
	p.mu.Unlock()
	return nil
}

func isWriteOp(op string) bool {
	switch op {
	case "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems":
		return true
	}
	return false
}
