package integration

// One suite, two backends: the same assertions against the local stack's
// real OpenSearch 2 and Elasticsearch 8, each through its own sink
// (processors/opensearch on opensearch-go, processors/elasticsearch on
// go-elasticsearch) and the bulk engine they share: every record indexed
// exactly once through worker processes that crash between write and
// checkpoint; throttled (429) items retried and mapping errors
// dead-lettered; a closed index holding the shard instead of
// dead-lettering; and retention (neither zip ships ILM or ISM, so the
// core-API fallback runs, from several workers at once).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/leasehold/leasehold/internal/config"
	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/elasticsearch"
	"github.com/leasehold/leasehold/processors/opensearch"
	"github.com/leasehold/leasehold/processors/searchbulk"
	"github.com/leasehold/leasehold/worker"
)

// searchSink is what both sinks offer the tests.
type searchSink interface {
	processors.Sink
	PruneExpired(ctx context.Context) ([]string, error)
}

// knobs are the sink options the tests set, mapped onto each Config.
type knobs struct {
	flushBytes    int64
	flushInterval time.Duration
	retentionDays int
}

// backend is one search cluster of the local stack and how to reach it.
type backend struct {
	name   string // the sink type: opensearch or elasticsearch
	url    string
	user   string
	pass   string
	caFile string
	tls    *tls.Config // trusts caFile; nil for plain HTTP
	client *http.Client
}

// searchBackends returns both backends, each requiring its service.
func searchBackends(t testing.TB) []backend {
	e := testenv.Require(t, "opensearch", "elasticsearch")
	pem, err := os.ReadFile(e.ES.CAFile)
	if err != nil {
		t.Fatalf("the local Elasticsearch's CA: %v (start it with `leasehold dev up --with elasticsearch`)", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return []backend{
		{name: "opensearch", url: e.OpenSearch, client: http.DefaultClient},
		{name: "elasticsearch", url: e.Elasticsearch, user: e.ES.Username, pass: e.ES.Password, caFile: e.ES.CAFile, tls: tlsCfg,
			client: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}},
	}
}

// sinkYAML is the sink's entry in a worker's pipeline config.
func (b backend) sinkYAML(index string) string {
	y := fmt.Sprintf("    - type: %s\n      url: %s\n      index: %s-{yyyy.MM.dd}\n      flush_interval: 300ms\n      replicas: 0\n", b.name, b.url, index)
	if b.user != "" {
		y += fmt.Sprintf("      username: %s\n      password: %s\n      tls:\n        ca_file: %s\n", b.user, b.pass, b.caFile)
	}
	return y
}

// newSink builds the backend's sink in-process against url (the cluster,
// or a proxy in front of it), writing to indices prefix-{yyyy.MM.dd},
// and removes them and the template when the test ends.
func (b backend) newSink(t testing.TB, url, prefix string, k knobs) searchSink {
	t.Helper()
	replicas, shards := 0, 1
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if _, ok := t.(*testing.B); ok {
		log = zap.NewNop()
	}
	t.Cleanup(func() {
		b.deleteIndices(t, prefix+"-*")
		b.call(t, http.MethodDelete, "/_index_template/"+prefix, "", nil, true)
	})
	var s searchSink
	var err error
	switch b.name {
	case "opensearch":
		s, err = opensearch.New(context.Background(), opensearch.Config{
			URL: url, Index: prefix + "-{yyyy.MM.dd}", Replicas: &replicas, Shards: &shards,
			FlushBytes: opensearch.ByteSize(k.flushBytes), FlushInterval: k.flushInterval,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond, RequestTimeout: 10 * time.Second,
			Retention: searchbulk.Retention{Days: k.retentionDays},
		}, log)
	case "elasticsearch":
		c := elasticsearch.Config{
			URL: url, Index: prefix + "-{yyyy.MM.dd}", Replicas: &replicas, Shards: &shards, Username: b.user, Password: config.Secret(b.pass),
			FlushBytes: searchbulk.ByteSize(k.flushBytes), FlushInterval: k.flushInterval,
			BackoffMin: 20 * time.Millisecond, BackoffMax: 500 * time.Millisecond, RequestTimeout: 10 * time.Second,
			Retention: searchbulk.Retention{Days: k.retentionDays},
		}
		if strings.HasPrefix(url, "https:") {
			c.TLS.CAFile = b.caFile
		}
		s, err = elasticsearch.New(context.Background(), c, log)
	}
	if err != nil {
		t.Fatalf("%s sink: %v", b.name, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// call sends a request to the cluster itself and decodes a JSON answer
// into out (nil to discard). A status above 299 fails the test unless
// lenient (cleanup).
// deleteIndices deletes the indices that match pattern, by name:
// Elasticsearch 8 refuses a DELETE with a wildcard
// (action.destructive_requires_name), which left every Elasticsearch
// index of these tests behind.
func (b backend) deleteIndices(t testing.TB, pattern string) {
	t.Helper()
	var rows []struct {
		Index string `json:"index"`
	}
	if b.call(t, http.MethodGet, "/_cat/indices/"+pattern+"?format=json&h=index&expand_wildcards=all", "", &rows, true) > 299 {
		return
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Index)
	}
	if len(names) > 0 {
		if code := b.call(t, http.MethodDelete, "/"+strings.Join(names, ","), "", nil, true); code > 299 {
			t.Logf("cleanup: %s: DELETE %d indices: HTTP %d", b.name, len(names), code)
		}
	}
}

func (b backend) call(t testing.TB, method, path, body string, out any, lenient bool) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if b.user != "" {
		req.SetBasicAuth(b.user, b.pass)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		if lenient {
			return 0
		}
		t.Fatalf("%s %s %s: %v", b.name, method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode > 299 && !lenient {
		t.Fatalf("%s %s %s: %s: %s", b.name, method, path, resp.Status, raw)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s %s: decode %s: %v", b.name, method, path, raw, err)
		}
	}
	return resp.StatusCode
}

// count refreshes the indices matching pattern and returns the number of
// documents and of distinct event ids in them.
func (b backend) count(t *testing.T, pattern string) (docs, distinct int) {
	t.Helper()
	if b.call(t, http.MethodPost, "/"+pattern+"/_refresh?allow_no_indices=true", "", nil, true) > 299 {
		return 0, 0
	}
	var out struct {
		Hits struct {
			Total struct{ Value int } `json:"total"`
		} `json:"hits"`
		Aggregations struct {
			IDs struct{ Value int } `json:"ids"`
		} `json:"aggregations"`
	}
	b.call(t, http.MethodPost, "/"+pattern+"/_search?allow_no_indices=true", `{"size":0,"track_total_hits":true,"aggs":{"ids":{"cardinality":{"field":"event_id","precision_threshold":40000}}}}`, &out, false)
	return out.Hits.Total.Value, out.Aggregations.IDs.Value
}

// indices lists the indices matching pattern, sorted.
func (b backend) indices(t *testing.T, pattern string) []string {
	t.Helper()
	var rows []struct {
		Index string `json:"index"`
	}
	b.call(t, http.MethodGet, "/_cat/indices/"+pattern+"?format=json&h=index&expand_wildcards=open,closed", "", &rows, false)
	var out []string
	for _, r := range rows {
		out = append(out, r.Index)
	}
	sort.Strings(out)
	return out
}

// itemsRetried is the sink's count of items resent after a retryable
// item failure.
func itemsRetried(s searchSink) int64 {
	switch s := s.(type) {
	case *opensearch.Sink:
		return s.Stats().ItemsRetried
	case *elasticsearch.Sink:
		return s.Stats().ItemsRetried
	}
	return -1
}

func openShard(t *testing.T, s searchSink, dl processors.DeadLetterer) processors.ShardSink {
	t.Helper()
	ss, err := s.Open(t.Context(), worker.Shard{StreamName: "events", ShardID: "shardId-000000000000"}, dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss
}

// Worker processes of the real binary index a stream into the backend
// through the pipeline; the first crashes exactly between its sink's
// write and the checkpoint, and the two after it replay what it wrote:
// every event is one document, none twice.
func TestSearchBackendsWorkersIndexExactlyOnce(t *testing.T) {
	backends := searchBackends(t)
	e := testenv.Local()
	kc := testenv.Kinesis(e)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			testenv.Require(t, "kinesis", "dynamodb")
			stream := testenv.Name(t, "sb")
			index := strings.ToLower(testenv.Name(t, "sb-idx"))
			createStream(t, kc, stream, 2)
			t.Cleanup(func() {
				b.deleteIndices(t, index+"-*")
				b.call(t, http.MethodDelete, "/_index_template/"+index, "", nil, true)
			})
			f := newFleet(t, e, stream)
			cfgPath := filepath.Join(f.dir, "leasehold.yaml")
			cfg := "pipeline:\n  processors:\n    - type: parse\n  sinks:\n" + b.sinkYAML(index) +
				"  dead_letter:\n    type: file\n    path: " + filepath.Join(f.dir, "dead.ndjson") + "\n"
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			env := []string{"LEASEHOLD_CONFIG=" + cfgPath, "LEASEHOLD_WORKER_FILE_SINK="}
			exp := newExpected()
			phase1, phase2 := workloadRecords(t, 21, 1), workloadRecords(t, 22, 1)
			for _, r := range append(append([][]byte{}, phase1...), phase2...) {
				exp.add(r)
			}

			f.start("p1", append(env, "LEASEHOLD_FAILPOINT=worker.before-checkpoint")...)
			putAll(t, kc, stream, phase1)
			err, exited := f.waitExit("p1", 90*time.Second)
			if !exited {
				t.Fatalf("p1 never reached the failpoint\n%s", f.logTail("p1"))
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
				t.Fatalf("p1 did not crash at the failpoint: %v\n%s", err, f.logTail("p1"))
			}
			pre, _ := b.count(t, index+"-*")
			if pre == 0 {
				t.Fatalf("p1 crashed before its sink wrote anything: the replay would prove nothing\n%s", f.logTail("p1"))
			}
			f.start("p2", env...)
			f.start("p3", env...)
			putAll(t, kc, stream, phase2)
			for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
				if docs, _ := b.count(t, index+"-*"); docs >= len(exp.ids) {
					break
				}
			}
			time.Sleep(2 * time.Second) // let a duplicate, if any, arrive
			f.stop("p2")
			f.stop("p3")
			docs, distinct := b.count(t, index+"-*")
			t.Logf("%s: %d records, %d distinct events; %d documents at the crash (not checkpointed), %d after the replay, %d distinct ids",
				b.name, len(phase1)+len(phase2), len(exp.ids), pre, docs, distinct)
			if docs != len(exp.ids) || distinct != len(exp.ids) {
				t.Fatalf("%d documents (%d distinct ids), want each of %d events exactly once", docs, distinct, len(exp.ids))
			}
		})
	}
}

// Throttled items (a fault proxy answers every third item 429 and does
// not forward it) are resent until indexed; a document the cluster's
// mapping refuses is dead-lettered with the cluster's reason; nothing is
// lost or doubled.
func TestSearchBackendsThrottlingAndMappingErrors(t *testing.T) {
	for _, b := range searchBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			proxy, err := faultproxy.NewBulkProxy(b.url, b.tls)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = proxy.Close() })
			proxy.SetReject(func(seq int) bool { return seq < 900 && seq%3 == 1 })
			prefix := testenv.Name(t, "sbt")
			s := b.newSink(t, proxy.URL(), prefix, knobs{flushBytes: 32 << 10, flushInterval: 50 * time.Millisecond})
			dl := &osDL{}
			ss := openShard(t, s, dl)
			msgs := osEvents("t", 0, 600)
			bad := msgs[137]
			bad.Event.ClientIP = "not-an-address" // client_ip is mapped as ip
			ctx := testenv.Context(t, 2*time.Minute)
			for i := 0; i < len(msgs); i += 50 {
				if err := ss.Write(ctx, msgs[i:i+50]); err != nil {
					t.Fatal(err)
				}
			}
			if err := ss.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			if ss.Durable() != msgs[len(msgs)-1].Position() {
				t.Fatalf("Durable = %v after Flush", ss.Durable())
			}
			rejected, _ := proxy.Counts()
			retried := itemsRetried(s)
			docs, distinct := b.count(t, prefix+"-*")
			got := dl.got()
			t.Logf("%s: 600 events, %d items throttled and retried (%d), %d documents, %d dead-lettered", b.name, rejected, retried, docs, len(got))
			if rejected == 0 || retried < int64(rejected) {
				t.Errorf("proxy rejected %d items, the sink retried %d", rejected, retried)
			}
			if docs != 599 || distinct != 599 {
				t.Errorf("%d documents, %d distinct; want 599 (all but the bad one), once each", docs, distinct)
			}
			if len(got) != 1 || got[0].Event.EventID != bad.Event.EventID || !strings.Contains(got[0].Failed().Err.Error(), "parsing") {
				t.Fatalf("dead letters %d, want only %s with the cluster's mapping reason; got %v", len(got), bad.Event.EventID, got)
			}
			if !processors.IsPermanent(got[0].Failed().Err) {
				t.Errorf("the mapping error is not permanent: %v", got[0].Failed().Err)
			}
		})
	}
}

// A closed index is "cannot write now", not a bad document: the shard
// waits (nothing durable, nothing dead-lettered) until the index is
// opened again, then every document is indexed once.
func TestSearchBackendsClosedIndexWaits(t *testing.T) {
	for _, b := range searchBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			prefix := testenv.Name(t, "sbc")
			s := b.newSink(t, b.url, prefix, knobs{flushInterval: 20 * time.Millisecond})
			dl := &osDL{}
			ss := openShard(t, s, dl)
			ctx := testenv.Context(t, 2*time.Minute)
			first := osEvents("c", 0, 10) // all on osDay0
			if err := ss.Write(ctx, first); err != nil {
				t.Fatal(err)
			}
			if err := ss.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			day := prefix + "-" + osDay0.Format("2006.01.02")
			b.call(t, http.MethodPost, "/"+day+"/_close", "", nil, false)
			more := osEvents("c", 10, 20)[10:]
			if err := ss.Write(ctx, more); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			if got := ss.Durable(); got != first[len(first)-1].Position() {
				t.Fatalf("Durable moved to %v while the index was closed", got)
			}
			if n := len(dl.got()); n != 0 {
				t.Fatalf("%d documents dead-lettered because the index was closed: %v", n, dl.got()[0].Failed().Err)
			}
			b.call(t, http.MethodPost, "/"+day+"/_open?wait_for_active_shards=1", "", nil, false)
			if err := ss.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			docs, distinct := b.count(t, prefix+"-*")
			if docs != 20 || distinct != 20 || len(dl.got()) != 0 {
				t.Fatalf("%d documents (%d distinct), %d dead letters; want 20, 20, 0", docs, distinct, len(dl.got()))
			}
		})
	}
}

// Retention: neither integ-test zip ships ILM or ISM, so the sink detects
// that (the API answers it does not exist) and falls back to deleting
// whole expired event-time indices by name. Several workers doing so at
// once delete each expired index once between them, keep the others, and
// report no error. The index template is installed with every mapping.
func TestSearchBackendsRetention(t *testing.T) {
	for _, b := range searchBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			prefix := testenv.Name(t, "sbr")
			now := time.Now().UTC()
			workers := make([]searchSink, 3)
			for i := range workers {
				workers[i] = b.newSink(t, b.url, prefix, knobs{flushInterval: 20 * time.Millisecond, retentionDays: 3})
			}
			var tmpl struct {
				IndexTemplates []struct {
					IndexTemplate struct {
						Template struct {
							Mappings struct {
								Properties map[string]struct {
									Type string `json:"type"`
								} `json:"properties"`
							} `json:"mappings"`
						} `json:"template"`
					} `json:"index_template"`
				} `json:"index_templates"`
			}
			b.call(t, http.MethodGet, "/_index_template/"+prefix, "", &tmpl, false)
			if len(tmpl.IndexTemplates) != 1 || tmpl.IndexTemplates[0].IndexTemplate.Template.Mappings.Properties["client_ip"].Type != "ip" {
				t.Fatalf("template %s not installed with its mappings: %+v", prefix, tmpl)
			}
			wantFree := map[string]string{"opensearch": "flat_object", "elasticsearch": "flattened"}[b.name]
			if got := tmpl.IndexTemplates[0].IndexTemplate.Template.Mappings.Properties["properties"].Type; got != wantFree {
				t.Errorf("properties mapped as %q, want %q", got, wantFree)
			}

			dl := &osDL{}
			ss := openShard(t, workers[0], dl)
			ctx := testenv.Context(t, time.Minute)
			var msgs []*processors.Message
			for i, age := range []int{10, 5, 4, 3, 1, 0} { // days before today
				m := osEvents(fmt.Sprintf("r%d", age), i, 1)[0]
				m.Event.EventTime = now.AddDate(0, 0, -age)
				msgs = append(msgs, m)
			}
			if err := ss.Write(ctx, msgs); err != nil {
				t.Fatal(err)
			}
			if err := ss.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			before := b.indices(t, prefix+"-*")
			if len(before) != 6 {
				t.Fatalf("indices %v, want six days", before)
			}
			var mu sync.Mutex
			var deleted []string
			var wg sync.WaitGroup
			for _, w := range workers {
				wg.Go(func() {
					d, err := w.PruneExpired(ctx)
					if err != nil {
						t.Errorf("prune: %v", err)
					}
					mu.Lock()
					deleted = append(deleted, d...)
					mu.Unlock()
				})
			}
			wg.Wait()
			after := b.indices(t, prefix+"-*")
			day := func(age int) string { return prefix + "-" + now.AddDate(0, 0, -age).Format("2006.01.02") }
			want := []string{day(3), day(1), day(0)}
			sort.Strings(want)
			t.Logf("%s: before %v; deleted (summed over 3 workers) %v; after %v", b.name, before, deleted, after)
			// Kept: an index whose day ended less than 3 days ago (3 days
			// ago ends 2 days and a bit ago), today's and yesterday's.
			if strings.Join(after, ",") != strings.Join(want, ",") {
				t.Fatalf("after pruning: %v, want %v", after, want)
			}
		})
	}
}

// BenchmarkSearchBackendsBulk indexes 10,000 events per iteration through
// one shard sink of each backend (default flush_bytes, one request in
// flight) and reports documents per second, side by side:
//
//	go test -run '^$' -bench SearchBackendsBulk -benchtime 3x ./integration/
func BenchmarkSearchBackendsBulk(b *testing.B) {
	for _, be := range searchBackends(b) {
		b.Run(be.name, func(b *testing.B) {
			prefix := testenv.Name(b, "sbb")
			s := be.newSink(b, be.url, prefix, knobs{})
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
		})
	}
}
