package faultproxy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestShardLimiter(t *testing.T) {
	lim := AWSKinesisLimits()
	var l shardLimiter
	t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		if !l.allow(t0.Add(time.Duration(i)*100*time.Millisecond), lim) {
			t.Fatalf("call %d refused", i)
		}
	}
	if l.allow(t0.Add(999*time.Millisecond), lim) {
		t.Fatal("a sixth call within one second was admitted")
	}
	if !l.allow(t0.Add(time.Second), lim) {
		t.Fatal("the first call of the next second was refused")
	}
	// A 10 MiB response keeps the shard for 5 s.
	at := t0.Add(10 * time.Second)
	if !l.allow(at, lim) {
		t.Fatal("refused after a quiet spell")
	}
	l.charge(at, 10<<20, lim)
	if l.allow(at.Add(4900*time.Millisecond), lim) {
		t.Fatal("admitted 4.9 s after a 10 MiB response")
	}
	if !l.allow(at.Add(5*time.Second), lim) {
		t.Fatal("refused 5 s after a 10 MiB response")
	}
	// No limits: everything passes.
	var free shardLimiter
	for i := range 100 {
		if !free.allow(t0, KinesisLimits{}) {
			t.Fatalf("call %d refused without limits", i)
		}
		free.charge(t0, 10<<20, KinesisLimits{})
	}
}

func TestBase64Len(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 5, 1000} {
		s := base64.StdEncoding.EncodeToString(make([]byte, n))
		if got := base64Len(s); got != n {
			t.Errorf("base64Len of %d bytes = %d", n, got)
		}
	}
}

// fakeKinesis serves GetShardIterator and GetRecords for two shards
// with opaque iterators, as Kinesis does: "it-<shard>-<n>".
func fakeKinesis(t *testing.T, payload int) *httptest.Server {
	var mu sync.Mutex
	next := 0
	iterShard := map[string]string{}
	newIter := func(shard string) string {
		next++
		it := "it-" + strconv.Itoa(next)
		iterShard[it] = shard
		return it
	}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch Operation(r) {
		case "GetShardIterator":
			var in struct{ ShardId string }
			_ = json.Unmarshal(body, &in)
			_ = json.NewEncoder(w).Encode(map[string]string{"ShardIterator": newIter(in.ShardId)})
		case "GetRecords":
			var in struct{ ShardIterator string }
			_ = json.Unmarshal(body, &in)
			shard := iterShard[in.ShardIterator]
			recs := []map[string]any{{"SequenceNumber": "1", "PartitionKey": "pk", "Data": base64.StdEncoding.EncodeToString(make([]byte, payload)), "ApproximateArrivalTimestamp": 1.7e9}}
			_ = json.NewEncoder(w).Encode(map[string]any{"Records": recs, "NextShardIterator": newIter(shard), "MillisBehindLatest": 0})
		default:
			t.Errorf("unexpected operation %s", Operation(r))
		}
	}))
}

func kinesisClient(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
}

// TestKinesisProxyThrottlesEachShardAcrossClients runs two clients, as
// two independent consumers, through one proxy: the 5-calls-a-second
// limit is shared per shard, counted apart for each shard, and a refusal
// reaches the SDK as ProvisionedThroughputExceededException.
func TestKinesisProxyThrottlesEachShardAcrossClients(t *testing.T) {
	svc := fakeKinesis(t, 100)
	defer svc.Close()
	p, err := NewKinesisProxy(svc.URL, AWSKinesisLimits())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	a, b := kinesisClient(p.URL()), kinesisClient(p.URL())
	iter := func(c *kinesis.Client, shard string) *string {
		out, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeLatest})
		if err != nil {
			t.Fatal(err)
		}
		return out.ShardIterator
	}
	ia, ib, other := iter(a, "shard-0"), iter(b, "shard-0"), iter(a, "shard-1")
	var throttled int
	for i := range 6 { // a and b alternate on shard-0: 6 calls within a second
		c, it := a, &ia
		if i%2 == 1 {
			c, it = b, &ib
		}
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: *it})
		var pte *types.ProvisionedThroughputExceededException
		switch {
		case errors.As(err, &pte):
			throttled++
		case err != nil:
			t.Fatal(err)
		default:
			*it = out.NextShardIterator
		}
	}
	if throttled != 1 {
		t.Fatalf("%d of 6 calls on one shard within a second throttled, want 1", throttled)
	}
	if _, err := a.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: other}); err != nil {
		t.Fatalf("the other shard was throttled too: %v", err)
	}
	calls := p.Calls()
	if len(calls["shard-0"]) != 6 || len(calls["shard-1"]) != 1 || p.Throttled() != 1 {
		t.Fatalf("calls by shard %d/%d, throttled %d", len(calls["shard-0"]), len(calls["shard-1"]), p.Throttled())
	}
	if c := calls["shard-1"][0]; c.Records != 1 || c.Bytes != 100+len("pk") {
		t.Fatalf("recorded %+v, want 1 record of %d bytes", c, 100+len("pk"))
	}
}

// TestKinesisProxyByteRate: a response keeps the shard for as long as
// the byte rate needs to serve it (300 kB at 200 kB/s: 1.5 s; small
// sizes keep the test fast under -race).
func TestKinesisProxyByteRate(t *testing.T) {
	svc := fakeKinesis(t, 300_000-len("pk"))
	defer svc.Close()
	p, err := NewKinesisProxy(svc.URL, KinesisLimits{CallsPerSecond: 5, BytesPerSecond: 200_000})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	c := kinesisClient(p.URL())
	out, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shard-0"), ShardIteratorType: types.ShardIteratorTypeLatest})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: out.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: r.NextShardIterator})
	var pte *types.ProvisionedThroughputExceededException
	if time.Since(start) < time.Second && !errors.As(err, &pte) {
		t.Fatalf("a call right after 300 kB was answered: %v", err)
	}
	time.Sleep(time.Until(start.Add(1600 * time.Millisecond)))
	if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: r.NextShardIterator}); err != nil {
		t.Fatalf("a call 1.6 s after 300 kB was refused: %v", err)
	}
	p.SetLimits(KinesisLimits{})
	for range 6 {
		if _, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: r.NextShardIterator}); err != nil {
			t.Fatalf("refused without limits: %v", err)
		}
	}
}

func TestNewKinesisProxyRejectsBadInput(t *testing.T) {
	if _, err := NewKinesisProxy("ftp://x", KinesisLimits{}); err == nil || !strings.Contains(err.Error(), "not an http URL") {
		t.Fatalf("err %v", err)
	}
	if _, err := NewKinesisProxy("http://127.0.0.1:1", KinesisLimits{CallsPerSecond: -1}); err == nil {
		t.Fatal("negative limits accepted")
	}
}
