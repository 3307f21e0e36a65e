package worker

import (
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/internal/grid"
	"github.com/leasehold/leasehold/internal/limits"
)

// Kinesis limits that pacing respects (per shard, shared by every consumer
// of the shard that reads with GetRecords).
const (
	// MaxReadRateLimit is the most GetRecords calls per second a shard
	// answers; more are refused with ProvisionedThroughputExceeded.
	MaxReadRateLimit = limits.MaxReadRate
	// MaxReadBytesPerSecond is a shard's read rate (2 MiB/s): a 10 MiB
	// response makes the shard refuse calls for the next 5 seconds.
	MaxReadBytesPerSecond = limits.MaxReadBytesPerSecond
)

// Throttled GetRecords calls back off exponentially with jitter, from
// about throttleBase to at most throttleMax. The cap is short because a
// shard's limit is counted per second: waiting longer frees nothing more,
// and against a consumer that reads at the full 5 calls per second a few
// refusals in a row would leave a polite reader 20 s behind (seen with a
// 10 s cap).
const (
	throttleBase = time.Second
	throttleMax  = 3 * time.Second
)

// pacer decides when a shard's consumer calls GetRecords next: promptly
// (never above the ceiling) while the shard is behind, one idle interval
// after the previous call while it is caught up, never faster than the
// shard's read rate allows for the bytes just read, and with jittered
// exponential backoff after ProvisionedThroughputExceeded. It only
// computes times; the consumer sleeps. Not safe for concurrent use: each
// consumer owns one.
//
// While caught up, calls fall on a grid of idle intervals from origin,
// which every consumer of a worker shares: the worker's caught-up shards
// are polled in the same instant, so the process wakes once per interval
// for all of them (and Go's sysmon with it) instead of once per shard.
// Each shard is still polled once per interval, and a record still waits
// half an interval for its poll on average. A zero origin turns the grid
// off: caught-up calls are then one interval after the previous start.
type pacer struct {
	idle       time.Duration // start to start while caught up
	origin     time.Time     // the caught-up grid: origin + n·idle (zero: none)
	gap        time.Duration // start to start at least (1 / ceiling)
	behind     int64         // MillisBehindLatest above which the shard is behind
	byteRate   float64       // bytes per second the shard may be read at
	maxRecords int           // the configured most records per call
	jitter     func(n int64) int64

	recordSize float64   // bytes per Kinesis record in the last batch that had any
	throttles  int       // consecutive throttled calls
	due        time.Time // the grid instant the coming call is for (zero: off the grid)
}

// newPacer returns the pacer for cfg (after cfg.defaults()), its
// caught-up calls on the grid from origin (zero: no grid). There is no
// grid when idle_time leaves the ceiling less than a tenth of an interval
// of slack (idle_time 250ms at max_read_rate 4): a call sent any later
// than its instant could not keep the next one, and the shard would be
// read at every other instant.
func newPacer(cfg Config, origin time.Time) *pacer {
	gap := time.Duration(float64(time.Second) / cfg.MaxReadRate)
	if cfg.IdleTime-gap < cfg.IdleTime/10 {
		origin = time.Time{}
	}
	return &pacer{
		idle:       cfg.IdleTime,
		origin:     origin,
		gap:        gap,
		behind:     cfg.BehindThreshold.Milliseconds(),
		byteRate:   float64(cfg.ReadBytesPerSecond),
		maxRecords: cfg.MaxRecords,
		jitter:     rand.Int64N,
		recordSize: 1024, // until a batch says otherwise
	}
}

// limit is the Limit for the next call: as many records as one ceiling
// interval's share of the byte rate holds at the recent record size, at
// most maxRecords. A shard that is behind is then read in batches of
// about byteRate/ceiling bytes (1 MB at the defaults) at the full byte
// rate, instead of 10 MiB batches followed by 5 s pauses.
func (p *pacer) limit() int {
	n := int(p.byteRate * p.gap.Seconds() / p.recordSize)
	return max(1, min(n, p.maxRecords))
}

// read is what one successful GetRecords call returned.
type read struct {
	start        time.Time // when the call was sent
	limit        int       // the call's Limit
	records      int       // Kinesis records (an aggregate counts once)
	bytes        int       // data and partition key bytes
	millisBehind int64
}

// behindTip reports whether the shard has more to read at once: a full
// batch, or the response says the shard's tip is further away than the
// threshold.
func (p *pacer) behindTip(r read) bool {
	return r.records >= r.limit || r.millisBehind > p.behind
}

// next returns when the call after r may start.
func (p *pacer) next(r read) time.Time {
	p.throttles = 0
	if r.records > 0 {
		p.recordSize = max(1, float64(r.bytes)/float64(r.records))
	}
	due := p.due
	p.due = time.Time{}
	if p.behindTip(r) {
		return r.start.Add(max(p.gap, p.bytesTime(r.bytes)))
	}
	if busy := p.bytesTime(r.bytes); busy > p.idle || p.origin.IsZero() {
		return r.start.Add(max(p.idle, p.gap, busy))
	}
	// Caught up. A call sent for a grid instant (late by the wake-up and
	// the calls sent before it in the same instant) is followed by the
	// next instant, so lateness does not push the shard off the grid;
	// the ceiling still holds, since the call began at most idle−gap
	// after its instant. Any other call (the first, one after a behind
	// or throttled read, or one later than that) joins the grid at the
	// instant nearest to one idle interval after its start, but not
	// before the ceiling allows: that one interval is between half and
	// one and a half idle intervals, one on average.
	if !due.IsZero() && !r.start.Before(due) && r.start.Sub(due) <= p.idle-p.gap {
		p.due = due.Add(p.idle)
		return p.due
	}
	next := p.nearest(r.start.Add(p.idle))
	if next.Before(r.start.Add(p.gap)) {
		next = next.Add(p.idle)
	}
	p.due = next
	return next
}

// nearest returns the grid instant nearest to t (the later one of two
// as near).
func (p *pacer) nearest(t time.Time) time.Time {
	return grid.Grid{Origin: p.origin, Every: p.idle}.Nearest(t)
}

// bytesTime is how long reading n bytes occupies the shard's read rate.
func (p *pacer) bytesTime(n int) time.Duration {
	return time.Duration(float64(n) / p.byteRate * float64(time.Second))
}

// throttled returns when to retry after a call sent at start was refused
// with ProvisionedThroughputExceeded: after a jittered wait that doubles
// with each refusal in a row (throttleBase/2 to throttleBase the first
// time, at most throttleMax), and never before the ceiling allows.
func (p *pacer) throttled(start time.Time) time.Time {
	p.throttles++
	p.due = time.Time{}
	wait := backoff.Policy{Min: throttleBase, Max: throttleMax, Jitter: backoff.Equal, Rand: p.jitter}.Delay(p.throttles)
	return start.Add(max(wait, p.gap))
}

// isThrottle reports a GetRecords refused for the shard's read limits.
func isThrottle(err error) bool {
	var pte *types.ProvisionedThroughputExceededException
	return errors.As(err, &pte)
}

// noSDKRetry turns the SDK's own retries off for GetRecords: a throttled
// call retried at once by the SDK would spend more of the shard's 5 calls
// per second that the pacer is trying to leave alone. The consumer's loop
// retries every failure itself, paced.
func noSDKRetry(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

// recordBytes is what Kinesis counts against a shard's read rate for
// records: data plus partition keys.
func recordBytes(rs []types.Record) int {
	n := 0
	for _, r := range rs {
		n += len(r.Data) + len(aws.ToString(r.PartitionKey))
	}
	return n
}

// readCounters count one shard's GetRecords calls for the metrics; the
// consumer adds, Stats reads.
type readCounters struct {
	calls, throttled, bytes atomic.Int64
}

// shard returns the counters of shardID, created on first use. They live
// as long as the worker, so a shard that comes back counts on.
func (m *metrics) shard(shardID string) *readCounters {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	if m.reads == nil {
		m.reads = map[string]*readCounters{}
	}
	rc := m.reads[shardID]
	if rc == nil {
		rc = &readCounters{}
		m.reads[shardID] = rc
	}
	return rc
}
