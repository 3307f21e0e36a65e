package faultproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"
)

// KinesisLimits are the per-shard read limits a KinesisProxy enforces on
// GetRecords, shared by every client of the proxy as AWS shares them by
// every consumer of a shard. A zero field is no limit.
type KinesisLimits struct {
	// CallsPerSecond is the most GetRecords calls a shard answers in any
	// one-second window (AWS: 5). Calls over it are answered 400
	// ProvisionedThroughputExceededException without being forwarded.
	CallsPerSecond int
	// BytesPerSecond is the shard's read rate (AWS: 2 MiB/s). A response
	// of B bytes keeps the shard from answering again for
	// B/BytesPerSecond: a 10 MiB response throttles it for 5 s, as AWS
	// does.
	BytesPerSecond int
}

// AWSKinesisLimits are the limits AWS documents for a shard read by
// GetRecords: 5 calls and 2 MiB per second.
func AWSKinesisLimits() KinesisLimits {
	return KinesisLimits{CallsPerSecond: 5, BytesPerSecond: 2 << 20}
}

// GetRecordsCall is one GetRecords call a KinesisProxy saw.
type GetRecordsCall struct {
	At        time.Time // when the request arrived
	Throttled bool      // answered ProvisionedThroughputExceeded, not forwarded
	Records   int       // records in the response
	Bytes     int       // data plus partition key bytes in the response
	// Took is how long Kinesis took to answer (zero when throttled).
	Took time.Duration
}

// KinesisProxy is an HTTP reverse proxy on 127.0.0.1 in front of a real
// Kinesis (the local emulator, which enforces no limits) that enforces
// AWS's per-shard GetRecords limits across all its clients and records
// every GetRecords call by shard. Tests put two independent consumers
// behind one proxy to see that they share a shard's read capacity;
// benchmarks count GetRecords calls per shard-second with it.
//
// Shard iterators are opaque, so the proxy learns which shard each one
// reads: from GetShardIterator (the request names the shard) and from
// every GetRecords response (NextShardIterator reads the same shard).
// GetRecords with an iterator it never saw is forwarded unlimited and
// recorded under the shard "". Other operations pass through. Safe for
// concurrent use.
type KinesisProxy struct {
	ln     net.Listener
	srv    *http.Server
	target *url.URL
	tr     *http.Transport
	served sync.WaitGroup

	mu     sync.Mutex // guards everything below
	limits KinesisLimits
	iters  map[string]iterShard        // iterator -> shard
	shards map[string]*shardLimiter    // shard -> limiter
	calls  map[string][]GetRecordsCall // shard -> calls, in arrival order
	added  int                         // iterators added since the last prune
}

type iterShard struct {
	shard string
	at    time.Time
}

// NewKinesisProxy listens on 127.0.0.1 (a free port) and forwards to
// target, an http URL, enforcing limits. It serves until Close.
func NewKinesisProxy(target string, limits KinesisLimits) (*KinesisProxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not an http URL", target)
	}
	if limits.CallsPerSecond < 0 || limits.BytesPerSecond < 0 {
		return nil, fmt.Errorf("faultproxy: negative Kinesis limits %+v", limits)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	p := &KinesisProxy{ln: ln, target: u, tr: tr, limits: limits,
		iters: map[string]iterShard{}, shards: map[string]*shardLimiter{}, calls: map[string][]GetRecordsCall{}}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	p.served.Go(func() { _ = p.srv.Serve(ln) })
	return p, nil
}

// URL is the proxy's base URL (http://127.0.0.1:port).
func (p *KinesisProxy) URL() string { return "http://" + p.ln.Addr().String() }

// SetLimits changes the limits for the calls from now on.
func (p *KinesisProxy) SetLimits(l KinesisLimits) {
	p.mu.Lock()
	p.limits = l
	p.mu.Unlock()
}

// Calls returns every GetRecords call seen so far, by shard, in arrival
// order.
func (p *KinesisProxy) Calls() map[string][]GetRecordsCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]GetRecordsCall, len(p.calls))
	for s, cs := range p.calls {
		out[s] = append([]GetRecordsCall(nil), cs...)
	}
	return out
}

// Throttled returns how many GetRecords calls were answered
// ProvisionedThroughputExceeded.
func (p *KinesisProxy) Throttled() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, cs := range p.calls {
		for _, c := range cs {
			if c.Throttled {
				n++
			}
		}
	}
	return n
}

// Close stops the proxy and drops its connections.
func (p *KinesisProxy) Close() error {
	err := p.srv.Close()
	p.served.Wait()
	p.tr.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (p *KinesisProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "faultproxy: read request: "+err.Error(), http.StatusBadGateway)
		return
	}
	switch Operation(r) {
	case "GetShardIterator":
		var in struct{ ShardId string }
		_ = json.Unmarshal(body, &in)
		p.forward(w, r, body, func(resp []byte) {
			var out struct{ ShardIterator string }
			if json.Unmarshal(resp, &out) == nil && out.ShardIterator != "" {
				p.learn(out.ShardIterator, in.ShardId)
			}
		})
	case "GetRecords":
		var in struct{ ShardIterator string }
		_ = json.Unmarshal(body, &in)
		shard, at, ok := p.admit(in.ShardIterator)
		if !ok {
			writeFault(w, &Fault{Status: http.StatusBadRequest,
				Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amzn-Errortype": {"ProvisionedThroughputExceededException"}, "X-Amzn-Requestid": {"faultproxy"}},
				Body:   `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded for shard ` + shard + ` (injected by faultproxy)"}`})
			return
		}
		p.forward(w, r, body, func(resp []byte) {
			var out struct {
				NextShardIterator string
				Records           []struct{ Data, PartitionKey string }
			}
			if json.Unmarshal(resp, &out) != nil {
				return
			}
			n := 0
			for _, rec := range out.Records {
				n += base64Len(rec.Data) + len(rec.PartitionKey)
			}
			p.answered(GetRecordsCall{At: at, Records: len(out.Records), Bytes: n, Took: time.Since(at)}, shard, out.NextShardIterator)
		})
	default:
		p.forward(w, r, body, nil)
	}
}

// admit finds the shard an iterator reads and decides whether the shard
// answers a call now (at). A refused call is recorded here; an admitted
// one when its response is back (answered).
func (p *KinesisProxy) admit(iter string) (shard string, at time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	is, known := p.iters[iter]
	if !known {
		return "", now, true
	}
	l := p.shards[is.shard]
	if l == nil {
		l = &shardLimiter{}
		p.shards[is.shard] = l
	}
	if l.allow(now, p.limits) {
		return is.shard, now, true
	}
	p.calls[is.shard] = append(p.calls[is.shard], GetRecordsCall{At: now, Throttled: true})
	return is.shard, now, false
}

// answered records an answered GetRecords call and charges its bytes.
func (p *KinesisProxy) answered(c GetRecordsCall, shard, next string) {
	p.mu.Lock()
	p.calls[shard] = append(p.calls[shard], c)
	if l := p.shards[shard]; l != nil {
		l.charge(c.At, c.Bytes, p.limits)
	}
	p.mu.Unlock()
	if next != "" && shard != "" {
		p.learn(next, shard)
	}
}

// learn records that iter reads shard. Iterators expire after 5 minutes,
// so older ones are pruned now and then.
func (p *KinesisProxy) learn(iter, shard string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.iters[iter] = iterShard{shard: shard, at: now}
	p.added++
	if p.added < 4096 {
		return
	}
	p.added = 0
	for k, v := range p.iters {
		if now.Sub(v.at) > 6*time.Minute {
			delete(p.iters, k)
		}
	}
}

// forward sends the request with body to the target and writes the
// answer back; seen, when set, gets a 200 response's body.
func (p *KinesisProxy) forward(w http.ResponseWriter, r *http.Request, body []byte, seen func([]byte)) {
	u := *p.target
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	out.Header.Del("Accept-Encoding") // let the transport decompress; the client gets plain bytes
	out.ContentLength = int64(len(body))
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, "faultproxy: read response: "+err.Error(), http.StatusBadGateway)
		return
	}
	if seen != nil && resp.StatusCode == http.StatusOK {
		seen(raw)
	}
	for k, vs := range resp.Header {
		if k == "Content-Length" || k == "Content-Encoding" {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(raw)
}

func writeFault(w http.ResponseWriter, f *Fault) {
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Body)))
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
}

// base64Len is the decoded length of standard base64 s.
func base64Len(s string) int {
	n := len(s) / 4 * 3
	for i := len(s) - 1; i >= 0 && i >= len(s)-2 && s[i] == '='; i-- {
		n--
	}
	return n
}

// shardLimiter is one shard's read capacity: the times of its last
// admitted calls, and until when the bytes it served keep it busy.
type shardLimiter struct {
	recent    []time.Time // admitted calls within the last second, oldest first
	busyUntil time.Time
}

// allow admits a call at now, or refuses it: the shard answered
// CallsPerSecond calls in the second before now, or is still paying for
// the bytes it served.
func (l *shardLimiter) allow(now time.Time, lim KinesisLimits) bool {
	if lim.BytesPerSecond > 0 && now.Before(l.busyUntil) {
		return false
	}
	i := sort.Search(len(l.recent), func(i int) bool { return now.Sub(l.recent[i]) < time.Second })
	l.recent = l.recent[i:]
	if lim.CallsPerSecond > 0 && len(l.recent) >= lim.CallsPerSecond {
		return false
	}
	l.recent = append(l.recent, now)
	return true
}

// charge makes the shard busy for the time its read rate needs to serve
// n bytes, counted from the call that read them.
func (l *shardLimiter) charge(at time.Time, n int, lim KinesisLimits) {
	if lim.BytesPerSecond <= 0 || n == 0 {
		return
	}
	from := at
	if l.busyUntil.After(from) {
		from = l.busyUntil
	}
	l.busyUntil = from.Add(time.Duration(float64(n) / float64(lim.BytesPerSecond) * float64(time.Second)))
}
