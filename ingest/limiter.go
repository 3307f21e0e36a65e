package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/leasehold/leasehold/internal/backoff"
)

// Kinesis write limits per open shard (PutRecord and PutRecords alike).
const (
	ShardRecordsPerSecond = 1000
	ShardBytesPerSecond   = 1 << 20
)

// Limiter caps the rate of records and bytes put, across every file of a
// run, with two token buckets that hold one second's worth each. Callers
// take what they put after the fact and sleep off any debt, so a bucket
// never needs to know sizes in advance. A nil *Limiter does not limit. It
// is safe for concurrent use.
type Limiter struct {
	rate [2]float64 // records/s, bytes/s; 0: that dimension is not limited
	now  func() time.Time
	// sleep waits d or until ctx ends; replaced in tests.
	sleep func(ctx context.Context, d time.Duration) error

	mu     sync.Mutex
	tokens [2]float64 // guarded by mu; negative is debt
	last   time.Time  // guarded by mu: when tokens were last refilled
}

// NewLimiter returns a limiter of recordsPerSecond and bytesPerSecond; 0
// leaves that dimension unlimited. It returns nil (no limit) when both are
// 0, and an error for a negative rate.
func NewLimiter(recordsPerSecond, bytesPerSecond float64) (*Limiter, error) {
	if recordsPerSecond < 0 || bytesPerSecond < 0 {
		return nil, fmt.Errorf("ingest: negative rate limit (%g records/s, %g bytes/s)", recordsPerSecond, bytesPerSecond)
	}
	if recordsPerSecond == 0 && bytesPerSecond == 0 {
		return nil, nil
	}
	l := &Limiter{rate: [2]float64{recordsPerSecond, bytesPerSecond}, now: time.Now, sleep: backoff.Sleep}
	l.tokens = l.rate // start with a full second's burst
	l.last = l.now()
	return l, nil
}

// Rates returns the limits: records and bytes per second (0: unlimited).
func (l *Limiter) Rates() (recordsPerSecond, bytesPerSecond float64) {
	if l == nil {
		return 0, 0
	}
	return l.rate[0], l.rate[1]
}

// Wait takes records and bytes from the buckets and blocks until the
// debt they leave is paid back at the configured rates, or ctx ends
// (then it returns ctx's cause; the tokens stay taken).
func (l *Limiter) Wait(ctx context.Context, records, bytes int) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	elapsed := now.Sub(l.last).Seconds()
	l.last = now
	var wait time.Duration
	for i, take := range [2]float64{float64(records), float64(bytes)} {
		if l.rate[i] == 0 {
			continue
		}
		l.tokens[i] = min(l.rate[i], l.tokens[i]+elapsed*l.rate[i]) - take
		if l.tokens[i] < 0 {
			wait = max(wait, time.Duration(-l.tokens[i]/l.rate[i]*float64(time.Second)))
		}
	}
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	if l.sleep(ctx, wait) != nil {
		return context.Cause(ctx)
	}
	return nil
}

// StreamRates returns the rates a run may use on a stream of openShards
// shards: share of the per-shard limits (1,000 records/s and 1 MiB/s).
// With aggregation no record rate is returned: Kinesis counts a KPL
// aggregate as one record however many lines it holds, so at ~2,500
// 400-byte lines per MiB the byte limit binds long before the record
// limit, and counting lines against it would throttle for nothing.
func StreamRates(openShards int, share float64, aggregated bool) (recordsPerSecond, bytesPerSecond float64) {
	records := float64(openShards*ShardRecordsPerSecond) * share
	if aggregated {
		records = 0
	}
	return records, float64(openShards*ShardBytesPerSecond) * share
}

// ShardLister is the part of the Kinesis client OpenShards uses.
type ShardLister interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// OpenShards counts the stream's open shards (those that take writes),
// paging through ListShards. It blocks for those calls.
func OpenShards(ctx context.Context, kc ShardLister, stream string) (int, error) {
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	open := 0
	for {
		out, err := kc.ListShards(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("list shards of %s: %w", stream, err)
		}
		for _, sh := range out.Shards {
			if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
				open++
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return open, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken} // with a token, no stream name
	}
}

// StreamLimiter returns the limiter for a run on stream: recordsPerSecond
// and bytesPerSecond where they are set (non-zero), the rest derived from
// the stream's open shards by StreamRates (one ListShards walk, only when
// something is derived). nil means no limit.
func StreamLimiter(ctx context.Context, kc ShardLister, stream string, recordsPerSecond, bytesPerSecond int, share float64, aggregated bool) (*Limiter, error) {
	r, b := float64(recordsPerSecond), float64(bytesPerSecond)
	if r == 0 || b == 0 {
		shards, err := OpenShards(ctx, kc, stream)
		if err != nil {
			return nil, fmt.Errorf("ingest: derive the rate limit: %w", err)
		}
		dr, db := StreamRates(shards, share, aggregated)
		if r == 0 {
			r = dr
		}
		if b == 0 {
			b = db
		}
	}
	return NewLimiter(r, b)
}
