package collector_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/leasehold/leasehold/collector"
	"github.com/leasehold/leasehold/producer"
)

// TestBackpressure fills the buffer while Kinesis holds every call, and
// checks that a request that does not fit gets 503 with Retry-After and
// puts nothing, in fail-fast and in blocking mode, and that a blocked
// request is admitted when room frees within BufferWait.
func TestBackpressure(t *testing.T) {
	tests := []struct {
		name string
		wait time.Duration
	}{
		{"fail fast", 0},
		{"block until the deadline", 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := collector.DefaultConfig()
			cfg.BufferRecords = 4
			cfg.MaxEventsPerRequest = 4
			cfg.BufferWait = tt.wait
			cfg.RetryAfter = 1500 * time.Millisecond
			c, k := newCollector(t, cfg, producer.WithLinger(0))
			k.Hold = make(chan struct{})
			url, stop := served(t, c)

			if a := post(t, url, "application/x-ndjson", "", ndjson(event("a"), event("b"), event("c"))); a.status != 202 {
				t.Fatalf("first request: %d %+v", a.status, a.body)
			}
			// Two events do not fit in the one slot left: nothing of the
			// request may be taken.
			a := post(t, url, "application/x-ndjson", "", ndjson(event("d"), event("e")))
			if a.status != 503 || a.retryAfter != "2" || a.body.Accepted != 0 || !strings.Contains(a.body.Error, "buffer full") {
				t.Fatalf("full buffer: status %d, Retry-After %q, body %+v; want 503, 2, nothing accepted", a.status, a.retryAfter, a.body)
			}
			if put := c.ProducerStats().RecordsPut; put != 3 {
				t.Errorf("producer holds %d records, want the first request's 3", put)
			}
			if a := post(t, url, "application/json", "", event("f")); a.status != 202 {
				t.Errorf("one event fits the last slot: %d %+v", a.status, a.body)
			}
			close(k.Hold)
			waitFor(t, "the buffer to drain", func() bool { return c.ProducerStats().RecordsSent == 4 })
			if a := post(t, url, "application/x-ndjson", "", ndjson(event("d"), event("e"))); a.status != 202 {
				t.Errorf("after the buffer drained: %d %+v", a.status, a.body)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			ids, _ := writtenIDs(t, k)
			if want := []string{"a", "b", "c", "d", "e", "f"}; !reflect.DeepEqual(ids, want) {
				t.Errorf("written %v, want %v", ids, want)
			}
		})
	}
}

// TestBlockedRequestAdmittedWhenRoomFrees checks that a request waiting
// for room is admitted, not refused, when room frees before BufferWait.
func TestBlockedRequestAdmittedWhenRoomFrees(t *testing.T) {
	cfg := collector.DefaultConfig()
	cfg.BufferRecords = 2
	cfg.MaxEventsPerRequest = 2
	cfg.BufferWait = 20 * time.Second
	c, k := newCollector(t, cfg, producer.WithLinger(0))
	k.Hold = make(chan struct{})
	url, stop := served(t, c)
	if a := post(t, url, "application/x-ndjson", "", ndjson(event("a"), event("b"))); a.status != 202 {
		t.Fatalf("%d %+v", a.status, a.body)
	}
	got := make(chan answer, 1)
	go func() { got <- postAsync(t, url, event("c")) }()
	waitFor(t, "the request to wait for room", func() bool { return gauge(t, c, "leasehold_collector_requests_in_progress") == 1 })
	close(k.Hold)
	if a := <-got; a.status != 202 {
		t.Fatalf("blocked request: %d %+v", a.status, a.body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestGracefulShutdown checks the order of a graceful shutdown: readiness
// turns off, the listener closes, a request in progress still completes
// (here: one waiting for buffer room), and everything accepted is sent
// before Serve returns nil.
func TestGracefulShutdown(t *testing.T) {
	cfg := collector.DefaultConfig()
	cfg.BufferRecords = 2
	cfg.MaxEventsPerRequest = 2
	cfg.BufferWait = 20 * time.Second
	c, k := newCollector(t, cfg, producer.WithLinger(time.Hour)) // nothing leaves before a flush
	if err := c.Ready(); !errors.Is(err, collector.ErrNotServing) {
		t.Errorf("Ready before Serve = %v, want ErrNotServing", err)
	}
	url, stop := served(t, c)
	waitFor(t, "ready", func() bool { return c.Ready() == nil })

	if a := post(t, url, "application/x-ndjson", "", ndjson(event("a"), event("b"))); a.status != 202 {
		t.Fatalf("%d %+v", a.status, a.body)
	}
	if n := len(k.Written()); n != 0 {
		t.Fatalf("%d records written before linger or shutdown", n)
	}
	k.Hold = make(chan struct{}) // the shutdown's flush will wait on it
	inflight := make(chan answer, 1)
	go func() { inflight <- postAsync(t, url, event("c")) }()
	waitFor(t, "the request to wait for room", func() bool { return gauge(t, c, "leasehold_collector_requests_in_progress") == 1 })

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitFor(t, "readiness to turn off", func() bool { return errors.Is(c.Ready(), collector.ErrShuttingDown) })
	waitFor(t, "the listener to close", func() bool {
		resp, err := http.Post(url+collector.Path, "application/json", strings.NewReader(event("late")))
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	select {
	case a := <-inflight:
		t.Fatalf("request answered %d before room freed", a.status)
	case err := <-stopped:
		t.Fatalf("Serve returned %v with a request in progress", err)
	default:
	}
	close(k.Hold)
	if a := <-inflight; a.status != 202 {
		t.Errorf("request in progress at shutdown: %d %+v", a.status, a.body)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	ids, _ := writtenIDs(t, k)
	if want := []string{"a", "b", "c"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("written %v, want %v", ids, want)
	}

	// A request reaching the handler after Serve returned (e.g. a server
	// of the caller's own) is refused whole, to be sent elsewhere.
	req := httptest.NewRequest(http.MethodPost, collector.Path, strings.NewReader(event("late")))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "shutting down: nothing was accepted") {
		t.Errorf("after Serve: %d, Retry-After %q, %s; want 503 shutting down", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
	}
}

// TestShutdownReportsUnsent checks that events still unsent when the grace
// ends are reported by Serve's error with their event ids.
func TestShutdownReportsUnsent(t *testing.T) {
	cfg := collector.DefaultConfig()
	cfg.ShutdownGrace = 300 * time.Millisecond
	c, k := newCollector(t, cfg, producer.WithLinger(0))
	k.Hold = make(chan struct{}) // never released: Kinesis answers nothing
	url, stop := served(t, c)
	if a := post(t, url, "application/x-ndjson", "", ndjson(event("a"), event("b"))); a.status != 202 {
		t.Fatalf("%d %+v", a.status, a.body)
	}
	err := stop()
	fe, ok := isFailed(err)
	if !ok {
		t.Fatalf("Serve = %v, want a *producer.FailedError", err)
	}
	var ids []string
	for _, r := range fe.Records {
		ids = append(ids, fmt.Sprint(r.Record.Meta))
	}
	sort.Strings(ids)
	if !reflect.DeepEqual(ids, []string{"a", "b"}) {
		t.Errorf("unsent %v, want [a b]", ids)
	}
	if got := counter(t, c, "leasehold_collector_events_failed_total"); got != 2 {
		t.Errorf("events_failed_total %v, want 2", got)
	}
}

// TestMetrics checks the counters after a mix of requests.
func TestMetrics(t *testing.T) {
	cfg := collector.DefaultConfig()
	cfg.BufferRecords, cfg.MaxEventsPerRequest, cfg.BufferWait = 3, 3, 0
	c, k := newCollector(t, cfg, producer.WithLinger(0))
	k.Hold = make(chan struct{})
	url, stop := served(t, c)
	post(t, url, "application/x-ndjson", "", ndjson(event("a"), event("b")))       // 202
	post(t, url, "application/x-ndjson", "", ndjson(event("c"), `{}`, event("d"))) // 400: 1 invalid, 2 batch
	post(t, url, "application/x-ndjson", "", ndjson(event("e"), event("f")))       // 503
	post(t, url, "text/csv", "", "x")                                              // 415
	close(k.Hold)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`leasehold_collector_requests_total{code="202"}`:             1,
		`leasehold_collector_requests_total{code="400"}`:             1,
		`leasehold_collector_requests_total{code="503"}`:             1,
		`leasehold_collector_requests_total{code="415"}`:             1,
		`leasehold_collector_events_total{outcome="accepted"}`:       2,
		`leasehold_collector_events_total{outcome="invalid"}`:        1,
		`leasehold_collector_events_total{outcome="batch_rejected"}`: 2,
		`leasehold_collector_events_total{outcome="unavailable"}`:    2,
		`leasehold_collector_events_sent_total`:                      2,
		`leasehold_collector_events_failed_total`:                    0,
		`leasehold_producer_records_sent_total`:                      2,
		`leasehold_collector_buffer_events`:                          0,
		`leasehold_producer_buffered_records`:                        0,
	}
	got := scrape(t, c)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got["leasehold_collector_request_duration_seconds_count"] != 4 {
		t.Errorf("request duration count %v, want 4", got["leasehold_collector_request_duration_seconds_count"])
	}
}

// TestConcurrentRequests runs many clients against a small buffer and
// checks every 202 event is written exactly once and nothing else is.
func TestConcurrentRequests(t *testing.T) {
	cfg := collector.DefaultConfig()
	cfg.BufferRecords, cfg.MaxEventsPerRequest, cfg.BufferWait = 20, 10, 0
	c, k := newCollector(t, cfg, producer.WithLinger(time.Millisecond), producer.WithAggregation(true))
	url, stop := served(t, c)
	var mu sync.Mutex
	var accepted []string
	var wg sync.WaitGroup
	for client := range 8 {
		wg.Go(func() {
			for req := range 20 {
				var lines, ids []string
				for i := range 1 + (client+req)%10 {
					id := fmt.Sprintf("c%d-r%d-%d", client, req, i)
					lines, ids = append(lines, event(id)), append(ids, id)
				}
				a, err := tryPost(url, "application/x-ndjson", "", ndjson(lines...))
				if err != nil {
					t.Error(err)
					return
				}
				switch a.status {
				case 202:
					mu.Lock()
					accepted = append(accepted, ids...)
					mu.Unlock()
				case 503:
					if a.body.Accepted != 0 {
						t.Errorf("503 with %d accepted", a.body.Accepted)
					}
				default:
					t.Errorf("status %d %+v", a.status, a.body)
				}
			}
		})
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(accepted)
	ids, _ := writtenIDs(t, k)
	if !reflect.DeepEqual(ids, accepted) {
		t.Errorf("written %d events, accepted %d; they must be the same set, each once", len(ids), len(accepted))
	}
	if len(accepted) == 0 {
		t.Error("nothing accepted")
	}
}

// scrape gathers c's metrics into "name{label=\"v\"}" → value.
func scrape(t *testing.T, c *collector.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Metrics())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			out[name] = value(m)
			if h := m.GetHistogram(); h != nil {
				out[name+"_count"] = float64(h.GetSampleCount())
			}
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

// counter and gauge read one unlabelled metric, or the sum over labels.
func counter(t *testing.T, c *collector.Collector, name string) float64 {
	t.Helper()
	sum := 0.0
	for k, v := range scrape(t, c) {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum += v
		}
	}
	return sum
}

func gauge(t *testing.T, c *collector.Collector, name string) float64 { return counter(t, c, name) }

// postAsync posts one event from a goroutine other than the test's; a
// failure is reported as status 0.
func postAsync(t *testing.T, url, ev string) answer {
	a, err := tryPost(url, "application/json", "", ev)
	if err != nil {
		t.Error(err)
	}
	return a
}
