// Package faultproxy injects AWS failures for tests and benchmarks.
//
// DynamoProxy (dynamo.go) is an HTTP proxy in front of DynamoDB that adds
// latency, black-holes requests or answers 5xx and throttling, per client,
// and counts calls and capacity units.
//
// Transport injects Kinesis failures into an HTTP client: an
// http.RoundTripper that wraps the real transport and, for PutRecords
// calls, fails some entries of the call or the whole call, the way
// Kinesis does under load. Other operations pass through untouched.
//
// It never loses a write silently. An entry it fails is not sent to
// Kinesis at all: the call is forwarded with only the entries let through,
// and the response is rebuilt in the original order with synthesised
// failures for the others. Whole-call faults (throttling, 500, connection
// reset) are answered without forwarding anything. Only ResetAfterRate
// breaks this rule on purpose: it forwards the call and then reports a
// reset, so the records are written but the client cannot know; use it to
// test at-least-once handling, not exactly-once.
//
// Rewriting a request body invalidates its SigV4 signature, so the
// transport suits emulators that do not verify signatures (kinesis-local
// does not), not AWS.
//
// Proxy is the other half: a reverse proxy listening on 127.0.0.1 that
// tests put between worker processes and a real service (OpenSearch, S3,
// DynamoDB) to make it throttle, fail or go down while records flow.
package faultproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
)

// putRecordsTarget is the X-Amz-Target of PutRecords (JSON 1.1 protocol).
const putRecordsTarget = "Kinesis_20131202.PutRecords"

// Config sets the fault rates, each a probability in [0, 1] applied
// independently per PutRecords call or entry.
type Config struct {
	// Seed makes the choices reproducible for a given sequence of calls.
	// Default 0 is a valid seed.
	Seed uint64
	// ThrottleRate answers a call with 400 ProvisionedThroughputExceededException.
	ThrottleRate float64
	// ServerErrorRate answers a call with 500 InternalFailure.
	ServerErrorRate float64
	// ResetRate fails a call with a connection reset before sending it.
	ResetRate float64
	// ResetAfterRate sends a call, then reports a connection reset: the
	// records are written but the client sees an error. Causes duplicates.
	ResetAfterRate float64
	// EntryFailRate fails each entry of a call that got through.
	EntryFailRate float64
	// EntryCodes are the error codes of failed entries, picked at random.
	// Default ProvisionedThroughputExceededException and InternalFailure.
	EntryCodes []string
}

// Validate reports a rate outside [0, 1] or whole-call rates adding up to
// more than 1.
func (c Config) Validate() error {
	rates := map[string]float64{
		"ThrottleRate": c.ThrottleRate, "ServerErrorRate": c.ServerErrorRate, "ResetRate": c.ResetRate,
		"ResetAfterRate": c.ResetAfterRate, "EntryFailRate": c.EntryFailRate,
	}
	for name, r := range rates {
		if r < 0 || r > 1 {
			return fmt.Errorf("faultproxy: %s %v not in [0, 1]", name, r)
		}
	}
	if s := c.ThrottleRate + c.ServerErrorRate + c.ResetRate + c.ResetAfterRate; s > 1 {
		return fmt.Errorf("faultproxy: whole-call rates add up to %v > 1", s)
	}
	return nil
}

// Stats counts what the transport did.
type Stats struct {
	Calls            int // PutRecords calls seen
	Throttled        int // calls answered 400 throttling
	ServerErrors     int // calls answered 500
	Resets           int // calls failed with a reset before sending
	ResetsAfter      int // calls sent, then reported as reset
	EntriesFailed    int // entries failed without being sent
	EntriesForwarded int // entries sent to Kinesis
}

// Transport is the fault-injecting http.RoundTripper. Safe for concurrent
// use.
type Transport struct {
	next  http.RoundTripper
	cfg   Config
	codes []string

	mu    sync.Mutex // guards rng and stats
	rng   *rand.Rand
	stats Stats
}

// New wraps next (http.DefaultTransport when nil). The error reports an
// invalid cfg.
func New(next http.RoundTripper, cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if next == nil {
		next = http.DefaultTransport
	}
	codes := cfg.EntryCodes
	if len(codes) == 0 {
		codes = []string{"ProvisionedThroughputExceededException", "InternalFailure"}
	}
	return &Transport{next: next, cfg: cfg, codes: codes, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6b696e65))}, nil
}

// Stats returns a snapshot of the counters.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

type fault int

const (
	none fault = iota
	throttle
	serverError
	reset
	resetAfter
)

// decide draws the whole-call fault and the failed entries of a call.
func (t *Transport) decide(entries int) (fault, map[int]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats.Calls++
	f := none
	r := t.rng.Float64()
	switch c := t.cfg; {
	case r < c.ThrottleRate:
		f = throttle
		t.stats.Throttled++
	case r < c.ThrottleRate+c.ServerErrorRate:
		f = serverError
		t.stats.ServerErrors++
	case r < c.ThrottleRate+c.ServerErrorRate+c.ResetRate:
		f = reset
		t.stats.Resets++
	case r < c.ThrottleRate+c.ServerErrorRate+c.ResetRate+c.ResetAfterRate:
		f = resetAfter
		t.stats.ResetsAfter++
	}
	if f != none && f != resetAfter {
		return f, nil
	}
	failed := map[int]string{}
	for i := range entries {
		if t.rng.Float64() < t.cfg.EntryFailRate {
			failed[i] = t.codes[t.rng.IntN(len(t.codes))]
		}
	}
	t.stats.EntriesFailed += len(failed)
	t.stats.EntriesForwarded += entries - len(failed)
	return f, failed
}

// RoundTrip forwards req, injecting faults into PutRecords calls.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != putRecordsTarget || req.Body == nil {
		return t.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("faultproxy: read request: %w", err)
	}
	var in map[string]json.RawMessage
	var records []json.RawMessage
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("faultproxy: decode PutRecords request: %w", err)
	}
	if err := json.Unmarshal(in["Records"], &records); err != nil {
		return nil, fmt.Errorf("faultproxy: decode PutRecords records: %w", err)
	}

	f, failed := t.decide(len(records))
	switch f {
	case throttle:
		return errorResponse(req, http.StatusBadRequest, "ProvisionedThroughputExceededException", "Rate exceeded (injected by faultproxy)"), nil
	case serverError:
		return errorResponse(req, http.StatusInternalServerError, "InternalFailure", "injected by faultproxy"), nil
	case reset:
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	case resetAfter:
		if len(failed) == len(records) { // nothing to send: a plain reset
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
	}

	var upstream []json.RawMessage
	extra := map[string]json.RawMessage{}
	upstreamFailed := 0
	if len(failed) < len(records) {
		pass := make([]json.RawMessage, 0, len(records)-len(failed))
		for i, r := range records {
			if _, ok := failed[i]; !ok {
				pass = append(pass, r)
			}
		}
		send := body
		if len(failed) > 0 {
			in["Records"], _ = json.Marshal(pass)
			send, _ = json.Marshal(in)
		}
		resp, err := t.forward(req, send)
		if err != nil {
			return nil, err
		}
		if f == resetAfter {
			resp.Body.Close()
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
		}
		if resp.StatusCode != http.StatusOK || len(failed) == 0 {
			return resp, nil // a real error, or nothing to merge
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("faultproxy: read response: %w", err)
		}
		if err := json.Unmarshal(raw, &extra); err != nil {
			return nil, fmt.Errorf("faultproxy: decode PutRecords response: %w", err)
		}
		if err := json.Unmarshal(extra["Records"], &upstream); err != nil || len(upstream) != len(pass) {
			return nil, fmt.Errorf("faultproxy: PutRecords response has %d records for %d sent (%v)", len(upstream), len(pass), err)
		}
		if n, ok := extra["FailedRecordCount"]; ok {
			upstreamFailed, _ = strconv.Atoi(string(n))
		}
	}

	// Rebuild the response in the original order.
	merged := make([]json.RawMessage, len(records))
	next := 0
	for i := range records {
		if code, ok := failed[i]; ok {
			merged[i], _ = json.Marshal(map[string]string{"ErrorCode": code, "ErrorMessage": "injected by faultproxy"})
			continue
		}
		merged[i] = upstream[next]
		next++
	}
	extra["Records"], _ = json.Marshal(merged)
	extra["FailedRecordCount"] = json.RawMessage(strconv.Itoa(upstreamFailed + len(failed)))
	out, _ := json.Marshal(extra)
	return jsonResponse(req, http.StatusOK, out, nil), nil
}

// forward sends the call with body as its payload.
func (t *Transport) forward(req *http.Request, body []byte) (*http.Response, error) {
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	out.ContentLength = int64(len(body))
	out.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return t.next.RoundTrip(out)
}

func errorResponse(req *http.Request, status int, code, msg string) *http.Response {
	body, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	return jsonResponse(req, status, body, http.Header{"X-Amzn-Errortype": {code}})
}

func jsonResponse(req *http.Request, status int, body []byte, h http.Header) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-Requestid", "faultproxy")
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
