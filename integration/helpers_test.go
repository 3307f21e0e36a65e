package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/leasehold/leasehold/internal/dev/testenv"
	"github.com/leasehold/leasehold/kpl"
	"github.com/leasehold/leasehold/processors/filesink"
)

// createStream creates a stream with n shards and waits until it is ACTIVE.
func createStream(t *testing.T, kc *kinesis.Client, name string, n int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &name, ShardCount: aws.Int32(n)}); err != nil {
		t.Fatalf("create stream %s: %v", name, err)
	}
	waitActive(t, kc, name)
	t.Cleanup(func() {
		_, _ = kc.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: &name, EnforceConsumerDeletion: aws.Bool(true)})
	})
}

func waitActive(t *testing.T, kc *kinesis.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		out, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: &name})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("stream %s never became ACTIVE", name)
}

// producer writes uniquely numbered records ("<n>") with partition key
// "pk-<n%keys>" until stopped; Sent reports how many were acknowledged.
type producer struct {
	kc     *kinesis.Client
	stream string
	keys   int
	next   atomic.Int64
	stop   chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	errs   []error
}

func startProducer(kc *kinesis.Client, stream string, keys int, perBatch int, pause time.Duration) *producer {
	p := &producer{kc: kc, stream: stream, keys: keys, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			p.putBatch(perBatch)
			time.Sleep(pause)
		}
	}()
	return p
}

// putBatch sends perBatch new records, retrying failed entries until each
// is acknowledged, so the acknowledged set is exactly 0..Sent-1.
func (p *producer) putBatch(perBatch int) {
	var entries []types.PutRecordsRequestEntry
	for range perBatch {
		n := p.next.Load() + int64(len(entries))
		entries = append(entries, types.PutRecordsRequestEntry{
			Data:         []byte(strconv.FormatInt(n, 10)),
			PartitionKey: aws.String(fmt.Sprintf("pk-%d", n%int64(p.keys))),
		})
	}
	pending := entries
	for attempt := 0; len(pending) > 0; attempt++ {
		out, err := p.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: &p.stream, Records: pending})
		if err != nil {
			if attempt > 50 {
				p.mu.Lock()
				p.errs = append(p.errs, err)
				p.mu.Unlock()
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var retry []types.PutRecordsRequestEntry
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				retry = append(retry, pending[i])
			}
		}
		pending = retry
	}
	p.next.Add(int64(perBatch))
}

func (p *producer) Stop() int64 {
	close(p.stop)
	<-p.done
	return p.next.Load()
}

// readLines reads every filesink line from the files.
func readLines(t *testing.T, paths ...string) []filesink.Line {
	t.Helper()
	var out []filesink.Line
	for _, path := range paths {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l filesink.Line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				continue // a line cut by a SIGKILL mid-write
			}
			out = append(out, l)
		}
		f.Close()
	}
	return out
}

// tally reports the record numbers 0..sent-1 never processed (lost), and
// the stream records processed more than once (dups, keyed by shard,
// sequence and sub-sequence number). Duplicates are counted per stream
// record, not per payload: when a PutRecords call times out after it was
// written, the producer's retry puts the same payload into the stream
// twice, which is the producer's duplicate, not the consumer's.
func tally(lines []filesink.Line, sent int64) (lost int64, dups map[string][]string) {
	seen := map[int64]bool{}
	byRecord := map[string][]string{}
	for _, l := range lines {
		if n, err := strconv.ParseInt(l.Data, 10, 64); err == nil {
			seen[n] = true
		}
		k := fmt.Sprintf("%s/%s/%d", l.ShardID, l.SequenceNumber, l.SubSequenceNumber)
		byRecord[k] = append(byRecord[k], l.WorkerID)
	}
	for i := int64(0); i < sent; i++ {
		if !seen[i] {
			lost++
		}
	}
	dups = map[string][]string{}
	for k, workers := range byRecord {
		if len(workers) > 1 {
			dups[k] = workers
		}
	}
	return lost, dups
}

type lineT = filesink.Line

// readStream reads every shard from TRIM_HORIZON to its end and returns
// the user records, deaggregated, in shard order. The tests that use it
// have finished writing before they read. Records that were not
// aggregated get their Kinesis partition key.
func readStream(t *testing.T, kc *kinesis.Client, stream string) []kpl.UserRecord {
	t.Helper()
	ctx := testenv.Context(t, 2*time.Minute)
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var out []kpl.UserRecord
	for _, sh := range shards.Shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatalf("get records from %s: %v", aws.ToString(sh.ShardId), err)
			}
			for _, rec := range res.Records {
				users, err := kpl.Deaggregate(rec.Data)
				if err != nil {
					t.Fatalf("record %s: %v", aws.ToString(rec.SequenceNumber), err)
				}
				for _, u := range users {
					if !u.Aggregated {
						u.PartitionKey = aws.ToString(rec.PartitionKey)
					}
					out = append(out, u)
				}
			}
			// A short page at the tip is the end: the local Kinesis takes
			// about half a second per call, so skip the empty one.
			if len(res.Records) < 10000 && aws.ToInt64(res.MillisBehindLatest) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	return out
}
