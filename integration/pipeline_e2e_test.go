package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/internal/dev/geoiptest"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/internal/dev/workload"
	"github.com/leasehold/leasehold/processors/dynamosink"
)

// cloudfrontFixture is the CloudFront package's fixture (see
// cloudfront/testdata/README.md), found from this package's folder.
const cloudfrontFixture = "../cloudfront/testdata/E1EXAMPLE.2019-12-04-21.mixed-33-fields.log"

// expected records what the stream holds, as the pipeline should see it.
type expected struct {
	ids       map[string]bool // event day + id: one OpenSearch document each (indices are per event day)
	ddbKeys   map[string]bool // pk|sk: one DynamoDB item each
	valid     int             // records that parse (each in exactly one S3 object)
	poison    []string        // raw data of records that must be dead-lettered
	geoByID   map[string]string
	assetByID map[string]string
}

func newExpected() *expected {
	return &expected{ids: map[string]bool{}, ddbKeys: map[string]bool{}, geoByID: map[string]string{}, assetByID: map[string]string{}}
}

// add parses data locally the way the pipeline will and records what must
// come out of it.
func (x *expected) add(data []byte) {
	var e event.Event
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		e, err = appevent.Parse(data)
	} else {
		e, err = cloudfront.ParseRecord(data)
	}
	if err != nil {
		x.poison = append(x.poison, string(data))
		return
	}
	if e.AssetID == "" {
		if m := assetRE(e.URI); m != "" {
			e.AssetID = m
		}
	}
	x.valid++
	x.ids[e.EventTime.UTC().Format("2006.01.02")+"/"+e.EventID] = true
	x.ddbKeys[dynamosink.PartitionKey(e.Tenant, e.AssetID)+"|"+dynamosink.SortKey(e.EventTime, e.EventID)] = true
	if e.ClientIP == "89.160.20.112" {
		x.geoByID[e.EventID] = "SE"
	}
	if e.AssetID != "" {
		x.assetByID[e.EventID] = e.AssetID
	}
}

func assetRE(uri string) string {
	rest, ok := strings.CutPrefix(uri, "/assets/")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return id
}

// putAll sends records, retrying failed entries until each is acknowledged.
func putAll(t *testing.T, kc *kinesis.Client, stream string, records [][]byte) {
	t.Helper()
	for start := 0; start < len(records); start += 200 {
		var entries []types.PutRecordsRequestEntry
		for _, r := range records[start:min(start+200, len(records))] {
			h := sha1.Sum(r)
			entries = append(entries, types.PutRecordsRequestEntry{Data: r, PartitionKey: aws.String(hex.EncodeToString(h[:8]))})
		}
		for attempt := 0; len(entries) > 0; attempt++ {
			if attempt > 50 {
				t.Fatal("PutRecords keeps failing")
			}
			out, err := kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &stream, Records: entries})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			var retry []types.PutRecordsRequestEntry
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					retry = append(retry, entries[i])
				}
			}
			entries = retry
		}
	}
}

// workloadRecords returns Kinesis record data for the fixture's lines and
// a few hours of generated CloudFront traffic, plus app events.
func workloadRecords(t *testing.T, seed uint64, hours int) [][]byte {
	t.Helper()
	var out [][]byte
	w := workload.New(workload.Config{Seed: seed, Hours: hours, PeakHour: 60, AppEvents: 80 * hours, Assets: 200, Tenants: 8,
		Start: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)})
	_, err := w.WriteLogs(func(key string) (io.WriteCloser, error) {
		return &lineSink{t: t, out: &out}, nil
	})
	if err != nil {
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

// lineSink gunzips a generated log file and turns each line into record
// data, the way the ingester does.
type lineSink struct {
	t   *testing.T
	buf bytes.Buffer
	out *[][]byte
}

func (s *lineSink) Write(p []byte) (int, error) { return s.buf.Write(p) }
func (s *lineSink) Close() error {
	zr, err := gzip.NewReader(&s.buf)
	if err != nil {
		return err
	}
	r := cloudfront.NewReader(zr)
	for {
		line, layout, err := r.ReadLine()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		*s.out = append(*s.out, cloudfront.AppendRecord(nil, layout, line))
	}
}

// fixtureRecords returns record data for every data line of the CloudFront
// fixture, the truncated one included.
func fixtureRecords(t *testing.T) [][]byte {
	b, err := os.ReadFile(cloudfrontFixture)
	if err != nil {
		t.Fatal(err)
	}
	layout, err := cloudfront.StandardLayout(33)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 || line[0] == '#' {
			continue
		}
		out = append(out, cloudfront.AppendRecord(nil, layout, bytes.TrimRight(line, "\r")))
	}
	return out
}

// TestPipelineEndToEnd: CloudFront fixture lines, generated CloudFront
// traffic and app events go through the stream to worker processes running
// the full pipeline. One worker is SIGKILLed mid-run and replaced. At the
// end every valid record is exactly once in OpenSearch (one document per
// event id, with geo and asset fields), in exactly one S3 object, and in
// DynamoDB; the truncated fixture line is in the dead-letter prefix with
// its reason.
func TestPipelineEndToEnd(t *testing.T) {
	e := testenv.Require(t, "kinesis", "dynamodb", "s3", "opensearch")
	kc, s3c, db := testenv.Kinesis(e), testenv.S3(e), testenv.DynamoDB(e)
	stream := testenv.Name(t, "e2e")
	bucket := testenv.Name(t, "e2e-bucket")
	table := testenv.Name(t, "e2e-assets")
	index := strings.ToLower(testenv.Name(t, "e2e-idx"))
	createStream(t, kc, stream, 4)
	if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	deleteBucketAtEnd(t, bucket)
	deleteIndicesAtEnd(t, index)
	t.Cleanup(func() { _, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &table}) })

	f := newFleet(t, e, stream)
	cfgPath := filepath.Join(f.dir, "leasehold.yaml")
	geo := geoiptest.Databases(t)
	cfg := fmt.Sprintf(`pipeline:
  processors:
    - type: parse
    - type: useragent
    - type: geoip
      city_db: %s
      asn_db: %s
    - type: anonymize_ip
    - type: asset_id
      pattern: '^/assets/(?P<asset>[^/]+)/'
  sinks:
    - type: opensearch
      url: %s
      index: %s-{yyyy.MM.dd}
      flush_interval: 300ms
    - type: s3
      bucket: %s
      prefix: events/
      max_age: 1s
    - type: dynamodb
      table: %s
  dead_letter:
    type: s3
    bucket: %s
    prefix: dead-letter/
  event_time:
    max_past: 3650d   # the CloudFront fixture is from 2019
`, geo.City, geo.ASN, e.OpenSearch, index, bucket, table, bucket)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"LEASEHOLD_CONFIG=" + cfgPath, "LEASEHOLD_WORKER_FILE_SINK=", "AWS_ENDPOINT_URL_S3=" + e.S3}

	exp := newExpected()
	// Phase 1 holds only valid records: a dead letter alone would let a
	// shard checkpoint before any sink wrote, and p1 would crash at that
	// checkpoint proving nothing. The fixture, with its poison line, comes
	// in phase 2.
	phase1 := workloadRecords(t, 7, 2)
	phase2 := append(fixtureRecords(t), workloadRecords(t, 8, 2)...)
	for _, r := range append(append([][]byte{}, phase1...), phase2...) {
		exp.add(r)
	}
	if len(exp.poison) != 1 {
		t.Fatalf("expected exactly the fixture's truncated line to be poison, got %d", len(exp.poison))
	}

	// p1 runs alone and crashes exactly when its sinks have made records
	// durable (S3 objects written, documents indexed, items stored) and
	// the checkpoint covering them is not yet written: the workers after
	// it replay records every sink already has.
	f.start("p1", append(env, "LEASEHOLD_FAILPOINT=worker.before-checkpoint")...)
	putAll(t, kc, stream, phase1)
	err, exited := f.waitExit("p1", 60*time.Second)
	if !exited {
		t.Fatalf("p1 never reached the failpoint\n%s", f.logTail("p1"))
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Fatalf("p1 did not crash at the failpoint: %v\n%s", err, f.logTail("p1"))
	}
	pre := countOutputs(t, e, s3c, db, bucket, table, index)
	if pre.s3Records == 0 || pre.docs == 0 || pre.ddbItems == 0 {
		t.Fatalf("p1 crashed before its sinks wrote anything (S3 %d, OpenSearch %d, DynamoDB %d): the replay would prove nothing", pre.s3Records, pre.docs, pre.ddbItems)
	}
	t.Logf("at the crash the sinks held: S3 %d records, OpenSearch %d docs, DynamoDB %d items — none of them checkpointed", pre.s3Records, pre.docs, pre.ddbItems)
	f.start("p2", env...)
	f.start("p3", env...)
	putAll(t, kc, stream, phase2)

	var got counts
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		got = countOutputs(t, e, s3c, db, bucket, table, index)
		if got.docs >= len(exp.ids) && got.s3Records >= exp.valid && got.ddbItems >= len(exp.ddbKeys) && got.deadLetters >= 1 {
			break
		}
		time.Sleep(2 * time.Second)
	}
	// The pipeline's own metrics: records per sink, per-stage latency.
	var metrics string
	for _, id := range []string{"p2", "p3"} {
		if resp, err := http.Get("http://" + f.metricsAddr(id) + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics += string(b)
		}
	}
	for _, want := range []string{`leasehold_sink_records_total{sink="opensearch"}`, `leasehold_sink_records_total{sink="s3"}`,
		`leasehold_processor_batch_seconds_bucket{stage="parse"`, `leasehold_sink_write_seconds_count{sink="dynamodb"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("worker metrics lack %s", want)
		}
	}
	f.stop("p2")
	f.stop("p3")
	got = countOutputs(t, e, s3c, db, bucket, table, index)
	t.Logf("records %d (valid %d, distinct ids %d); OpenSearch docs %d; S3 records %d in %d objects (%d duplicated); DynamoDB items %d; dead letters %d",
		len(phase1)+len(phase2), exp.valid, len(exp.ids), got.docs, got.s3Records, got.s3Objects, got.s3Dups, got.ddbItems, got.deadLetters)
	if got.docs != len(exp.ids) {
		t.Errorf("OpenSearch holds %d documents, want %d (one per event id and event day)", got.docs, len(exp.ids))
	}
	if got.s3Records != exp.valid || got.s3Dups != 0 {
		t.Errorf("S3 holds %d records (%d in more than one object), want each of %d exactly once", got.s3Records, got.s3Dups, exp.valid)
	}
	if got.ddbItems != len(exp.ddbKeys) {
		t.Errorf("DynamoDB holds %d items, want %d", got.ddbItems, len(exp.ddbKeys))
	}
	if got.deadLetters != 1 || !strings.Contains(got.deadLetterReason, "field") || got.deadLetterStage != "parse" {
		t.Errorf("dead letters: %d, stage %q, reason %q; want the truncated fixture line from parse with its reason", got.deadLetters, got.deadLetterStage, got.deadLetterReason)
	}
	checkDocFields(t, e, index, exp)
}

type counts struct {
	docs, s3Records, s3Objects, s3Dups, ddbItems, deadLetters int
	deadLetterReason, deadLetterStage                         string
}

func countOutputs(t *testing.T, e testenv.Endpoints, s3c *s3.Client, db *dynamodb.Client, bucket, table, index string) counts {
	var c counts
	ctx := context.Background()
	// OpenSearch
	if resp, err := http.Post(e.OpenSearch+"/"+index+"-*/_refresh", "application/json", nil); err == nil {
		resp.Body.Close()
	}
	if resp, err := http.Get(e.OpenSearch + "/" + index + "-*/_count"); err == nil {
		var v struct{ Count int }
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		c.docs = v.Count
	}
	// S3 archive: each stream record in exactly one object
	seen := map[string]int{}
	for _, obj := range listAll(t, s3c, bucket, "events/") {
		c.s3Objects++
		for _, line := range readGzipLines(t, s3c, bucket, obj) {
			var doc struct {
				SourceRecord struct {
					ShardID           string `json:"shard_id"`
					SequenceNumber    string `json:"sequence_number"`
					SubSequenceNumber int64  `json:"sub_sequence_number"`
				} `json:"source_record"`
			}
			if json.Unmarshal(line, &doc) == nil {
				seen[fmt.Sprintf("%s/%s/%d", doc.SourceRecord.ShardID, doc.SourceRecord.SequenceNumber, doc.SourceRecord.SubSequenceNumber)]++
			}
		}
	}
	for _, n := range seen {
		c.s3Records++
		if n > 1 {
			c.s3Dups++
		}
	}
	// DynamoDB
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: &table, Select: "COUNT"})
	for err == nil {
		c.ddbItems += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		out, err = db.Scan(ctx, &dynamodb.ScanInput{TableName: &table, Select: "COUNT", ExclusiveStartKey: out.LastEvaluatedKey})
	}
	// Dead letters
	for _, obj := range listAll(t, s3c, bucket, "dead-letter/") {
		for _, line := range readGzipLines(t, s3c, bucket, obj) {
			var dl struct{ Error, Stage, DataBase64 string }
			if json.Unmarshal(line, &dl) == nil {
				c.deadLetters++
				c.deadLetterReason, c.deadLetterStage = dl.Error, dl.Stage
			}
		}
	}
	return c
}

func listAll(t *testing.T, s3c *s3.Client, bucket, prefix string) []string {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Logf("list %s: %v", prefix, err)
			return keys
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

func readGzipLines(t *testing.T, s3c *s3.Client, bucket, key string) [][]byte {
	out, err := s3c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	zr, err := gzip.NewReader(out.Body)
	if err != nil {
		t.Fatalf("gunzip %s: %v", key, err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	return lines
}

// checkDocFields looks at a few documents: geo from the test database,
// anonymized IPs, asset ids from the URI, user-agent fields.
func checkDocFields(t *testing.T, e testenv.Endpoints, index string, exp *expected) {
	checked := 0
	for id, country := range exp.geoByID {
		doc := getDoc(t, e, index, id)
		if doc == nil {
			t.Errorf("document %s missing", id)
			continue
		}
		if doc.Geo.CountryISO != country {
			t.Errorf("document %s: geo.country_iso %q, want %s (GeoIP test database)", id, doc.Geo.CountryISO, country)
		}
		if doc.ClientIP != "89.160.20.0" {
			t.Errorf("document %s: client_ip %q, want anonymized 89.160.20.0", id, doc.ClientIP)
		}
		if doc.UA.Browser == "" {
			t.Errorf("document %s: no user-agent fields", id)
		}
		checked++
	}
	n := 0
	for id, asset := range exp.assetByID {
		if n++; n > 5 {
			break
		}
		doc := getDoc(t, e, index, id)
		if doc == nil || doc.AssetID != asset {
			t.Errorf("document %s: asset_id %v, want %s", id, doc, asset)
		}
	}
	if checked == 0 {
		t.Error("no document with a known GeoIP address was checked")
	}
}

func getDoc(t *testing.T, e testenv.Endpoints, index, id string) *event.Event {
	body := fmt.Sprintf(`{"query":{"ids":{"values":[%q]}}}`, id)
	resp, err := http.Post(e.OpenSearch+"/"+index+"-*/_search", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Hits struct {
			Hits []struct {
				Source event.Event `json:"_source"`
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || len(v.Hits.Hits) == 0 {
		return nil
	}
	return &v.Hits.Hits[0].Source
}
