package producer

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/kpl"
)

// Kinesis limits the producer keeps within.
const (
	// MaxBatchRecords is the PutRecords limit on records per call.
	MaxBatchRecords = 500
	// MaxBatchBytes is the PutRecords limit on one call: data plus partition
	// keys of every record, 5 MiB.
	MaxBatchBytes = 5 << 20
	// MaxRecordBytes is the default Kinesis limit on one record, data plus
	// partition key: 1 MiB.
	MaxRecordBytes = kpl.MaxRecordBytes
	// shardBytesPerCall caps what one call carries for a single shard: a
	// shard ingests 1 MiB/s, so more would only be throttled.
	shardBytesPerCall = 1 << 20
	// virtualShards is how many equal hash ranges stand in for the shard
	// map while the real one is unknown.
	virtualShards = 8
)

// BufferPolicy says what Put does when the buffer is full.
type BufferPolicy int

const (
	// Block makes Put wait until there is space or its context ends.
	Block BufferPolicy = iota
	// FailFast makes Put return ErrBufferFull at once.
	FailFast
)

// Option configures a Producer. Each one documents its default.
type Option func(*config)

// config holds every tunable. Written by New only; read-only afterwards.
type config struct {
	linger          time.Duration
	batchRecords    int
	batchBytes      int
	maxRecordBytes  int
	bufferRecords   int
	bufferBytes     int
	policy          BufferPolicy
	maxInFlight     int
	maxAttempts     int
	neverGiveUp     bool
	backoffBase     time.Duration
	backoffMax      time.Duration
	requestTimeout  time.Duration
	aggregate       bool
	aggMaxBytes     int
	aggMaxRecords   int
	strictOrder     bool
	shardMap        bool
	shardMapRefresh time.Duration
	maxFailedKept   int
	onResult        func(Result)
	log             *zap.Logger
	clock           Clock
}

// defaults returns the configuration every option starts from.
func defaults() config {
	return config{
		linger:          100 * time.Millisecond,
		batchRecords:    MaxBatchRecords,
		batchBytes:      MaxBatchBytes,
		maxRecordBytes:  MaxRecordBytes,
		bufferRecords:   50_000,
		bufferBytes:     64 << 20,
		policy:          Block,
		maxInFlight:     4,
		maxAttempts:     10,
		backoffBase:     100 * time.Millisecond,
		backoffMax:      10 * time.Second,
		requestTimeout:  30 * time.Second,
		aggMaxBytes:     0, // follows maxRecordBytes
		shardMap:        true,
		shardMapRefresh: 5 * time.Minute,
		maxFailedKept:   10_000,
		log:             zap.NewNop(),
		clock:           realClock{},
	}
}

// Validate reports the first setting out of range.
func (c config) Validate() error {
	switch {
	case c.linger < 0:
		return fmt.Errorf("producer: linger %v is negative", c.linger)
	case c.batchRecords < 1 || c.batchRecords > MaxBatchRecords:
		return fmt.Errorf("producer: batch records %d out of range [1, %d]", c.batchRecords, MaxBatchRecords)
	case c.maxRecordBytes < 1024 || c.maxRecordBytes > 10<<20:
		return fmt.Errorf("producer: max record bytes %d out of range [1024, %d]", c.maxRecordBytes, 10<<20)
	case c.batchBytes < c.maxRecordBytes || c.batchBytes > 10<<20:
		return fmt.Errorf("producer: batch bytes %d out of range [max record bytes %d, %d]", c.batchBytes, c.maxRecordBytes, 10<<20)
	case c.bufferRecords < 1:
		return fmt.Errorf("producer: buffer records %d must be positive", c.bufferRecords)
	case c.bufferBytes < c.maxRecordBytes:
		return fmt.Errorf("producer: buffer bytes %d smaller than one record (%d)", c.bufferBytes, c.maxRecordBytes)
	case c.policy != Block && c.policy != FailFast:
		return fmt.Errorf("producer: unknown buffer policy %d", c.policy)
	case c.maxInFlight < 1:
		return fmt.Errorf("producer: max in flight %d must be positive", c.maxInFlight)
	case c.maxAttempts < 1:
		return fmt.Errorf("producer: max attempts %d must be positive", c.maxAttempts)
	case c.backoffBase <= 0 || c.backoffMax < c.backoffBase:
		return fmt.Errorf("producer: backoff base %v and max %v: need 0 < base <= max", c.backoffBase, c.backoffMax)
	case c.requestTimeout <= 0:
		return fmt.Errorf("producer: request timeout %v must be positive", c.requestTimeout)
	case c.aggMaxBytes != 0 && (c.aggMaxBytes < 1024 || c.aggMaxBytes > c.maxRecordBytes):
		return fmt.Errorf("producer: aggregation max bytes %d out of range [1024, max record bytes %d]", c.aggMaxBytes, c.maxRecordBytes)
	case c.aggMaxRecords < 0:
		return fmt.Errorf("producer: aggregation max records %d is negative", c.aggMaxRecords)
	case c.shardMapRefresh <= 0:
		return fmt.Errorf("producer: shard map refresh %v must be positive", c.shardMapRefresh)
	case c.maxFailedKept < 0:
		return fmt.Errorf("producer: max failed kept %d is negative", c.maxFailedKept)
	case c.log == nil:
		return fmt.Errorf("producer: nil logger")
	case c.clock == nil:
		return fmt.Errorf("producer: nil clock")
	}
	return nil
}

// WithLinger sets how long a record may wait for more to fill its batch
// before it is sent anyway. Default 100ms; 0 sends as soon as possible.
func WithLinger(d time.Duration) Option { return func(c *config) { c.linger = d } }

// WithBatchRecords caps records per PutRecords call. Default and maximum
// 500.
func WithBatchRecords(n int) Option { return func(c *config) { c.batchRecords = n } }

// WithBatchBytes caps the bytes (data plus partition keys) of one
// PutRecords call. Default 5 MiB, the Kinesis limit.
func WithBatchBytes(n int) Option { return func(c *config) { c.batchBytes = n } }

// WithMaxRecordBytes sets the largest record (data plus partition key)
// Put accepts. Default 1 MiB, the Kinesis default; raise it only for a
// stream configured for larger records (at most 10 MiB).
func WithMaxRecordBytes(n int) Option { return func(c *config) { c.maxRecordBytes = n } }

// WithBuffer bounds the records accepted but not yet resolved (sent or
// failed), by count and by bytes (data plus partition key). Default 50,000
// records and 64 MiB.
func WithBuffer(records, bytes int) Option {
	return func(c *config) { c.bufferRecords, c.bufferBytes = records, bytes }
}

// WithBufferPolicy chooses what Put does on a full buffer. Default Block.
func WithBufferPolicy(p BufferPolicy) Option { return func(c *config) { c.policy = p } }

// WithMaxInFlight caps concurrent PutRecords calls. Default 4. Calls never
// share a shard, so this only helps streams with several shards.
func WithMaxInFlight(n int) Option { return func(c *config) { c.maxInFlight = n } }

// WithMaxAttempts caps how many times a record is tried when sends fail
// with retryable errors other than throttling (InternalFailure, 5xx,
// timeouts, connection errors, a stream being updated, an expired session
// token: awserr's Kinesis Retry class). Default 10; ignored under
// WithNeverGiveUp. Throttling is backpressure,
// not failure: it never uses up attempts; records wait while the buffer
// fills and Put blocks (or fails fast).
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithNeverGiveUp makes the producer keep every accepted record until it
// is written, or until Close's context ends. Default off. Retryable
// failures are retried beyond WithMaxAttempts, and failures that are
// otherwise permanent — the stream was deleted, access denied, a KMS key disabled — are retried too, at the longest
// backoff, and logged at error level each time: an operator can fix their
// cause, and the records are still here when it is. Meanwhile the buffer
// fills and Put blocks (or fails fast), so the caller sees backpressure
// instead of losing records. For callers that have promised their records
// to someone, such as the HTTP collector after its 202.
func WithNeverGiveUp(on bool) Option { return func(c *config) { c.neverGiveUp = on } }

// WithBackoff sets the exponential backoff between retries: base doubles
// per consecutive failure up to max; each delay is jittered to between half
// and all of its value. Default 100ms to 10s.
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) { c.backoffBase, c.backoffMax = base, max }
}

// WithRequestTimeout bounds one PutRecords call. Default 30s. A timed-out
// call is retried; Kinesis may have written some of it, so a timeout can
// produce duplicates (as with any Kinesis producer).
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// WithAggregation turns KPL aggregation on or off. Default off. When on,
// user records that map to the same shard are packed into KPL aggregated
// records (see package kpl) so small records do not each cost a Kinesis
// record. Grouping needs the shard map (ListShards): the first calls wait
// for its first answer (at most the request timeout), and if it cannot be
// had only consecutive records with the same partition key are
// aggregated, so every aggregate stays on one shard as the Java KCL
// requires (it drops an aggregate holding a record outside its shard).
// After a reshard, aggregates built on the old map until the map is
// re-read may straddle shards: our consumer reads them whole, the Java
// KCL would drop them.
func WithAggregation(on bool) Option { return func(c *config) { c.aggregate = on } }

// WithAggregationLimits caps one aggregated record: its size in bytes
// (data plus partition key; 0 means the max record bytes, 1 MiB by
// default) and its user records (0, the default, means no cap but size).
func WithAggregationLimits(maxBytes, maxRecords int) Option {
	return func(c *config) { c.aggMaxBytes, c.aggMaxRecords = maxBytes, maxRecords }
}

// WithStrictOrdering sends at most one Kinesis record per shard per call.
// Default off. Normally a retried record can land after a later record of
// the same shard that succeeded in the same call; with strict ordering
// nothing later of that shard was in the call, so records of one
// partition key are written exactly in Put order (barring a shard map
// change mid-flight). Combine it with aggregation to keep throughput.
func WithStrictOrdering(on bool) Option { return func(c *config) { c.strictOrder = on } }

// WithShardMap enables the shard map (ListShards) used to group records
// by shard for aggregation, ordering and per-shard throttling. Default on.
// When off or when ListShards fails, the hash ring is split into 8 equal
// virtual ranges instead.
func WithShardMap(on bool) Option { return func(c *config) { c.shardMap = on } }

// WithShardMapRefresh sets how often the shard map is re-read. Default 5
// minutes; it is also re-read when Kinesis puts a record on a shard other
// than the predicted one (after a reshard).
func WithShardMapRefresh(d time.Duration) Option { return func(c *config) { c.shardMapRefresh = d } }

// WithMaxFailedKept caps how many failed records the producer keeps to
// report from Close; beyond it, failures are only counted
// (FailedError.Omitted). Default 10,000.
func WithMaxFailedKept(n int) Option { return func(c *config) { c.maxFailedKept = n } }

// WithResultHandler registers a function called exactly once per accepted
// record with its outcome, from the producer's goroutines, possibly
// concurrently, never while a lock is held. It must be safe for concurrent
// use and should return quickly: sends wait for it, and buffer space is
// freed only after it returns, so it must not Put into the same producer
// under the Block policy. Default none.
func WithResultHandler(f func(Result)) Option { return func(c *config) { c.onResult = f } }

// WithLogger sets the logger. Default a no-op logger.
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.log = l } }

// WithClock replaces the wall clock, for tests. Default the real clock.
func WithClock(cl Clock) Option { return func(c *config) { c.clock = cl } }
