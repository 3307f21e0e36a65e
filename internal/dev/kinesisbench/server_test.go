package kinesisbench

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/leasehold/leasehold/internal/awsconf"
)

func client(t *testing.T) *kinesis.Client {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.URL()), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		// Without it PutRecords failed about once in 25 runs with "use of
		// closed network connection" (see awsconf.RequestBodyWithoutWriteTo).
		APIOptions: []func(*middleware.Stack) error{awsconf.RequestBodyWithoutWriteTo},
	})
}

// TestReadsBackWhatWasPut drives the server with the AWS SDK's client, as
// the benchmark's workers do: shards cover the hash key space, each record
// lands in the shard its key hashes into, every iterator type starts where
// Kinesis starts it, and GetRecords honours Limit, the 10,000-record cap
// and MillisBehindLatest.
func TestReadsBackWhatWasPut(t *testing.T) {
	ctx := context.Background()
	kc := client(t)
	name := aws.String("s")
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: name, ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
	if err != nil || sum.StreamDescriptionSummary.StreamStatus != types.StreamStatusActive || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 3 {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	ls, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name})
	if err != nil || len(ls.Shards) != 3 {
		t.Fatalf("list shards: %+v %v", ls, err)
	}
	next := big.NewInt(0)
	for _, sh := range ls.Shards {
		start, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.StartingHashKey), 10)
		end, _ := new(big.Int).SetString(aws.ToString(sh.HashKeyRange.EndingHashKey), 10)
		if start.Cmp(next) != 0 || end.Cmp(start) < 0 {
			t.Fatalf("shard %s covers %s-%s, want it to start at %s", aws.ToString(sh.ShardId), start, end, next)
		}
		next.Add(end, big.NewInt(1))
	}
	if next.Cmp(hashSpace) != 0 {
		t.Fatalf("shards end at %s, want 2^128", next)
	}

	// 12,000 records: more than one GetRecords may return.
	const n = 12000
	byShard := map[string][]string{}
	for i := 0; i < n; i += 500 {
		var entries []types.PutRecordsRequestEntry
		for j := i; j < i+500; j++ {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", j)), Data: []byte(fmt.Sprint(j))})
		}
		out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: name, Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatal(err)
		}
		for j, r := range out.Records {
			byShard[aws.ToString(r.ShardId)] = append(byShard[aws.ToString(r.ShardId)], string(entries[j].Data))
		}
	}
	if len(byShard) != 3 {
		t.Fatalf("records went to %d shards, want 3", len(byShard))
	}
	// One shard holds over 10,000 only with ExplicitHashKey: put 10,001
	// more into shard 0.
	zero := aws.ToString(ls.Shards[0].ShardId)
	for i := 0; i < 10001; i += 500 {
		var entries []types.PutRecordsRequestEntry
		for j := i; j < min(i+500, 10001); j++ {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("x"), ExplicitHashKey: aws.String("0"), Data: []byte(fmt.Sprint("z", j))})
		}
		if _, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: name, Records: entries}); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			byShard[zero] = append(byShard[zero], string(e.Data))
		}
	}

	for _, sh := range ls.Shards {
		id := aws.ToString(sh.ShardId)
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		var got []types.Record
		for calls := 0; ; calls++ {
			out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Records) > MaxRecordsPerCall {
				t.Fatalf("%d records in one response", len(out.Records))
			}
			if len(out.Records) > 0 && len(got)+len(out.Records) < len(byShard[id]) && aws.ToInt64(out.MillisBehindLatest) == 0 && calls == 0 {
				t.Errorf("shard %s: MillisBehindLatest 0 with records left", id)
			}
			got = append(got, out.Records...)
			iter = out.NextShardIterator
			if len(out.Records) == 0 {
				if aws.ToInt64(out.MillisBehindLatest) != 0 {
					t.Errorf("shard %s: MillisBehindLatest %d at the tip", id, aws.ToInt64(out.MillisBehindLatest))
				}
				break
			}
		}
		if len(got) != len(byShard[id]) {
			t.Fatalf("shard %s: read %d records, put %d", id, len(got), len(byShard[id]))
		}
		for i, r := range got {
			if string(r.Data) != byShard[id][i] || time.Since(aws.ToTime(r.ApproximateArrivalTimestamp)) > time.Minute {
				t.Fatalf("shard %s record %d: %q at %v, want %q", id, i, r.Data, r.ApproximateArrivalTimestamp, byShard[id][i])
			}
			if i > 0 && !seqLess(aws.ToString(got[i-1].SequenceNumber), aws.ToString(r.SequenceNumber)) {
				t.Fatalf("shard %s: sequence numbers not increasing at %d", id, i)
			}
		}
		// AT_ and AFTER_SEQUENCE_NUMBER start at and after a record; Limit caps.
		mid := got[len(got)/2]
		for typ, want := range map[types.ShardIteratorType]int{types.ShardIteratorTypeAtSequenceNumber: len(got) / 2, types.ShardIteratorTypeAfterSequenceNumber: len(got)/2 + 1} {
			it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: sh.ShardId, ShardIteratorType: typ, StartingSequenceNumber: mid.SequenceNumber})
			if err != nil {
				t.Fatal(err)
			}
			out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(2)})
			if err != nil || len(out.Records) != 2 || string(out.Records[0].Data) != string(got[want].Data) {
				t.Fatalf("%s: %v %v, want 2 records from %q", typ, out, err, got[want].Data)
			}
		}
	}

	if _, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("nonsense")}); err == nil {
		t.Fatal("a foreign iterator was accepted")
	}
	if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: name}); err != nil {
		t.Fatal(err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: name}); !errors.As(err, &nf) {
		t.Fatalf("list shards of a deleted stream: %v, want ResourceNotFoundException", err)
	}
}

// TestResponseBytesCapped: a response stops before 10 MiB of data and
// partition keys.
func TestResponseBytesCapped(t *testing.T) {
	ctx := context.Background()
	kc := client(t)
	name := aws.String("big")
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: name, ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 900<<10)
	for range 2 {
		var entries []types.PutRecordsRequestEntry
		for range 6 {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: data})
		}
		if _, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: name, Records: entries}); err != nil {
			t.Fatal(err)
		}
	}
	it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: name, ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if want := MaxBytesPerCall / (len(data) + 1); len(out.Records) != want {
		t.Fatalf("%d records of %d bytes in one response, want %d (10 MiB)", len(out.Records), len(data)+1, want)
	}
}
