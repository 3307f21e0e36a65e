// Package producer is a batching Kinesis producer: Put buffers records, a
// send loop packs them into PutRecords calls within the Kinesis limits
// (500 records and 5 MiB per call, 1 MiB per record), retries exactly the
// entries that failed, and reports the outcome of every record. Nothing is
// dropped silently: a record is either written, or reported failed through
// the result handler and the error of Flush or Close.
//
// # Lifecycle
//
// New starts nothing. Run(ctx) runs the send loop until ctx ends or Close
// has drained the buffer; whoever calls Run owns that goroutine. Close(ctx)
// stops accepting records, sends what is buffered (through the running
// loop, or by running it itself when none runs) and returns once every
// record has an outcome or ctx ends, reporting the records not sent. Close
// uses its own context, so a shutdown can cancel Run's context at once and
// still drain within a grace period:
//
//	p, err := producer.New(client, "events")
//	go p.Run(ctx)
//	...
//	err = p.Close(graceCtx) // *FailedError lists what was not sent
//
// # Ordering
//
// Records are routed to shards by the stream's shard map (ListShards). At
// most one PutRecords call per shard is in flight, and records that failed
// go back to the front of their shard's queue, so records of one partition
// key are sent in Put order. A record that fails can still land after a
// later record of the same shard that succeeded in the same call, because
// Kinesis applies the entries of a call independently; WithStrictOrdering
// removes that case at the cost of one Kinesis record per shard per call.
// Timeouts and lost responses are retried, so delivery is at least once.
package producer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/kpl"
)

// KinesisAPI is the part of *kinesis.Client the producer uses.
// Implementations must be safe for concurrent use and honour ctx.
// ListShards may fail (e.g. AccessDenied): the producer then routes by
// hash ranges without the shard map.
type KinesisAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// Record is one user record.
type Record struct {
	// PartitionKey routes the record: 1 to 256 Unicode characters.
	PartitionKey string
	// ExplicitHashKey, when not empty, routes the record instead of the
	// partition key's hash: a decimal integer below 2^128.
	ExplicitHashKey string
	// Data is the payload. PutRecord copies it.
	Data []byte
	// Meta is carried untouched to the record's Result, for callers that
	// track progress (e.g. a file and line number).
	Meta any
}

// Stats is a snapshot of the producer's counters and gauges.
type Stats struct {
	RecordsPut     uint64 // records accepted by Put
	RecordsSent    uint64 // records written to Kinesis
	RecordsFailed  uint64 // records given up on
	RecordsRetried uint64 // record sends that were retries
	Throttled      uint64 // record sends refused by throttling
	BytesPut       uint64 // data plus partition key of accepted records
	BytesSent      uint64 // data plus partition key of written records
	KinesisRecords uint64 // Kinesis records written (an aggregate counts once)
	Calls          uint64 // PutRecords calls made
	CallErrors     uint64 // PutRecords calls that failed as a whole

	ShardMapRefreshes uint64 // successful ListShards refreshes
	BufferedRecords   int    // accepted, not yet resolved (includes in flight)
	BufferedBytes     int
	InFlightCalls     int
}

// pending is an accepted record on its way. Owned by the shard queue it
// sits in, or by the batch carrying it; read and written under Producer.mu
// except by the sender that carries it.
type pending struct {
	id       uint64
	rec      Record
	hash     kpl.HashKey
	size     int // len(Data) + len(PartitionKey)
	enqueued time.Time
	sends    int // times sent
	failures int // retryable, non-throttle failures
	code     string
	err      error
}

// shardQueue holds one shard's records in send order, and the shard's
// throttling state. Guarded by Producer.mu.
type shardQueue struct {
	id             string
	recs           []*pending
	bytes          int
	busy           bool      // a call carrying this shard's records is in flight
	notBefore      time.Time // backoff: no call for this shard before then
	quota          int       // Kinesis records per call; halved on throttling
	throttleStreak int       // consecutive throttled calls
}

// loopState is a running send loop: Run's, or Close's own.
type loopState struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the loop has returned
}

// flushWaiter is a Flush waiting for the records accepted before it.
type flushWaiter struct {
	upTo      uint64 // records with id <= upTo
	remaining int
	failed    []Result
	omitted   int
	done      chan struct{}
}

// Producer batches records into PutRecords calls. Its methods are safe for
// concurrent use.
type Producer struct {
	client KinesisAPI
	stream string
	cfg    config
	log    *zap.Logger
	wake   chan struct{} // capacity 1: tells the send loop to plan again

	mu sync.Mutex
	// Everything below is guarded by mu.
	closed        bool
	closeDone     chan struct{} // closed when Close has finished
	closeErr      error
	loop          *loopState // the running send loop, or nil
	nextID        uint64
	buffered      int
	bufferedBytes int
	space         chan struct{} // closed (and replaced) when space frees
	spaceWaiters  int
	smap          shardMap
	queues        []*shardQueue // parallel to smap.ranges
	pendingMap    *shardMap     // newer map, applied when no call is in flight
	mapLoaded     bool          // the first ListShards has answered
	refreshing    bool
	refreshWanted bool
	lastRefresh   time.Time
	nextRefresh   time.Time
	inflight      int
	rr            int // where the next batch starts scanning queues
	flushUpTo     uint64
	waiters       []*flushWaiter
	failed        []Result
	omitted       int
	stats         Stats
	agg           *kpl.Aggregator // used only while building a batch
}

// New returns a producer for stream. It validates the options and starts
// no goroutine: call Run. The error reports an invalid option.
func New(client KinesisAPI, stream string, opts ...Option) (*Producer, error) {
	if client == nil {
		return nil, fmt.Errorf("producer: nil client")
	}
	if stream == "" {
		return nil, fmt.Errorf("producer: empty stream name")
	}
	cfg := defaults()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.aggMaxBytes == 0 {
		cfg.aggMaxBytes = cfg.maxRecordBytes
	}
	agg, err := kpl.NewAggregator(kpl.Config{MaxBytes: cfg.aggMaxBytes, MaxRecords: cfg.aggMaxRecords})
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	p := &Producer{
		client: client,
		stream: stream,
		cfg:    cfg,
		log:    cfg.log.With(zap.String("stream", stream)),
		wake:   make(chan struct{}, 1),
		space:  make(chan struct{}),
		smap:   virtualMap(),
		agg:    agg,
	}
	p.mapLoaded = !cfg.shardMap
	for _, r := range p.smap.ranges {
		p.queues = append(p.queues, &shardQueue{id: r.id, quota: cfg.batchRecords})
	}
	return p, nil
}

// Put is PutRecord with only a partition key and data.
func (p *Producer) Put(ctx context.Context, partitionKey string, data []byte) error {
	return p.PutRecord(ctx, Record{PartitionKey: partitionKey, Data: data})
}

// PutRecord validates and buffers a record; it returns once the record is
// accepted, not sent. It copies r.Data. With the Block policy it waits for
// buffer space until ctx ends; with FailFast it returns ErrBufferFull.
//
// Errors: ErrInvalidRecord (wrapped, with the reason) for a record Kinesis
// would reject, ErrClosed after Close, ErrBufferFull, or ctx's error. On
// any error the record was not accepted and will get no Result.
func (p *Producer) PutRecord(ctx context.Context, r Record) error {
	if err := kpl.ValidatePartitionKey(r.PartitionKey); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	hash, err := kpl.EffectiveHashKey(r.PartitionKey, r.ExplicitHashKey)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	size := len(r.Data) + len(r.PartitionKey)
	if size > p.cfg.maxRecordBytes {
		return fmt.Errorf("%w: %d bytes (data %d + partition key %d) exceeds the %d-byte record limit",
			ErrInvalidRecord, size, len(r.Data), len(r.PartitionKey), p.cfg.maxRecordBytes)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("producer: put: %w", context.Cause(ctx))
	}
	// Non-nil even when empty: the SDK rejects a nil Data.
	r.Data = append(make([]byte, 0, len(r.Data)), r.Data...)

	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		if p.buffered < p.cfg.bufferRecords && p.bufferedBytes+size <= p.cfg.bufferBytes {
			break
		}
		if p.cfg.policy == FailFast {
			p.mu.Unlock()
			return ErrBufferFull
		}
		space := p.space
		p.spaceWaiters++
		p.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			p.mu.Lock()
			p.spaceWaiters--
			p.mu.Unlock()
			return fmt.Errorf("producer: wait for buffer space: %w", context.Cause(ctx))
		}
		p.mu.Lock()
		p.spaceWaiters--
	}
	p.nextID++
	pd := &pending{id: p.nextID, rec: r, hash: hash, size: size, enqueued: p.cfg.clock.Now()}
	q := p.queues[p.smap.find(hash)]
	q.recs = append(q.recs, pd)
	q.bytes += size
	p.buffered++
	p.bufferedBytes += size
	p.stats.RecordsPut++
	p.stats.BytesPut += uint64(size)
	// Wake the loop when this record may change its plan: a queue that was
	// empty gets a linger deadline, a queue that just filled can go now.
	wake := len(q.recs) == 1 || p.cfg.linger == 0 || p.fullLocked(q)
	p.mu.Unlock()
	if wake {
		p.poke()
	}
	return nil
}

// poke wakes the send loop without blocking.
func (p *Producer) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run runs the send loop: it sends batches, retries failures and reports
// outcomes until ctx ends or Close has drained the buffer. It blocks; call
// it once, typically in its own goroutine.
//
// It returns nil when stopped by Close, ctx's error when ctx ended first
// (records still buffered then stay buffered for Close; calls in flight
// are abandoned and their records re-queued, which may duplicate them),
// ErrClosed if Close had already begun, and ErrRunning if a loop is
// already running.
func (p *Producer) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	if p.loop != nil {
		p.mu.Unlock()
		return ErrRunning
	}
	ls := p.startLoopLocked(ctx)
	p.mu.Unlock()
	drained := p.runLoop(ls.ctx)
	p.endLoop(ls)
	if drained {
		return nil
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed && ctx.Err() == nil {
		return nil // Close gave up on draining and stopped us
	}
	return ctx.Err()
}

func (p *Producer) startLoopLocked(parent context.Context) *loopState {
	ctx, cancel := context.WithCancelCause(parent)
	ls := &loopState{ctx: ctx, cancel: cancel, done: make(chan struct{})}
	p.loop = ls
	return ls
}

func (p *Producer) endLoop(ls *loopState) {
	ls.cancel(nil)
	p.mu.Lock()
	p.loop = nil
	p.mu.Unlock()
	close(ls.done)
}

// runLoop plans and starts calls until ctx ends (returns false) or the
// producer is closed and empty (returns true). Every goroutine it starts
// (senders, shard map refreshes) has returned when it returns.
func (p *Producer) runLoop(ctx context.Context) (drained bool) {
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	for {
		p.mu.Lock()
		now := p.cfg.clock.Now()
		p.maybeRefreshLocked(ctx, now, &wg)
		p.applyMapLocked()
		for p.inflight < p.cfg.maxInFlight {
			b := p.nextBatchLocked(now)
			if b == nil {
				break
			}
			p.inflight++
			wg.Go(func() { p.send(ctx, b) })
		}
		if p.closed && p.buffered == 0 {
			p.mu.Unlock()
			return true
		}
		wakeAt, hasWake := p.nextWakeLocked(now)
		p.mu.Unlock()

		var timer Timer
		var tc <-chan time.Time
		if hasWake {
			timer = p.cfg.clock.TimerAt(wakeAt)
			tc = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-p.wake:
		case <-tc:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

// Flush sends everything accepted before the call without waiting for
// linger, and blocks until each of those records has an outcome (and its
// result handler has returned) or ctx ends. It makes progress only while
// a send loop runs (Run, or Close).
//
// It returns nil when all were written, a *FailedError listing those that
// failed, or ctx's error.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.buffered == 0 {
		p.mu.Unlock()
		return nil
	}
	w := &flushWaiter{upTo: p.nextID, remaining: p.buffered, done: make(chan struct{})}
	p.flushUpTo = p.nextID
	p.waiters = append(p.waiters, w)
	p.mu.Unlock()
	p.poke()
	select {
	case <-w.done:
		if len(w.failed) > 0 || w.omitted > 0 {
			return &FailedError{Records: w.failed, Omitted: w.omitted}
		}
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		for i, x := range p.waiters {
			if x == w {
				p.waiters = append(p.waiters[:i], p.waiters[i+1:]...)
				break
			}
		}
		p.mu.Unlock()
		return fmt.Errorf("producer: flush: %w", context.Cause(ctx))
	}
}

// Close stops accepting records (Put returns ErrClosed), sends everything
// buffered, and blocks until every record has an outcome or ctx ends. When
// ctx ends first, calls in flight are cancelled and every record not yet
// written fails with ctx's error. Run, if running, returns nil afterwards.
//
// It returns nil when every record the producer ever accepted was
// written, else a *FailedError listing the failed records (over the
// producer's whole life, up to WithMaxFailedKept) with their last error
// codes. Calling Close again waits for the first call and returns its
// result.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closeDone != nil {
		done := p.closeDone
		p.mu.Unlock()
		select {
		case <-done:
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.closeErr
		case <-ctx.Done():
			return fmt.Errorf("producer: close: %w", context.Cause(ctx))
		}
	}
	p.closed = true
	p.closeDone = make(chan struct{})
	p.broadcastSpaceLocked()
	p.mu.Unlock()
	p.poke()

	p.drain(ctx)

	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failed) > 0 || p.omitted > 0 {
		p.closeErr = &FailedError{Records: append([]Result(nil), p.failed...), Omitted: p.omitted}
	}
	close(p.closeDone)
	return p.closeErr
}

// drain sends what is buffered through the running loop, or runs the loop
// itself when none runs (never started, or its context ended), until the
// buffer is empty or ctx ends; then fails whatever is left.
func (p *Producer) drain(ctx context.Context) {
	for ctx.Err() == nil {
		p.mu.Lock()
		if p.buffered == 0 {
			p.mu.Unlock()
			return
		}
		ls := p.loop
		if ls == nil {
			ls = p.startLoopLocked(ctx)
			p.mu.Unlock()
			p.runLoop(ls.ctx)
			p.endLoop(ls)
			continue
		}
		p.mu.Unlock()
		select {
		case <-ls.done:
		case <-ctx.Done():
			ls.cancel(context.Cause(ctx))
			<-ls.done
		}
	}
	p.failRemaining(context.Cause(ctx))
}

// failRemaining resolves every queued record as failed because cause
// ended the drain. A record keeps the code of its last failed send, if it
// had one (throttled until the end reads as throttling), else "Canceled".
// No loop runs.
func (p *Producer) failRemaining(cause error) {
	p.mu.Lock()
	var outs []outcome
	for _, q := range p.queues {
		for _, pd := range q.recs {
			if pd.err != nil {
				pd.err = fmt.Errorf("producer: closed before the record was sent (last error: %v): %w", pd.err, cause)
			} else {
				pd.code, pd.err = "Canceled", fmt.Errorf("producer: closed before the record was sent: %w", cause)
			}
			outs = append(outs, outcome{pd: pd, failed: true})
		}
		clear(q.recs)
		q.recs, q.bytes = q.recs[:0], 0
	}
	p.mu.Unlock()
	p.deliver(outs)
}

// Stats returns a snapshot of the counters. It does not block on I/O.
func (p *Producer) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.BufferedRecords = p.buffered
	s.BufferedBytes = p.bufferedBytes
	s.InFlightCalls = p.inflight
	return s
}

// broadcastSpaceLocked wakes every Put waiting for buffer space.
func (p *Producer) broadcastSpaceLocked() {
	if p.spaceWaiters > 0 {
		close(p.space)
		p.space = make(chan struct{})
	}
}
