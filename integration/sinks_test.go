package integration

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/leasehold/leasehold/appevent"
	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/processors/deadletter"
	"github.com/leasehold/leasehold/processors/dynamosink"
	"github.com/leasehold/leasehold/processors/s3sink"
	"github.com/leasehold/leasehold/worker"
)

var sinkDay0 = time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC)

// sinkSeq is record n's sequence number: 56 digits, like Kinesis's.
func sinkSeq(n int) string { return fmt.Sprintf("49%054d", n) }

// sinkMsgs returns n parsed app events of one shard, their event times
// spread over `hours` hours (interleaved, as late data is), for assets
// a0..a4 of tenant acme.
func sinkMsgs(stream, shard string, n, hours int) []*processors.Message {
	out := make([]*processors.Message, n)
	for i := range out {
		out[i] = &processors.Message{
			Record: worker.Record{StreamName: stream, ShardID: shard, SequenceNumber: sinkSeq(i), PartitionKey: "pk", Data: []byte(strconv.Itoa(i)), ArrivalTime: sinkDay0},
			Event: event.Event{EventTime: sinkDay0.Add(time.Duration(i%hours)*time.Hour + time.Duration(i)*time.Second), EventType: event.TypeView,
				EventID: "ev-" + strconv.Itoa(i), Source: event.SourceApp, AssetID: "a" + strconv.Itoa(i%5), Tenant: "acme"},
			Parsed: true,
		}
	}
	return out
}

// sinkBucket creates a bucket that is emptied and deleted after the test.
func sinkBucket(t *testing.T, c *s3.Client) string {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	bucket := testenv.Name(t, "b")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		for _, k := range sinkKeys(t, c, bucket, "") {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
				t.Errorf("DeleteObject: %v", err)
			}
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("DeleteBucket: %v", err)
		}
	})
	return bucket
}

func sinkKeys(t *testing.T, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// sinkGunzip returns the lines of a gzipped object.
func sinkGunzip(t *testing.T, c *s3.Client, bucket, key string) [][]byte {
	t.Helper()
	ctx := testenv.Context(t, time.Minute)
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer obj.Body.Close()
	zr, err := gzip.NewReader(obj.Body)
	if err != nil {
		t.Fatalf("%s is not gzip: %v", key, err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("gunzip %s: %v", key, err)
	}
	return lines
}

var archiveKey = regexp.MustCompile(`^events/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/([^/]+)/([^/]+)/(\d+)-(\d+)\.ndjson\.gz$`)

// sinkArchive reads every archive object of the bucket and counts each
// record ("shard/sequence/sub"); it checks that each object's key names
// its first record and its partition, and that its lines are in order.
func sinkArchive(t *testing.T, c *s3.Client, bucket string) (map[string]int, []string) {
	t.Helper()
	counts := map[string]int{}
	keys := sinkKeys(t, c, bucket, "events/")
	for _, k := range keys {
		m := archiveKey.FindStringSubmatch(k)
		if m == nil {
			t.Fatalf("key %s is not <prefix>dt=…/hour=…/<stream>/<shard>/<seq>-<sub>.ndjson.gz", k)
		}
		var last checkpoint.Position
		for i, line := range sinkGunzip(t, c, bucket, k) {
			var ev event.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("%s line %d: %v", k, i+1, err)
			}
			sr := ev.SourceRecord
			pos := checkpoint.Position{Sequence: sr.SequenceNumber, Sub: sr.SubSequenceNumber}
			if i == 0 && (m[5] != sr.SequenceNumber || m[6] != strconv.FormatInt(sr.SubSequenceNumber, 10)) {
				t.Errorf("%s: first record is %s", k, pos)
			}
			if i > 0 && !checkpoint.Less(last, pos) {
				t.Errorf("%s: %s after %s", k, pos, last)
			}
			if d, h := ev.EventTime.Format("2006-01-02"), ev.EventTime.Format("15"); d != m[1] || h != m[2] {
				t.Errorf("%s holds an event of %s", k, ev.EventTime)
			}
			last = pos
			counts[sr.ShardID+"/"+pos.String()]++
		}
	}
	return counts, keys
}

// sinkExactlyOnce fails unless records 0..n-1 of shard are each archived
// exactly once.
func sinkExactlyOnce(t *testing.T, counts map[string]int, shard string, n int) {
	t.Helper()
	bad := 0
	for i := range n {
		if c := counts[shard+"/"+sinkSeq(i)]; c != 1 {
			if bad++; bad <= 5 {
				t.Errorf("%s record %d archived %d times", shard, i, c)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d records not archived exactly once", bad, n)
	}
}

// countingS3 counts the 412s the sink meets.
type countingS3 struct {
	*s3.Client
	exists atomic.Int64
}

func (c *countingS3) PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	out, err := c.Client.PutObject(ctx, in, opts...)
	var sc interface{ HTTPStatusCode() int }
	if errors.As(err, &sc) && sc.HTTPStatusCode() == 412 {
		c.exists.Add(1)
	}
	return out, err
}

type sinkDL struct {
	mu   sync.Mutex
	msgs []*processors.Message
}

func (d *sinkDL) DeadLetter(_ context.Context, msgs []*processors.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, msgs...)
	return nil
}

func sinkWrite(t *testing.T, ss processors.ShardSink, msgs []*processors.Message, batch int) {
	t.Helper()
	ctx := testenv.Context(t, 2*time.Minute)
	for i := 0; i < len(msgs); i += batch {
		if err := ss.Write(ctx, msgs[i:min(i+batch, len(msgs))]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	if err := ss.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func sinkOpen(t *testing.T, s processors.Sink, stream, shard string, dl processors.DeadLetterer) processors.ShardSink {
	t.Helper()
	ss, err := s.Open(t.Context(), worker.Shard{StreamName: stream, ShardID: shard}, dl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close() })
	return ss
}

// TestS3SinkArchivesEachRecordOnce writes events spanning three hours
// through a shard sink into the local S3, reads every object back, and
// finds each record exactly once; then replays with other batching (from
// the start and from the middle of objects) and as a zombie with a stale
// view (the 412 path), and still finds each record exactly once.
func TestS3SinkArchivesEachRecordOnce(t *testing.T) {
	e := testenv.Require(t, "s3")
	c := testenv.S3(e)
	bucket := sinkBucket(t, c)
	const n = 1000
	api := &countingS3{Client: c}
	newSink := func(maxRecords int) *s3sink.Sink {
		s, err := s3sink.New(api, s3sink.Options{Bucket: bucket, MaxRecords: maxRecords}, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ms := sinkMsgs("clicks", "shardId-000000000000", n, 3)

	start := time.Now()
	first := sinkOpen(t, newSink(150), "clicks", "shardId-000000000000", &sinkDL{})
	sinkWrite(t, first, ms, 37)
	t.Logf("archived %d records in %s", n, time.Since(start).Round(time.Millisecond))
	counts, keys := sinkArchive(t, c, bucket)
	sinkExactlyOnce(t, counts, "shardId-000000000000", n)
	if len(keys) != 9 { // 334/333/333 records per hour in objects of 150
		t.Errorf("%d objects, want 9: %v", len(keys), keys)
	}
	if d := first.Durable(); d.Sequence != sinkSeq(n-1) {
		t.Errorf("Durable %v, want the last record", d)
	}
	head, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(keys[0])})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("object %s: %d bytes, metadata %v", keys[0], aws.ToInt64(head.ContentLength), head.Metadata)

	for _, tc := range []struct {
		name        string
		from, batch int
		maxRecords  int
	}{
		{"replay from the start in other batches", 0, 50, 97},
		{"replay from the middle of objects", 333, 13, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := sinkOpen(t, newSink(tc.maxRecords), "clicks", "shardId-000000000000", &sinkDL{})
			sinkWrite(t, rs, ms[tc.from:], tc.batch)
			counts, again := sinkArchive(t, c, bucket)
			sinkExactlyOnce(t, counts, "shardId-000000000000", n)
			if len(again) != len(keys) {
				t.Errorf("the replay wrote %d new objects", len(again)-len(keys))
			}
		})
	}

	t.Run("zombie with a stale view meets 412s", func(t *testing.T) {
		const shard = "shardId-000000000001"
		ms := sinkMsgs("clicks", shard, 400, 2)
		zombie := sinkOpen(t, newSink(40), "clicks", shard, &sinkDL{})
		sinkWrite(t, zombie, ms[:10], 10) // it has listed both partitions now
		owner := sinkOpen(t, newSink(60), "clicks", shard, &sinkDL{})
		sinkWrite(t, owner, ms[10:], 25)
		before := api.exists.Load()
		sinkWrite(t, zombie, ms[10:], 7)
		counts, _ := sinkArchive(t, c, bucket)
		sinkExactlyOnce(t, counts, shard, 400)
		if got := api.exists.Load() - before; got == 0 {
			t.Error("the zombie met no 412")
		} else {
			t.Logf("the zombie's conditional puts were refused %d times; it skipped what the owner had written", got)
		}
		if d := zombie.Durable(); d.Sequence != sinkSeq(399) {
			t.Errorf("zombie Durable %v", d)
		}
	})
}

// TestS3SinkMissingBucketWaitsForTheOperator: a bucket that does not
// exist is the operator's to fix, not the records' fault. Against the real
// local S3 the sink keeps retrying (Flush returns only when its context
// ends, never a permanent error), reports one shard that cannot write with
// the S3 error, dead-letters nothing and makes nothing durable; once the
// bucket exists every record is written and durable.
func TestS3SinkMissingBucketWaitsForTheOperator(t *testing.T) {
	e := testenv.Require(t, "s3")
	bucket := testenv.Name(t, "missing")
	deleteBucketAtEnd(t, bucket)
	s, err := s3sink.New(testenv.S3(e), s3sink.Options{Bucket: bucket}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dl := &sinkDL{}
	ss := sinkOpen(t, s, "clicks", "shardId-000000000000", dl)
	msgs := sinkMsgs("clicks", "shardId-000000000000", 5, 1)
	if err := ss.Write(testenv.Context(t, time.Minute), msgs); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	err = ss.Flush(short)
	if !errors.Is(err, context.DeadlineExceeded) || processors.IsPermanent(err) {
		t.Fatalf("Flush into a missing bucket: %v; want it to keep retrying until its context ends", err)
	}
	if st := s.State(); st.CannotWrite != 1 || !strings.Contains(st.LastError, "NoSuchBucket") {
		t.Fatalf("state with the bucket missing: %+v; want one shard that cannot write, NoSuchBucket", st)
	}
	if len(dl.msgs) != 0 || !ss.Durable().IsZero() {
		t.Fatalf("%d dead letters, Durable %v, with the bucket missing", len(dl.msgs), ss.Durable())
	}

	if _, err := testenv.S3(e).CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	if err := ss.Flush(testenv.Context(t, time.Minute)); err != nil {
		t.Fatalf("Flush once the bucket exists: %v", err)
	}
	if got, want := ss.Durable(), msgs[len(msgs)-1].Position(); got != want {
		t.Fatalf("Durable %v once the bucket exists, want %v", got, want)
	}
	if st := s.State(); st.CannotWrite != 0 || st.Stalled != 0 {
		t.Fatalf("state after the bucket was created: %+v", st)
	}
	if len(dl.msgs) != 0 {
		t.Fatalf("%d dead letters", len(dl.msgs))
	}
}

// fixtureEvents parses the CloudFront fixture (which logs some requests
// twice with one x-edge-request-id) into messages, each asset being its URI.
func fixtureEvents(t *testing.T) []*processors.Message {
	t.Helper()
	path := cloudfrontFixture
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := cloudfront.NewReader(f)
	var out []*processors.Message
	for i := 0; ; i++ {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *cloudfront.LineError
		if errors.As(err, &le) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ev.Tenant, ev.AssetID = "cdn", ev.URI
		out = append(out, &processors.Message{Record: worker.Record{StreamName: "cf", ShardID: "shardId-000000000000", SequenceNumber: sinkSeq(i)}, Event: ev, Parsed: true})
	}
	return out
}

func sinkQuery(t *testing.T, c *dynamodb.Client, table, pk string, from, to time.Time) []map[string]ddbtypes.AttributeValue {
	t.Helper()
	in := &dynamodb.QueryInput{TableName: aws.String(table), KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":pk": &ddbtypes.AttributeValueMemberS{Value: pk}}}
	if !from.IsZero() {
		in.KeyConditionExpression = aws.String("pk = :pk AND sk BETWEEN :from AND :to")
		in.ExpressionAttributeValues[":from"] = &ddbtypes.AttributeValueMemberS{Value: dynamosink.SortKeyTime(from)}
		in.ExpressionAttributeValues[":to"] = &ddbtypes.AttributeValueMemberS{Value: dynamosink.SortKeyTime(to)}
	}
	var items []map[string]ddbtypes.AttributeValue
	p := dynamodb.NewQueryPaginator(c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(testenv.Context(t, time.Minute))
		if err != nil {
			t.Fatalf("Query %s: %v", pk, err)
		}
		items = append(items, out.Items...)
	}
	return items
}

func attrS(it map[string]ddbtypes.AttributeValue, name string) string {
	if v, ok := it[name].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// TestDynamoDBSinkAssetHistory backs events up to the local DynamoDB (two
// workers creating the table at once), reads one asset's history with a
// single Query, and sees duplicate request ids written once and an
// oversized item dead-lettered alone.
func TestDynamoDBSinkAssetHistory(t *testing.T) {
	e := testenv.Require(t, "dynamodb")
	c := testenv.DynamoDB(e)
	table := testenv.Name(t, "backup")
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	ctx := testenv.Context(t, 2*time.Minute)

	sinks := make([]*dynamosink.Sink, 2)
	var wg sync.WaitGroup
	for i := range sinks {
		wg.Go(func() {
			s, err := dynamosink.New(ctx, c, dynamosink.Options{Table: table}, nil)
			if err != nil {
				t.Errorf("worker %d: New: %v", i, err)
			}
			sinks[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	t.Run("asset history is one Query", func(t *testing.T) {
		const n = 600
		ms := sinkMsgs("clicks", "shardId-000000000000", n, 3)
		ss := sinkOpen(t, sinks[0], "clicks", "shardId-000000000000", &sinkDL{})
		start := time.Now()
		sinkWrite(t, ss, ms, 100)
		t.Logf("backed up %d events in %s", n, time.Since(start).Round(time.Millisecond))
		sinkWrite(t, ss, ms[200:], 77) // a replay overwrites
		items := sinkQuery(t, c, table, dynamosink.PartitionKey("acme", "a3"), time.Time{}, time.Time{})
		if len(items) != n/5 {
			t.Fatalf("asset a3 has %d items, want %d", len(items), n/5)
		}
		prev := ""
		for _, it := range items {
			if sk := attrS(it, "sk"); sk <= prev {
				t.Fatalf("history out of time order: %s after %s", sk, prev)
			} else {
				prev = sk
			}
			var ev event.Event
			if err := json.Unmarshal([]byte(attrS(it, dynamosink.AttrDoc)), &ev); err != nil || ev.AssetID != "a3" || attrS(it, dynamosink.AttrEventType) != "view" {
				t.Fatalf("item %v: doc %v", it, err)
			}
		}
		// Hour two only: events i%3 == 1.
		from, to := sinkDay0.Add(time.Hour), sinkDay0.Add(2*time.Hour)
		want := 0
		for _, m := range ms {
			if m.Event.AssetID == "a3" && !m.Event.EventTime.Before(from) && m.Event.EventTime.Before(to) {
				want++
			}
		}
		if got := len(sinkQuery(t, c, table, dynamosink.PartitionKey("acme", "a3"), from, to)); got != want {
			t.Fatalf("a3 in [%s, %s): %d items, want %d", from.Format("15:04"), to.Format("15:04"), got, want)
		}
	})

	t.Run("CloudFront duplicates are written once", func(t *testing.T) {
		ms := fixtureEvents(t)
		keys := map[string]bool{}
		assets := map[string]bool{}
		for _, m := range ms {
			keys[dynamosink.PartitionKey(m.Event.Tenant, m.Event.AssetID)+" "+dynamosink.SortKey(m.Event.EventTime, m.Event.EventID)] = true
			assets[m.Event.AssetID] = true
		}
		if len(keys) == len(ms) {
			t.Fatal("the fixture has no repeated request id any more")
		}
		ss := sinkOpen(t, sinks[1], "cf", "shardId-000000000000", &sinkDL{})
		sinkWrite(t, ss, ms, len(ms)) // one batch: DynamoDB would refuse duplicate keys
		total := 0
		for a := range assets {
			total += len(sinkQuery(t, c, table, dynamosink.PartitionKey("cdn", a), time.Time{}, time.Time{}))
		}
		if total != len(keys) {
			t.Fatalf("%d items for %d distinct keys (%d lines)", total, len(keys), len(ms))
		}
		t.Logf("%d fixture lines, %d distinct keys, %d items", len(ms), len(keys), total)
	})

	for _, tc := range []struct {
		name, reason string
		bad          func(m *processors.Message)
	}{
		// Caught before any request: the estimate is over 400 KB.
		{"an oversized item is dead-lettered alone", "400 KB", func(m *processors.Message) {
			m.Event.Properties = json.RawMessage(`{"blob":"` + strings.Repeat("x", 450<<10) + `"}`)
		}},
		// Refused by DynamoDB (ValidationException: a sort key over 1,024
		// bytes): the batch is retried item by item.
		{"an item DynamoDB refuses is dead-lettered alone", "rejected by DynamoDB", func(m *processors.Message) {
			m.Event.EventID = strings.Repeat("z", 1100)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dead.ndjson")
			dl, err := deadletter.NewFile(deadletter.FileOptions{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			asset := testenv.Name(t, "asset")
			ms := sinkMsgs("clicks", "shardId-000000000002", 30, 1)
			for _, m := range ms {
				m.Event.AssetID = asset
			}
			tc.bad(ms[7])
			ss := sinkOpen(t, sinks[0], "clicks", "shardId-000000000002", dl)
			sinkWrite(t, ss, ms, 30)
			if got := len(sinkQuery(t, c, table, dynamosink.PartitionKey("acme", asset), time.Time{}, time.Time{})); got != 29 {
				t.Fatalf("%d items, want 29", got)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var l deadletter.Line
			if err := json.Unmarshal(bytes.TrimSpace(b), &l); err != nil {
				t.Fatalf("dead letter %q: %v", b, err)
			}
			if l.SequenceNumber != sinkSeq(7) || l.Stage != "dynamodb" || !strings.Contains(l.Error, tc.reason) {
				t.Fatalf("dead letter %+v", l)
			}
			t.Logf("dead-lettered: %s", l.Error)
		})
	}
}

// TestDeadLetterS3 dead-letters poison messages into the local S3 and
// reads them back with their reason and raw data.
func TestDeadLetterS3(t *testing.T) {
	e := testenv.Require(t, "s3")
	c := testenv.S3(e)
	bucket := sinkBucket(t, c)
	dl, err := deadletter.NewS3(c, deadletter.S3Options{Bucket: bucket}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("{\"event_id\": \x00 not json")
	bad := &processors.Message{Record: worker.Record{StreamName: "clicks", ShardID: "shardId-000000000003", SequenceNumber: sinkSeq(42), SubSequenceNumber: 2, PartitionKey: "user-9", Data: raw}}
	_, perr := appevent.Parse(raw)
	bad.Fail("appevent", 1, perr)
	ctx := testenv.Context(t, time.Minute)
	before := time.Now().UTC()
	for range 2 { // a replay dead-letters the same failure again: stored once
		if err := dl.DeadLetter(ctx, []*processors.Message{bad}); err != nil {
			t.Fatal(err)
		}
	}
	keys := sinkKeys(t, c, bucket, "dead-letter/")
	if len(keys) != 1 || !strings.HasPrefix(keys[0], "dead-letter/dt="+before.Format("2006-01-02")+"/shardId-000000000003/"+sinkSeq(42)+"-2-appevent-") {
		t.Fatalf("keys %v", keys)
	}
	lines := sinkGunzip(t, c, bucket, keys[0])
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	var l deadletter.Line
	if err := json.Unmarshal(lines[0], &l); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.Data, raw) || l.Error != perr.Error() || l.Stage != "appevent" || l.PartitionKey != "user-9" || l.Stream != "clicks" || l.FailedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("dead letter %+v\nraw %q", l, raw)
	}
	t.Logf("dead letter %s: %s", keys[0], lines[0])
}

// TestSinksPipelineFromConfig builds a pipeline from YAML with the
// registry (s3 and dynamodb sinks, s3 dead letters), runs app-event
// records through it, and checks the per-sink checkpoint, the archive,
// the backup and the dead letter of the one poison record.
func TestSinksPipelineFromConfig(t *testing.T) {
	e := testenv.Require(t, "s3", "dynamodb")
	sc, dc := testenv.S3(e), testenv.DynamoDB(e)
	bucket := sinkBucket(t, sc)
	table := testenv.Name(t, "backup")
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		_, _ = dc.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
	})
	ctx := testenv.Context(t, 2*time.Minute)

	reg := processors.NewRegistry()
	s3sink.Register(reg)
	dynamosink.Register(reg)
	deadletter.Register(reg)
	reg.RegisterProcessor("appevent", func(context.Context, processors.Options, processors.Deps) (processors.Processor, error) {
		return processors.ProcessorFunc(func(_ context.Context, batch []*processors.Message) ([]*processors.Message, error) {
			for _, m := range batch {
				ev, err := appevent.Parse(m.Record.Data)
				if err != nil {
					m.Fail("appevent", 1, err)
					continue
				}
				m.Event, m.Parsed = ev, true
			}
			return batch, nil
		}), nil
	})
	cfg := fmt.Sprintf(`
processors:
  - type: appevent
sinks:
  - type: s3
    bucket: %s
    max_records: 20
  - type: dynamodb
    table: %s
dead_letter:
  type: s3
  bucket: %s
event_time:
  max_past: 3650d   # the events are from 2024
`, bucket, table, bucket)
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		t.Fatal(err)
	}
	spec, err := processors.ParseSpec(doc.Content[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := processors.Build(ctx, reg, spec, processors.Deps{S3: sc, DynamoDB: dc}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)

	var recs []worker.Record
	for i := range 100 {
		data := fmt.Sprintf(`{"event_id":"app-%d","event_type":"download","occurred_at":"2024-05-01T%02d:%02d:00+02:00","asset_id":"asset-%d","tenant_id":"acme"}`, i, 12+i%2, i%60, i%4)
		if i == 57 {
			data = `{"event_id":"app-57","event_type":"click"}`
		}
		recs = append(recs, worker.Record{StreamName: "app", ShardID: "shardId-000000000000", SequenceNumber: sinkSeq(i), PartitionKey: "k", Data: []byte(data)})
	}
	sp, err := p.Factory()(ctx, worker.Shard{StreamName: "app", ShardID: "shardId-000000000000", Start: checkpoint.Checkpoint{Position: checkpoint.Position{Sequence: checkpoint.TrimHorizon}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close(worker.CloseShutdown)
	for i := 0; i < len(recs); i += 30 {
		if err := sp.Process(ctx, recs[i:min(i+30, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := sp.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Position.Sequence != sinkSeq(99) || cp.Sinks["s3"].Sequence != sinkSeq(99) || cp.Sinks["dynamodb"].Sequence != sinkSeq(99) {
		t.Fatalf("checkpoint %+v", cp)
	}

	counts, _ := sinkArchive(t, sc, bucket)
	for i := range 100 {
		want := 1
		if i == 57 {
			want = 0
		}
		if got := counts["shardId-000000000000/"+sinkSeq(i)]; got != want {
			t.Errorf("record %d archived %d times, want %d", i, got, want)
		}
	}
	if got := len(sinkQuery(t, dc, table, dynamosink.PartitionKey("acme", "asset-1"), time.Time{}, time.Time{})); got != 24 { // 25, less the poison record 57
		t.Errorf("asset-1 has %d items, want 24", got)
	}
	keys := sinkKeys(t, sc, bucket, "dead-letter/")
	if len(keys) != 1 {
		t.Fatalf("dead letters %v", keys)
	}
	var l deadletter.Line
	if err := json.Unmarshal(sinkGunzip(t, sc, bucket, keys[0])[0], &l); err != nil {
		t.Fatal(err)
	}
	if l.SequenceNumber != sinkSeq(57) || l.Stage != "appevent" || !strings.Contains(l.Error, "click") || string(l.Data) != `{"event_id":"app-57","event_type":"click"}` {
		t.Fatalf("dead letter %+v", l)
	}
}
