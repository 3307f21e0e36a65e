package integration

// The OpenSearch sink against the local stack's real OpenSearch: index
// naming by event day, the template's mappings, idempotent replays, and
// no loss or duplicates through throttled items and an outage (a fault
// proxy in front of the cluster).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/opensearch"
	"github.com/leasehold/leasehold/worker"
)

// osDay0 is the first event's time; 120 events later the UTC day changes.
var osDay0 = time.Date(2024, 3, 9, 22, 0, 0, 0, time.UTC)

// osEvents returns n parsed messages with ids prefix-<i>, one minute apart
// from osDay0, with sequence numbers from seq0.
func osEvents(prefix string, seq0, n int) []*processors.Message {
	out := make([]*processors.Message, n)
	for i := range out {
		seq := seq0 + i
		ip := fmt.Sprintf("198.51.100.%d", i%250)
		if i%2 == 1 {
			ip = fmt.Sprintf("2001:db8::%x", i)
		}
		out[i] = &processors.Message{
			Record: worker.Record{StreamName: "events", ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprintf("%030d", seq)},
			Parsed: true,
			Event: event.Event{
				EventTime: osDay0.Add(time.Duration(i) * time.Minute), EventType: event.TypeView,
				EventID: fmt.Sprintf("%s-%d", prefix, i), Source: event.SourceCloudFront, AssetID: fmt.Sprintf("asset-%d", i%7),
				Tenant: "acme", ClientIP: ip, Referrer: "https://www.example.com/launch?utm=1", ReferringDomain: "example.com",
				Geo: event.Geo{CountryISO: "SE", Country: "Sweden", City: "Linköping", ASN: 29518, ASOrg: "Bredband2 AB"},
				UA:  event.UA{Browser: "Chrome", BrowserVersion: "124.0", OS: "Linux", Device: event.DeviceDesktop}, UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
				Bytes: int64(1000 + i), Status: 200, Method: "GET", URI: "/videos/launch film.mp4", Host: "media.example.com",
				CacheResult: "Hit", EdgeLocation: "ARN56-P1", TimeTakenMS: new(int64(12)), Protocol: "https", ContentType: "video/mp4",
				Properties:   json.RawMessage(`{"campaign":"spring","size":[1,2]}`),
				SourceRecord: event.SourceRecord{Stream: "events", ShardID: "shardId-000000000000", SequenceNumber: fmt.Sprintf("%030d", seq)},
			},
		}
	}
	return out
}

// osDL keeps dead-lettered messages.
type osDL struct {
	mu   sync.Mutex
	msgs []*processors.Message
}

func (d *osDL) DeadLetter(_ context.Context, msgs []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, msgs...)
	return nil
}

func (d *osDL) got() []*processors.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*processors.Message(nil), d.msgs...)
}

// osHTTP calls the cluster directly and decodes the JSON answer into out
// (nil to discard). A status above 299 fails the test.
func osHTTP(t *testing.T, method, u, body string, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode > 299 {
		t.Fatalf("%s %s: %s: %s", method, u, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, u, b, err)
		}
	}
}

// osCount refreshes the indices matching pattern and returns the number
// of documents and of distinct event ids in them.
func osCount(t *testing.T, base, pattern string) (docs, distinct int) {
	t.Helper()
	osHTTP(t, http.MethodPost, base+"/"+pattern+"/_refresh", "", nil)
	var total struct {
		Hits struct {
			Total struct{ Value int } `json:"total"`
		} `json:"hits"`
	}
	osHTTP(t, http.MethodPost, base+"/"+pattern+"/_search", `{"size":0,"track_total_hits":true}`, &total)
	// Distinct ids are counted exactly, page by page with a composite
	// aggregation: the cardinality aggregation is an estimate, and on a
	// fixed data set a hash collision makes it wrong on every run.
	var after json.RawMessage
	for {
		body := `{"size":0,"aggs":{"ids":{"composite":{"size":1000,"sources":[{"id":{"terms":{"field":"event_id"}}}]`
		if after != nil {
			body += `,"after":` + string(after)
		}
		body += `}}}}`
		var page struct {
			Aggregations struct {
				IDs struct {
					AfterKey json.RawMessage   `json:"after_key"`
					Buckets  []json.RawMessage `json:"buckets"`
				} `json:"ids"`
			} `json:"aggregations"`
		}
		osHTTP(t, http.MethodPost, base+"/"+pattern+"/_search", body, &page)
		distinct += len(page.Aggregations.IDs.Buckets)
		if len(page.Aggregations.IDs.Buckets) == 0 || page.Aggregations.IDs.AfterKey == nil {
			return total.Hits.Total.Value, distinct
		}
		after = page.Aggregations.IDs.AfterKey
	}
}

// osNewSink builds a sink writing to indices prefix-{yyyy.MM.dd} and
// removes them and the template when the test ends.
func osNewSink(t *testing.T, base, prefix string, mod func(*opensearch.Config)) *opensearch.Sink {
	t.Helper()
	replicas, shards := 0, 1
	cfg := opensearch.Config{
		URL: base, Index: prefix + "-{yyyy.MM.dd}", Replicas: &replicas, Shards: &shards,
		BackoffMin: 50 * time.Millisecond, BackoffMax: time.Second, RequestTimeout: 10 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	direct := testenv.Local().OpenSearch
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		for _, u := range []string{direct + "/" + prefix + "-*", direct + "/_index_template/" + prefix} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
	s, err := opensearch.New(t.Context(), cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatalf("opensearch.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func osOpen(t *testing.T, s *opensearch.Sink, dl processors.DeadLetterer) processors.ShardSink {
	t.Helper()
	ss, err := s.Open(t.Context(), worker.Shard{StreamName: "events", ShardID: "shardId-000000000000"}, dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss
}

func TestOpenSearchSinkIndexesByEventDayIdempotently(t *testing.T) {
	e := testenv.Require(t, "opensearch")
	prefix := testenv.Name(t, "lhos")
	s := osNewSink(t, e.OpenSearch, prefix, nil)
	msgs := osEvents("ev", 0, 300)
	msgs[10].Event.EventID = ""                            // the sink falls back to the source record
	msgs[20].Event.ClientIP = "not-an-ip"                  // the ip mapping rejects it: dead-lettered
	msgs[30].Event.EventTime = osDay0.Add(-48 * time.Hour) // a late line lands in its own day
	for i := 40; i < 50; i++ {                             // a video fetched in ten 1 MiB ranges
		ev := &msgs[i].Event
		ev.Status, ev.RangeStart, ev.RangeEnd, ev.ContentLength = 206, new(int64(i-40)<<20), new(int64(i-39)<<20-1), new(int64(1<<20))
	}
	msgs[50].Event.TimeTakenMS = new(int64(0)) // served in under half a millisecond
	write := func(ss processors.ShardSink) {
		t.Helper()
		ctx := testenv.Context(t, time.Minute)
		for i := 0; i < len(msgs); i += 100 {
			if err := ss.Write(ctx, msgs[i:i+100]); err != nil {
				t.Fatal(err)
			}
		}
		if err := ss.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := ss.Durable(), msgs[len(msgs)-1].Position(); got != want {
			t.Fatalf("Durable = %v, want %v", got, want)
		}
	}
	dl := &osDL{}
	write(osOpen(t, s, dl))

	t.Run("one index per event day", func(t *testing.T) {
		var rows []struct {
			Index string `json:"index"`
			Count string `json:"docs.count"`
		}
		osHTTP(t, http.MethodPost, e.OpenSearch+"/"+prefix+"-*/_refresh", "", nil)
		osHTTP(t, http.MethodGet, e.OpenSearch+"/_cat/indices/"+prefix+"-*?format=json&h=index,docs.count", "", &rows)
		got := map[string]string{}
		for _, r := range rows {
			got[r.Index] = r.Count
		}
		want := map[string]string{prefix + "-2024.03.07": "1", prefix + "-2024.03.09": "118", prefix + "-2024.03.10": "180"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("indices %v, want %v", got, want)
		}
	})
	t.Run("the template's mappings", func(t *testing.T) {
		var m map[string]struct {
			Mappings struct {
				Properties map[string]struct {
					Type   string                     `json:"type"`
					Fields map[string]json.RawMessage `json:"fields"`
				} `json:"properties"`
			} `json:"mappings"`
		}
		osHTTP(t, http.MethodGet, e.OpenSearch+"/"+prefix+"-2024.03.09/_mapping", "", &m)
		props := m[prefix+"-2024.03.09"].Mappings.Properties
		for field, typ := range map[string]string{"client_ip": "ip", "event_time": "date", "event_id": "keyword", "bytes": "long",
			"status": "integer", "bot": "boolean", "properties": "flat_object", "geo": "", "user_agent": "keyword",
			"range_start": "long", "range_end": "long", "content_length": "long", "time_to_first_byte_ms": "long",
			"edge_detailed_result": "keyword", "tls_protocol": "keyword", "client_port": "integer"} {
			if props[field].Type != typ {
				t.Errorf("%s is %q, want %q", field, props[field].Type, typ)
			}
		}
		if _, ok := props["user_agent"].Fields["text"]; !ok {
			t.Errorf("user_agent has no text sub-field")
		}
	})
	t.Run("field values", func(t *testing.T) {
		var doc struct {
			Source map[string]any `json:"_source"`
		}
		osHTTP(t, http.MethodGet, e.OpenSearch+"/"+prefix+"-2024.03.10/_doc/ev-121", "", &doc)
		src := doc.Source
		if src["client_ip"] != "2001:db8::79" || src["event_time"] != "2024-03-10T00:01:00Z" || src["bytes"] != float64(1121) ||
			src["geo"].(map[string]any)["city"] != "Linköping" || src["properties"].(map[string]any)["campaign"] != "spring" {
			t.Fatalf("document %v", src)
		}
		var found struct{ Found bool }
		osHTTP(t, http.MethodGet, e.OpenSearch+"/"+prefix+"-2024.03.09/_doc/events-shardId-000000000000-000000000000000000000000000010-0", "", &found)
		if !found.Found {
			t.Fatal("the document without an event id is not under its fallback id")
		}
		var hits struct {
			Hits struct {
				Total struct{ Value int } `json:"total"`
			} `json:"hits"`
		}
		osHTTP(t, http.MethodPost, e.OpenSearch+"/"+prefix+"-*/_search", `{"size":0,"query":{"term":{"client_ip":"198.51.100.0/24"}}}`, &hits)
		if hits.Hits.Total.Value != 149 { // even i, minus the bad address at 20
			t.Fatalf("%d documents in 198.51.100.0/24, want 149", hits.Hits.Total.Value)
		}
	})
	t.Run("partial responses and zero durations are searchable", func(t *testing.T) {
		count := func(query string) int {
			var hits struct {
				Hits struct {
					Total struct{ Value int } `json:"total"`
				} `json:"hits"`
			}
			osHTTP(t, http.MethodPost, e.OpenSearch+"/"+prefix+"-*/_search", `{"size":0,"track_total_hits":true,"query":`+query+`}`, &hits)
			return hits.Hits.Total.Value
		}
		if n := count(`{"bool":{"filter":[{"term":{"status":206}},{"range":{"range_start":{"gt":0}}}]}}`); n != 9 {
			t.Errorf("%d ranged responses that continue a transfer, want 9", n)
		}
		if n := count(`{"term":{"range_start":0}}`); n != 1 {
			t.Errorf("%d responses starting at byte 0, want 1", n)
		}
		if n := count(`{"term":{"time_taken_ms":0}}`); n != 1 {
			t.Errorf("%d documents with time_taken_ms 0, want 1 (a zero must not read as absent)", n)
		}
	})
	t.Run("mapping errors are dead-lettered with the reason", func(t *testing.T) {
		got := dl.got()
		if len(got) != 1 || got[0].Position() != msgs[20].Position() {
			t.Fatalf("dead-lettered %d messages, want only the bad client_ip", len(got))
		}
		if msgs[20].Failed() != nil {
			t.Fatal("the sink marked the message it shares with other sinks; it must dead-letter a marked copy")
		}
		var ie *opensearch.ItemError
		if err := got[0].Failed().Err; !errors.As(err, &ie) || ie.Status != 400 || ie.Type != "mapper_parsing_exception" || !strings.Contains(err.Error(), "client_ip") {
			t.Fatalf("reason: %v", err)
		}
	})
	t.Run("a replay overwrites", func(t *testing.T) {
		before, _ := osCount(t, e.OpenSearch, prefix+"-*")
		write(osOpen(t, s, &osDL{}))
		after, distinct := osCount(t, e.OpenSearch, prefix+"-*")
		if before != 299 || after != 299 || distinct != 299 {
			t.Fatalf("documents before %d, after the replay %d (distinct ids %d); want 299", before, after, distinct)
		}
	})
}

// osOutage is how long the proxy refuses connections; the test uses 5 s
// to stay fast. LEASEHOLD_TEST_OUTAGE (e.g. 30s) runs a longer one.
func osOutage(t *testing.T) time.Duration {
	if v := os.Getenv("LEASEHOLD_TEST_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LEASEHOLD_TEST_OUTAGE: %v", err)
		}
		return d
	}
	return 5 * time.Second
}

func TestOpenSearchSinkThrottlingAndOutageLoseNothing(t *testing.T) {
	e := testenv.Require(t, "opensearch")
	outage := osOutage(t)
	proxy, err := faultproxy.NewBulkProxy(e.OpenSearch, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proxy.Close(); err != nil {
			t.Error(err)
		}
	})
	// Reject every third item of the first 600 the proxy sees.
	proxy.SetReject(func(seq int) bool { return seq < 600 && seq%3 == 1 })
	prefix := testenv.Name(t, "lhos")
	s := osNewSink(t, proxy.URL(), prefix, func(c *opensearch.Config) {
		c.FlushBytes = 32 << 10
		c.FlushInterval = 50 * time.Millisecond
		c.MaxBufferBytes = 4 << 20
		c.BackoffMin, c.BackoffMax = 10*time.Millisecond, 500*time.Millisecond
	})
	dl := &osDL{}
	ss := osOpen(t, s, dl)
	ctx := testenv.Context(t, outage+3*time.Minute)

	a := osEvents("a", 0, 500)
	start := time.Now()
	for i := 0; i < len(a); i += 50 {
		if err := ss.Write(ctx, a[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	if err := ss.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ss.Durable() != a[len(a)-1].Position() {
		t.Fatalf("Durable = %v after Flush", ss.Durable())
	}
	throttled := time.Since(start)
	st := s.Stats()
	rejected, _ := proxy.Counts()
	if rejected == 0 || st.ItemsRetried != int64(rejected) {
		t.Fatalf("proxy rejected %d items, the sink retried %d; want equal and above 0", rejected, st.ItemsRetried)
	}

	// The cluster goes away: writes are accepted (the buffer has room),
	// nothing more becomes durable, and it all catches up afterwards.
	down := time.Now()
	if err := proxy.Outage(outage); err != nil {
		t.Fatal(err)
	}
	b := osEvents("b", 500, 500)
	for i := 0; i < len(b); i += 50 {
		if err := ss.Write(ctx, b[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(min(outage/2, 2*time.Second))
	if got := ss.Durable(); got != a[len(a)-1].Position() {
		t.Fatalf("Durable moved to %v during the outage", got)
	}
	if err := ss.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recovered := time.Since(down)
	if recovered < outage {
		t.Fatalf("Flush returned %s into a %s outage", recovered, outage)
	}
	if got := ss.Durable(); got != b[len(b)-1].Position() || checkpoint.Less(got, a[len(a)-1].Position()) {
		t.Fatalf("Durable = %v after the outage", got)
	}
	docs, distinct := osCount(t, e.OpenSearch, prefix+"-*")
	st = s.Stats()
	t.Logf("500 docs with %d items throttled: %s; outage %s, caught up %s after it began; stats %+v", rejected, throttled.Round(time.Millisecond), outage, recovered.Round(time.Millisecond), st)
	if docs != 1000 || distinct != 1000 || len(dl.got()) != 0 {
		t.Fatalf("%d documents, %d distinct ids, %d dead-lettered; want 1000, 1000, 0", docs, distinct, len(dl.got()))
	}
	if st.RequestErrors == 0 {
		t.Fatal("no request failed during the outage; the proxy did not cut the sink off")
	}
}

// BenchmarkOpenSearchSink indexes 10,000 events per iteration through one
// shard sink into the local OpenSearch (default flush_bytes, one request
// in flight) and reports documents per second.
func BenchmarkOpenSearchSink(b *testing.B) {
	e := testenv.Require(b, "opensearch")
	prefix := testenv.Name(b, "lhos")
	replicas := 0
	s, err := opensearch.New(b.Context(), opensearch.Config{URL: e.OpenSearch, Index: prefix + "-{yyyy.MM.dd}", Replicas: &replicas}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.Close(context.Background())
		for _, u := range []string{e.OpenSearch + "/" + prefix + "-*", e.OpenSearch + "/_index_template/" + prefix} {
			req, _ := http.NewRequest(http.MethodDelete, u, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
	ss, err := s.Open(b.Context(), worker.Shard{StreamName: "events", ShardID: "shardId-000000000000"}, &osDL{})
	if err != nil {
		b.Fatal(err)
	}
	defer ss.Close()
	const n = 10000
	msgs := osEvents("bench", 0, n)
	var seq int
	b.ResetTimer()
	for b.Loop() {
		for _, m := range msgs { // new positions each round; same ids (overwrites)
			seq++
			m.Record.SequenceNumber = fmt.Sprintf("%030d", seq)
		}
		for i := 0; i < n; i += 500 {
			if err := ss.Write(b.Context(), msgs[i:i+500]); err != nil {
				b.Fatal(err)
			}
		}
		if err := ss.Flush(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "docs/s")
	st := s.Stats()
	b.ReportMetric(float64(st.BulkBytes)/float64(st.BulkRequests)/(1<<20), "MiB/request")
}
