package integration

// The chaos matrix: worker processes (the -race binary TestMain builds)
// run the full pipeline into the real local OpenSearch, S3 and DynamoDB,
// each reached through a faultproxy.Proxy that the test switches while
// records flow. Every scenario ends with every record exactly once in
// OpenSearch, S3 and DynamoDB, nothing in the dead letters but the bad
// input it was given, no raw client address stored anywhere, and the
// workers' peak RSS reported. The scenarios are independent (their own
// stream, lease table, bucket, table and indices) and run in parallel.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/leasehold/leasehold/internal/dev/faultproxy"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/internal/dev/workload"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/processors/dynamosink"
	"github.com/leasehold/leasehold/processors/transform"
)

func TestChaosMatrix(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb", "s3", "opensearch")
	t.Run("opensearch 429s then down 30s with a worker killed", func(t *testing.T) {
		t.Parallel()
		chaosOpenSearchOutage(t, e)
	})
	t.Run("s3 answers 503", func(t *testing.T) {
		t.Parallel()
		chaosS3SlowDown(t, e)
	})
	t.Run("dynamodb throttled", func(t *testing.T) {
		t.Parallel()
		chaosDynamoDBThrottled(t, e)
	})
	t.Run("archive bucket missing, dynamodb and dead letters denied", func(t *testing.T) {
		t.Parallel()
		chaosCannotWrite(t, e)
	})
}

// chaosOpenSearchOutage: two workers; OpenSearch rejects every bulk
// request with 429 for 10 s, then is down for 30 s; 8 s into the outage one
// worker is SIGKILLed (its OpenSearch buffers were never durable, its S3
// objects and DynamoDB items were); records keep arriving throughout; a
// third worker joins after the outage. The surviving worker must report
// the stall in its metrics and turn not ready.
func chaosOpenSearchOutage(t *testing.T, e testenv.Endpoints) {
	c := newChaos(t, e, "chos")
	recs := c.records(11, 3)
	third := len(recs) / 3
	c.start("a1")
	c.start("a2")
	putAll(t, c.kc, c.stream, recs[:third])
	time.Sleep(5 * time.Second)

	c.os.SetRule(func(r *http.Request) *faultproxy.Fault {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/_bulk") {
			return faultproxy.OpenSearchRejected()
		}
		return nil
	})
	putAll(t, c.kc, c.stream, recs[third:2*third])
	time.Sleep(10 * time.Second)

	c.os.SetRule(func(*http.Request) *faultproxy.Fault { return faultproxy.Down() })
	down := time.Now()
	watch := c.watchHealth("a2", "opensearch")
	time.Sleep(8 * time.Second)
	c.kill("a1")
	putAll(t, c.kc, c.stream, recs[2*third:])
	time.Sleep(time.Until(down.Add(30 * time.Second)))
	c.os.SetRule(nil)
	red, stalled := watch()
	t.Logf("outage over after %s; a2 was not ready: %v; reported stalled shards: %v", time.Since(down).Round(time.Second), red, stalled)
	if !red || !stalled {
		t.Errorf("during the outage the surviving worker must report stalled OpenSearch shards (%v) and turn not ready (%v)", stalled, red)
	}
	c.start("a3")
	c.finish("a2", "a3")
	if _, faulted := c.os.Stats(); faulted == 0 {
		t.Error("the proxy injected no fault")
	}
}

// chaosS3SlowDown: S3 answers every PUT (archive objects and dead
// letters) with 503 SlowDown for 20 s while records arrive; the S3 buffer
// budget is small, so the shards wait for memory as well as for S3.
func chaosS3SlowDown(t *testing.T, e testenv.Endpoints) {
	c := newChaos(t, e, "chs3")
	recs := c.records(12, 2)
	c.start("b1")
	c.start("b2")
	putAll(t, c.kc, c.stream, recs[:len(recs)/2])
	time.Sleep(3 * time.Second)
	c.s3.SetRule(func(r *http.Request) *faultproxy.Fault {
		if r.Method == http.MethodPut {
			return faultproxy.S3SlowDown()
		}
		return nil
	})
	watch := c.watchHealth("b2", "s3")
	putAll(t, c.kc, c.stream, recs[len(recs)/2:])
	time.Sleep(20 * time.Second)
	c.s3.SetRule(nil)
	_, stalled := watch()
	if !stalled {
		t.Error("while S3 answered 503 the worker reported no stalled S3 shard")
	}
	c.finish("b1", "b2")
	if _, faulted := c.s3.Stats(); faulted == 0 {
		t.Error("the proxy injected no fault")
	}
}

// chaosDynamoDBThrottled: every BatchWriteItem of the DynamoDB sink is
// throttled for 20 s while records arrive (the lease table's calls pass).
func chaosDynamoDBThrottled(t *testing.T, e testenv.Endpoints) {
	c := newChaos(t, e, "chdb")
	recs := c.records(13, 2)
	c.start("d1")
	c.start("d2")
	putAll(t, c.kc, c.stream, recs[:len(recs)/2])
	time.Sleep(3 * time.Second)
	c.ddb.SetRule(func(r *http.Request) *faultproxy.Fault {
		if faultproxy.Operation(r) == "BatchWriteItem" {
			return faultproxy.DynamoDBThrottled()
		}
		return nil
	})
	watch := c.watchHealth("d2", "dynamodb")
	putAll(t, c.kc, c.stream, recs[len(recs)/2:])
	time.Sleep(20 * time.Second)
	c.ddb.SetRule(nil)
	_, stalled := watch()
	if !stalled {
		t.Error("while DynamoDB throttled the worker reported no stalled DynamoDB shard")
	}
	c.finish("d1", "d2")
	if _, faulted := c.ddb.Stats(); faulted == 0 {
		t.Error("the proxy injected no fault")
	}
}

// chaosCannotWrite: destinations that refuse until an operator acts. The
// workers start while the archive bucket does not exist (NoSuchBucket);
// DynamoDB denies the sink's BatchWriteItem and S3 denies the dead-letter
// PUTs (AccessDenied) for the first 20 s. Each sink — and the dead-letter
// store — must report "cannot write" at once on /readyz and in
// leasehold_sink_cannot_write_shards, log an Error when it starts and an
// Info when it recovers, and keep its shards (no "shard stopped"); once
// the operator creates the bucket and the denials end, every record
// lands exactly once and only the bad input is dead-lettered.
func chaosCannotWrite(t *testing.T, e testenv.Endpoints) {
	c := newChaosWith(t, e, "chcw", false)
	recs := c.records(14, 2)
	c.ddb.SetRule(func(r *http.Request) *faultproxy.Fault {
		if faultproxy.Operation(r) == "BatchWriteItem" {
			return faultproxy.DynamoDBAccessDenied()
		}
		return nil
	})
	c.s3.SetRule(func(r *http.Request) *faultproxy.Fault {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/dead-letter/") {
			return faultproxy.S3AccessDenied()
		}
		return nil
	})
	// The bad input first, so that a dead letter is due while the
	// dead-letter store refuses (later ones would wait behind the sinks).
	var bad, good [][]byte
	for _, r := range recs {
		if _, ok := c.bad[string(r)]; ok {
			bad = append(bad, r)
		} else {
			good = append(good, r)
		}
	}
	c.start("c1")
	c.start("c2")
	watch := c.watchCannotWrite("c1", "c2")
	putAll(t, c.kc, c.stream, bad)
	putAll(t, c.kc, c.stream, good)
	time.Sleep(20 * time.Second)
	if _, err := c.s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &c.bucket}); err != nil {
		t.Fatal(err)
	}
	c.ddb.SetRule(nil)
	c.s3.SetRule(nil)
	seen := watch()
	for _, sink := range []string{"s3", "dynamodb", "dead_letter"} {
		if !seen[sink] {
			t.Errorf("the worker never reported that sink %s cannot write (saw %v)", sink, seen)
		}
	}
	c.finish("c1", "c2")
	logs := c.f.log("c1") + c.f.log("c2")
	for _, want := range []string{"s3 cannot write", "dynamodb cannot write", "dead-letter store cannot write",
		"s3 requests succeed again", "dynamodb writes succeed again", "dead-letter writes succeed again"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no worker logged %q", want)
		}
	}
	if strings.Contains(logs, "processor failed; shard stopped") {
		t.Error("a shard stopped: a destination that cannot write must hold the shard, not stop it")
	}
}

// watchCannotWrite polls the workers' /readyz and /metrics until the
// returned func is called, which reports the sinks some worker said
// cannot write in both (a 503 naming "sink X cannot write" and
// leasehold_sink_cannot_write_shards{sink="X"} > 0). All workers are
// watched: which one holds the shards while they wait depends on timing.
func (c *chaos) watchCannotWrite(ids ...string) func() map[string]bool {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	red, metric := map[string]bool{}, map[string]bool{}
	for _, id := range ids {
		c.mu.Lock()
		addr := c.addrs[id]
		c.mu.Unlock()
		wg.Go(func() {
			client := &http.Client{Timeout: 2 * time.Second}
			for {
				if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					for _, sink := range []string{"s3", "dynamodb", "dead_letter", "opensearch"} {
						if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "sink "+sink+" cannot write") {
							mu.Lock()
							red[sink] = true
							mu.Unlock()
						}
					}
				}
				if resp, err := client.Get("http://" + addr + "/metrics"); err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					for _, line := range strings.Split(string(b), "\n") {
						rest, ok := strings.CutPrefix(line, `leasehold_sink_cannot_write_shards{sink="`)
						if !ok {
							continue
						}
						if sink, v, ok := strings.Cut(rest, `"} `); ok && v != "0" {
							mu.Lock()
							metric[sink] = true
							mu.Unlock()
						}
					}
				}
				c.noteRSS(id)
				select {
				case <-stop:
					return
				case <-time.After(300 * time.Millisecond):
				}
			}
		})
	}
	return func() map[string]bool {
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		both := map[string]bool{}
		for sink := range red {
			both[sink] = metric[sink]
		}
		return both
	}
}

// chaos is one scenario's world.
type chaos struct {
	t                            *testing.T
	e                            testenv.Endpoints
	kc                           *kinesis.Client
	s3c                          *s3.Client
	db                           *dynamodb.Client
	stream, bucket, table, index string
	f                            *fleet
	os, s3, ddb                  *faultproxy.Proxy
	env                          []string
	exp                          *expected
	bad                          map[string]string // bad input's data -> the stage that must dead-letter it
	killed                       bool              // a worker was SIGKILLed: dead letters may repeat

	mu    sync.Mutex
	rss   map[string]int64  // worker -> peak RSS in bytes (VmHWM)
	addrs map[string]string // worker -> metrics address
	pids  map[string]int    // worker -> process id, read by watchHealth's goroutine
}

func newChaos(t *testing.T, e testenv.Endpoints, name string) *chaos {
	return newChaosWith(t, e, name, true)
}

// newChaosWith is newChaos; without withBucket the bucket of the archive
// and the dead letters is left for the test to create.
func newChaosWith(t *testing.T, e testenv.Endpoints, name string, withBucket bool) *chaos {
	c := &chaos{t: t, e: e, kc: testenv.Kinesis(e), s3c: testenv.S3(e), db: testenv.DynamoDB(e),
		stream: testenv.Name(t, name), bucket: testenv.Name(t, name+"-bkt"), table: testenv.Name(t, name+"-tbl"),
		index: strings.ToLower(testenv.Name(t, name+"-idx")), exp: newExpected(), bad: map[string]string{}, rss: map[string]int64{}, addrs: map[string]string{}, pids: map[string]int{}}
	deleteBucketAtEnd(t, c.bucket) // created here or by the test
	createStream(t, c.kc, c.stream, 4)
	if withBucket {
		if _, err := c.s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &c.bucket}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []struct {
		dst    **faultproxy.Proxy
		target string
	}{{&c.os, e.OpenSearch}, {&c.s3, e.S3}, {&c.ddb, e.DynamoDB}} {
		px, err := faultproxy.NewProxy(p.target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = px.Close() })
		*p.dst = px
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		_, _ = c.db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &c.table})
		for _, u := range []string{e.OpenSearch + "/" + c.index + "-*", e.OpenSearch + "/_index_template/" + c.index} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
	c.f = newFleet(t, e, c.stream)
	cfg := fmt.Sprintf(`pipeline:
  processors:
    - type: parse
    - type: useragent
    - type: anonymize_ip
    - type: asset_id
      pattern: '^/assets/(?P<asset>[^/]+)/'
  sinks:
    - type: opensearch
      url: %s
      index: %s-{yyyy.MM.dd}
      flush_interval: 300ms
      backoff_max: 2s
      request_timeout: 10s
      shards: 1
      replicas: 0
    - type: s3
      bucket: %s
      max_age: 1s
      max_buffered_bytes: 262144
    - type: dynamodb
      table: %s
  dead_letter:
    type: s3
    bucket: %s
    prefix: dead-letter/
`, c.os.URL(), c.index, c.bucket, c.table, c.bucket)
	path := filepath.Join(c.f.dir, "leasehold.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env = []string{"LEASEHOLD_CONFIG=" + path, "LEASEHOLD_WORKER_FILE_SINK=",
		"AWS_ENDPOINT_URL_S3=" + c.s3.URL(), "AWS_ENDPOINT_URL_DYNAMODB=" + c.ddb.URL()}
	return c
}

// records returns the scenario's input, and records what must come out of
// it: generated CloudFront traffic and app events of the last hours (inside
// the accepted event-time window), CloudFront lines whose forwarded-for
// header uses every address form, and three bad records.
func (c *chaos) records(seed uint64, hours int) [][]byte {
	now := time.Now().UTC()
	out := generatedRecords(c.t, workload.Config{Seed: seed, Hours: hours, PeakHour: 500, AppEvents: 300 * hours, Assets: 200, Tenants: 8,
		Start: now.Add(-time.Duration(hours+1) * time.Hour)})
	for i := range 20 {
		out = append(out, []byte(xffLine(now.Add(-time.Duration(i)*time.Minute), fmt.Sprintf("chaos-xff-%d-%d", seed, i))))
	}
	for _, r := range out {
		c.exp.add(r)
	}
	if len(c.exp.poison) != 0 {
		c.t.Fatalf("generated input has %d records that do not parse", len(c.exp.poison))
	}
	// Bad input, without addresses so that it is stored as given.
	bad := map[string]string{
		fmt.Sprintf(`{"event_id":"bad-%d","event_type":"click","occurred_at":"%s"}`, seed, now.Format(time.RFC3339)): "parse",
		fmt.Sprintf("not a log line %d", seed): "parse",
		fmt.Sprintf(`{"event_id":"old-%d","event_type":"view","occurred_at":"2001-01-01T00:00:00Z","asset_id":"a","tenant_id":"t"}`, seed): "event_time",
	}
	for data, stage := range bad {
		c.bad[data] = stage
		out = append(out, []byte(data))
	}
	// Interleave the bad ones with the rest.
	sort.SliceStable(out, func(i, j int) bool { return fnvOf(out[i]) < fnvOf(out[j]) })
	c.t.Logf("%d records: %d valid (%d distinct documents), %d bad", len(out), c.exp.valid, len(c.exp.ids), len(bad))
	return out
}

func fnvOf(b []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// xffLine is a CloudFront standard-log line (33 fields) whose client and
// forwarded-for addresses must never be stored in full.
func xffLine(at time.Time, id string) string {
	xff := "[2001:db8::1],%20for=203.0.113.77,%20for=%22[2001:db8:cafe:1::42]:4711%22,%20203.0.113.077,%20198.51.100.17:80"
	return at.Format("2006-01-02\t15:04:05") + "\tLAX1\t392\t89.160.20.112\tGET\td111111abcdef8.cloudfront.net\t/assets/xff-asset/film.mp4\t200\t-\tMozilla/5.0\t-\t-\tHit\t" +
		id + "\tmedia.example.com\thttps\t23\t0.001\t" + xff + "\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\tvideo/mp4\t78\t-\t-"
}

// generatedRecords is the record data of a generated workload's CloudFront
// lines and app events.
func generatedRecords(t *testing.T, cfg workload.Config) [][]byte {
	t.Helper()
	var out [][]byte
	w := workload.New(cfg)
	if _, err := w.WriteLogs(func(string) (io.WriteCloser, error) { return &lineSink{t: t, out: &out}, nil }); err != nil {
		t.Fatal(err)
	}
	var ev bytes.Buffer
	if _, err := w.WriteAppEvents(&ev); err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(ev.Bytes()), []byte("\n")) {
		out = append(out, append([]byte(nil), l...))
	}
	return out
}

// start starts worker id and waits until it serves its metrics (the log
// line naming the address scrolls out of logTail once faults are logged).
func (c *chaos) start(id string) {
	c.f.start(id, c.env...)
	addr := c.f.metricsAddr(id)
	c.mu.Lock()
	c.addrs[id] = addr
	c.pids[id] = c.f.procs[id].Process.Pid
	c.mu.Unlock()
}

func (c *chaos) kill(id string) {
	c.noteRSS(id)
	c.f.kill(id)
	c.killed = true
}

// noteRSS records worker id's peak resident set size so far. It reads the
// pid noted at start, never the fleet's map, which the test goroutine
// changes while watchHealth's goroutine calls this.
func (c *chaos) noteRSS(id string) {
	c.mu.Lock()
	pid, ok := c.pids[id]
	c.mu.Unlock()
	if !ok {
		return
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return // not Linux: no figure
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			c.mu.Lock()
			c.rss[id] = max(c.rss[id], kb<<10)
			c.mu.Unlock()
		}
	}
}

// watchHealth polls worker id's /readyz and /metrics until the returned
// func is called, which reports whether the worker was ever not ready
// because of sink, and whether it reported stalled shards of sink.
func (c *chaos) watchHealth(id, sink string) func() (red, stalled bool) {
	c.mu.Lock()
	addr := c.addrs[id]
	c.mu.Unlock()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sawRed, sawStalled bool
	wg.Go(func() {
		client := &http.Client{Timeout: 2 * time.Second}
		for {
			if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "sink "+sink) {
					mu.Lock()
					sawRed = true
					mu.Unlock()
				}
			}
			if resp, err := client.Get("http://" + addr + "/metrics"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				prefix := `leasehold_sink_stalled_shards{sink="` + sink + `"} `
				for _, line := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(line, prefix); ok && v != "0" {
						mu.Lock()
						sawStalled = true
						mu.Unlock()
					}
				}
			}
			c.noteRSS(id)
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
	return func() (bool, bool) {
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return sawRed, sawStalled
	}
}

// finish waits until every output is complete, stops the workers (SIGTERM)
// and checks what the scenario promises.
func (c *chaos) finish(workers ...string) {
	t := c.t
	want := func(got counts) bool {
		return got.docs >= len(c.exp.ids) && got.s3Records >= c.exp.valid && got.ddbItems >= len(c.exp.ddbKeys) && got.deadLetters >= len(c.bad)
	}
	var got counts
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		got = countOutputs(t, c.e, c.s3c, c.db, c.bucket, c.table, c.index)
		if want(got) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	for _, id := range workers {
		c.noteRSS(id)
		c.f.stop(id)
	}
	got = countOutputs(t, c.e, c.s3c, c.db, c.bucket, c.table, c.index)
	docs, distinct := osCount(t, c.e.OpenSearch, c.index+"-*")
	t.Logf("valid records %d (distinct documents %d); OpenSearch %d docs (%d distinct ids); S3 %d records in %d objects, %d in two objects; DynamoDB %d items (want %d); dead letters %d",
		c.exp.valid, len(c.exp.ids), docs, distinct, got.s3Records, got.s3Objects, got.s3Dups, got.ddbItems, len(c.exp.ddbKeys), got.deadLetters)
	if docs != len(c.exp.ids) || distinct != docs {
		t.Errorf("OpenSearch holds %d documents (%d distinct ids), want each of %d exactly once", docs, distinct, len(c.exp.ids))
	}
	if got.s3Records != c.exp.valid || got.s3Dups != 0 {
		t.Errorf("S3 holds %d records, %d of them in more than one object; want each of %d exactly once", got.s3Records, got.s3Dups, c.exp.valid)
	}
	if got.ddbItems != len(c.exp.ddbKeys) {
		t.Errorf("DynamoDB holds %d items, want %d", got.ddbItems, len(c.exp.ddbKeys))
	}
	c.checkDeadLetters()
	c.checkNoRawAddress()
	c.mu.Lock()
	ids := make([]string, 0, len(c.rss))
	for id := range c.rss {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var figures []string
	for _, id := range ids {
		figures = append(figures, fmt.Sprintf("%s %d MiB", id, c.rss[id]>>20))
		if c.rss[id] > 1<<30 {
			t.Errorf("worker %s peaked at %d MiB resident: memory is not bounded", id, c.rss[id]>>20)
		}
	}
	c.mu.Unlock()
	t.Logf("peak RSS of the -race workers: %s", strings.Join(figures, ", "))
	if t.Failed() {
		for _, id := range []string{"a1", "a2", "a3", "b1", "b2", "d1", "d2", "c1", "c2"} {
			if _, err := os.Stat(filepath.Join(c.f.dir, id+".log")); err == nil {
				t.Logf("log of %s:\n%s", id, c.f.logTail(id))
			}
		}
	}
}

// checkDeadLetters: exactly the bad input, at the stage that must refuse
// it, redacted (anonymize_ip runs), with a reason; each once, unless a
// worker was killed between storing a dead letter and the checkpoint (dead
// letters are at least once: the replay stores it again).
func (c *chaos) checkDeadLetters() {
	t := c.t
	seen := map[string]int{}
	for _, key := range listAll(t, c.s3c, c.bucket, "dead-letter/") {
		for _, raw := range readGzipLines(t, c.s3c, c.bucket, key) {
			var l deadletter.Line
			if err := json.Unmarshal(raw, &l); err != nil {
				t.Errorf("dead letter %s: %v", key, err)
				continue
			}
			stage, bad := c.bad[string(l.Data)]
			switch {
			case !bad:
				t.Errorf("dead-lettered at %s, but not bad input: %s (%s)", l.Stage, l.Data, l.Error)
			case l.Stage != stage:
				t.Errorf("%s dead-lettered at %s, want %s (%s)", l.Data, l.Stage, stage, l.Error)
			case !l.Redacted || l.Error == "":
				t.Errorf("dead letter %+v: want redacted with a reason", l)
			}
			seen[string(l.Data)]++
		}
	}
	for data := range c.bad {
		if n := seen[data]; n == 0 || n > 1 && !c.killed {
			t.Errorf("bad input %s dead-lettered %d times, want once", data, n)
		} else if n > 1 {
			t.Logf("bad input %s dead-lettered %d times: the killed worker's dead letter was replayed", data, n)
		}
	}
}

// checkNoRawAddress: every client_ip and forwarded_for entry stored in
// OpenSearch, the S3 archive and DynamoDB is already truncated (the
// processor would not change it again).
func (c *chaos) checkNoRawAddress() {
	t := c.t
	a, err := transform.NewAnonymizeIP(transform.AnonymizeIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	type addrs struct {
		ClientIP     string   `json:"client_ip"`
		ForwardedFor []string `json:"forwarded_for"`
	}
	checked, bad := 0, 0
	check := func(where string, v addrs) {
		checked++
		for _, s := range append([]string{v.ClientIP}, v.ForwardedFor...) {
			if s != "" && a.Anonymize(s) != s {
				if bad++; bad <= 5 {
					t.Errorf("%s stores the raw address %q", where, s)
				}
			}
		}
	}
	for _, key := range listAll(t, c.s3c, c.bucket, "events/") {
		for _, line := range readGzipLines(t, c.s3c, c.bucket, key) {
			var v addrs
			_ = json.Unmarshal(line, &v)
			check("S3 "+key, v)
		}
	}
	var page struct {
		Hits struct {
			Hits []struct {
				Source addrs `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	osHTTP(t, http.MethodPost, c.e.OpenSearch+"/"+c.index+"-*/_search", `{"size":10000,"_source":["client_ip","forwarded_for"]}`, &page)
	for _, h := range page.Hits.Hits {
		check("OpenSearch", h.Source)
	}
	var start map[string]ddbtypes.AttributeValue
	for {
		out, err := c.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: &c.table, ExclusiveStartKey: start,
			ProjectionExpression: aws.String(dynamosink.AttrDoc + ", " + dynamosink.AttrClientIP)})
		if err != nil {
			t.Fatalf("scan %s: %v", c.table, err)
		}
		for _, it := range out.Items {
			var v addrs
			_ = json.Unmarshal([]byte(attrS(it, dynamosink.AttrDoc)), &v)
			check("DynamoDB doc", v)
			check("DynamoDB client_ip", addrs{ClientIP: attrS(it, dynamosink.AttrClientIP)})
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}
	if bad > 0 {
		t.Errorf("%d raw addresses stored", bad)
	}
	if checked == 0 {
		t.Error("no stored address was checked")
	}
}
