package opensearch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// fault is what the fake cluster does with a whole bulk request.
type fault int

const (
	faultNone        fault = iota
	fault503               // 503 without applying anything
	fault429               // 429 without applying anything
	fault400               // 400 (a malformed request)
	fault413               // 413 request entity too large
	faultDrop              // close the connection without applying or answering
	faultDropApplied       // apply every item, then close the connection without answering
	faultBlock             // 403 cluster_block_exception: the cluster is read-only
)

// fakeCluster emulates the parts of OpenSearch the sink uses: PUT
// _index_template and POST _bulk with per-item results chosen by the test.
type fakeCluster struct {
	t   *testing.T
	srv *httptest.Server

	// Set before use, read by the handler.
	onRequest func(n int, ids []string) fault                        // n counts bulk requests from 1
	onItem    func(id string, sent int) (status int, errType string) // sent counts earlier sends of id; errType may be "type: reason"
	onTmpl    func(n int) int                                        // status for the n-th template PUT
	gate      chan struct{}                                          // when set, each bulk waits for a receive

	mu        sync.Mutex
	docs      map[string]string // "index/id" -> source
	sent      map[string]int    // id -> times sent
	requests  [][]string        // ids of each bulk request, in order
	sizes     []int             // body bytes of each bulk request
	log       []string          // "PUT template NAME" or "POST _bulk"
	templates map[string]json.RawMessage
	auth      []string // Authorization header of each request
}

func newFakeCluster(t *testing.T) *fakeCluster {
	f := &fakeCluster{t: t, docs: map[string]string{}, sent: map[string]int{}, templates: map[string]json.RawMessage{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// newFakeTLSCluster is newFakeCluster over https with a self-signed
// certificate.
func newFakeTLSCluster(t *testing.T) *fakeCluster {
	f := &fakeCluster{t: t, docs: map[string]string{}, sent: map[string]int{}, templates: map[string]json.RawMessage{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCluster) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_index_template/"):
		name := strings.TrimPrefix(r.URL.Path, "/_index_template/")
		f.mu.Lock()
		f.log = append(f.log, "PUT template "+name)
		n := 0
		for _, l := range f.log {
			if strings.HasPrefix(l, "PUT template") {
				n++
			}
		}
		status := http.StatusOK
		if f.onTmpl != nil {
			status = f.onTmpl(n)
		}
		if status == http.StatusOK {
			f.templates[name] = body
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			fmt.Fprint(w, `{"acknowledged":true}`)
		} else {
			fmt.Fprintf(w, `{"error":{"root_cause":[],"type":"illegal_argument_exception","reason":"template says no"},"status":%d}`, status)
		}
	case r.Method == http.MethodPost && r.URL.Path == "/_bulk":
		f.bulk(w, r, body)
	default:
		f.mu.Lock()
		f.log = append(f.log, "UNEXPECTED "+r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		http.Error(w, "fake cluster: unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

type action struct {
	Index struct {
		Index string `json:"_index"`
		ID    string `json:"_id"`
	} `json:"index"`
}

func (f *fakeCluster) bulk(w http.ResponseWriter, r *http.Request, body []byte) {
	if g := f.gate; g != nil {
		select {
		case <-g:
		case <-r.Context().Done():
			return
		}
	}
	var acts []action
	var srcs []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var a action
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil || a.Index.ID == "" {
			f.t.Errorf("fake cluster: bad action line %q: %v", sc.Text(), err)
			http.Error(w, "bad action", http.StatusBadRequest)
			return
		}
		if !sc.Scan() || !json.Valid(sc.Bytes()) {
			f.t.Errorf("fake cluster: missing or invalid document after %q", a.Index.ID)
			http.Error(w, "bad doc", http.StatusBadRequest)
			return
		}
		acts = append(acts, a)
		srcs = append(srcs, sc.Text())
	}
	ids := make([]string, len(acts))
	for i, a := range acts {
		ids[i] = a.Index.ID
	}
	f.mu.Lock()
	f.log = append(f.log, "POST _bulk")
	f.requests = append(f.requests, ids)
	f.sizes = append(f.sizes, len(body))
	n := len(f.requests)
	flt := faultNone
	if f.onRequest != nil {
		flt = f.onRequest(n, ids)
	}
	f.mu.Unlock()
	switch flt {
	case fault503, fault429, fault400, fault413:
		status := map[fault]int{fault503: 503, fault429: 429, fault400: 400, fault413: 413}[flt]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"root_cause":[],"type":"fake","reason":"fault %d"},"status":%d}`, status, status)
		return
	case faultDrop:
		f.hangUp(w)
		return
	case faultBlock:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":{"root_cause":[{"type":"cluster_block_exception","reason":"blocked by: [FORBIDDEN/6/cluster read-only (api)];"}],"type":"cluster_block_exception","reason":"blocked by: [FORBIDDEN/6/cluster read-only (api)];"},"status":403}`)
		return
	}
	type item struct {
		Status int `json:"status"`
		Error  *struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		} `json:"error,omitempty"`
	}
	items := make([]map[string]item, len(acts))
	anyErr := false
	f.mu.Lock()
	for i, a := range acts {
		status, errType := 201, ""
		if f.onItem != nil && flt != faultDropApplied {
			status, errType = f.onItem(a.Index.ID, f.sent[a.Index.ID])
		}
		f.sent[a.Index.ID]++
		it := item{Status: status}
		if status >= 300 {
			anyErr = true
			reason := fmt.Sprintf("fake %s for %s", errType, a.Index.ID)
			if t, r, ok := strings.Cut(errType, ": "); ok { // "type: reason"
				errType, reason = t, r
			}
			it.Error = &struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			}{errType, reason}
		} else {
			f.docs[a.Index.Index+"/"+a.Index.ID] = srcs[i]
		}
		items[i] = map[string]item{"index": it}
	}
	f.mu.Unlock()
	if flt == faultDropApplied {
		f.hangUp(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(map[string]any{"took": 1, "errors": anyErr, "items": items}); err != nil {
		f.t.Errorf("fake cluster: encode: %v", err)
	}
}

// hangUp closes the connection without a response.
func (f *fakeCluster) hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		f.t.Errorf("fake cluster: hijack: %v", err)
		return
	}
	conn.Close()
}

// snapshot returns copies of what the fake holds.
func (f *fakeCluster) snapshot() (docs map[string]string, requests [][]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	docs = make(map[string]string, len(f.docs))
	for k, v := range f.docs {
		docs[k] = v
	}
	for _, r := range f.requests {
		requests = append(requests, append([]string(nil), r...))
	}
	return docs, requests
}

// hasID reports whether a document with id is indexed in any index.
func (f *fakeCluster) hasID(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.docs {
		if strings.HasSuffix(k, "/"+id) {
			return true
		}
	}
	return false
}

// memDL is a DeadLetterer that keeps messages in memory.
type memDL struct {
	mu   sync.Mutex
	msgs []*processors.Message
	err  error
}

func (d *memDL) DeadLetter(ctx context.Context, msgs []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	d.msgs = append(d.msgs, msgs...)
	return nil
}

func (d *memDL) got() []*processors.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*processors.Message(nil), d.msgs...)
}

// testConfig is a config against f with fast retries.
func testConfig(f *fakeCluster) Config {
	return Config{URL: f.srv.URL, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond, RequestTimeout: 5 * time.Second}
}

// newTestSink builds a sink against f and opens a shard sink.
func newTestSink(t *testing.T, cfg Config) (*Sink, processors.ShardSink, *memDL) {
	t.Helper()
	s, err := New(t.Context(), cfg, zap.NewNop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	dl := &memDL{}
	ss, err := s.Open(t.Context(), testShard(), dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return s, ss, dl
}

// day0 is the first event day of the test messages.
var day0 = time.Date(2024, 3, 9, 22, 0, 0, 0, time.UTC)

// testMsgs returns n parsed messages with sequence numbers from seq0,
// event ids "ev-<seq>" and event times one minute apart from day0 (so they
// span midnight after 120).
func testMsgs(seq0, n int) []*processors.Message {
	out := make([]*processors.Message, n)
	for i := range out {
		seq := seq0 + i
		out[i] = &processors.Message{
			Record: worker.Record{StreamName: "events", ShardID: "shardId-000000000001", SequenceNumber: fmt.Sprintf("%020d", seq), Data: []byte("raw")},
			Event: event.Event{
				EventTime: day0.Add(time.Duration(seq) * time.Minute), EventType: event.TypeView, EventID: fmt.Sprintf("ev-%d", seq),
				Source: event.SourceCloudFront, ClientIP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
				URI: "/videos/launch.mp4", Host: "media.example.com", Status: 200, Bytes: 1234,
			},
			Parsed: true,
		}
	}
	return out
}

func testShard() worker.Shard {
	return worker.Shard{StreamName: "events", ShardID: "shardId-000000000001"}
}

// sentCount is how often id was sent.
func (f *fakeCluster) sentCount(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[id]
}
