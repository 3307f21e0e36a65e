// Package collector takes app events (see package appevent) from HTTP
// clients or NDJSON streams, validates every one, and hands them to the
// batching Kinesis producer.
//
// # HTTP API
//
// Collector is an http.Handler for POST /v1/events: one JSON event
// (Content-Type application/json) or an NDJSON batch (application/x-ndjson,
// one event per line). A request is all or nothing: 202 means every event
// of it is in the producer's buffer; 400/401/404/405/413/415 mean none was
// taken (fix the request: resent unchanged it fails again); 503 means none
// was taken for lack of buffer room (resend the same request after
// Retry-After). Room for the whole request is reserved before the first
// event is put, so a full buffer never splits a request. Only a request
// overtaken by the end of Serve (it outlived half the shutdown grace) or
// an internal error can be split: its 503 or 500 says how many events,
// from the top, were accepted. The response body is always a Response.
// docs/COLLECTOR.md has the full contract.
//
// # Delivery
//
// "Accepted" means held until written: the producer writes an event
// within its linger (100 ms by default) unless Kinesis pushes back, and
// retries every failure without giving up while the process lives
// (producer.WithNeverGiveUp) — when Kinesis is unreachable the buffer
// fills and requests get 503, instead of accepted events being dropped.
// Serve's graceful shutdown sends everything buffered before it returns.
// Without a spool a crash (SIGKILL, OOM, power) loses what was buffered,
// at most Config.BufferRecords events. With Config.SpoolDir every event is
// written and fsynced to a local spool (package spool) before its 202,
// replayed by the next Serve, and forgotten once Kinesis confirms it, so a
// crash loses nothing; with a spool the collector can also start while
// Kinesis is unreachable (StartWithoutKinesis): it accepts events into the
// spool and reports Kinesis unreachable on Ready until Kinesis answers.
// Kinesis delivery is at least once (a timed-out call
// is retried; a crash between Kinesis' confirmation and the spool's mark
// sends the event again), so consumers deduplicate by event_id, as the
// OpenSearch sink does with its document id.
//
// Send does the same for an NDJSON stream (a file or stdin).
package collector

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/collector/spool"
	"github.com/leasehold/leasehold/internal/failpoint"
	"github.com/leasehold/leasehold/producer"
)

// Path is where the collector takes events.
const Path = "/v1/events"

var (
	// ErrShuttingDown is Ready's error once Serve has begun its graceful
	// shutdown; requests refused for it get 503.
	ErrShuttingDown = errors.New("collector: shutting down")
	// ErrNotServing is Ready's error before Serve has started.
	ErrNotServing = errors.New("collector: not serving yet")
)

// HTTP server timeouts. A request's whole body must arrive within
// readTimeout; the 5 MiB default body needs 170 KiB/s.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	// putTimeout bounds the producer Puts of one admitted request. Room
	// was taken before, so a Put waits at most for a result handler; this
	// is a safety net, not a tuning knob.
	putTimeout = 10 * time.Second
)

// Config tunes a Collector. Start from DefaultConfig; New validates.
type Config struct {
	// Token, when not empty, is the bearer token every request must carry
	// (Authorization: Bearer <token>); others get 401. Compared in
	// constant time. Never logged.
	Token string
	// MaxBodyBytes is the largest request body; larger ones get 413.
	// Default 5 MiB; at least appevent.MaxBodyBytes.
	MaxBodyBytes int64
	// MaxEventsPerRequest is the most events in one request; more get 413.
	// Default 500.
	MaxEventsPerRequest int
	// PartitionBy picks the partition key. Default ByAssetID.
	PartitionBy PartitionBy
	// BufferRecords and BufferBytes bound the events accepted but not yet
	// resolved (written or given up on), by count and by bytes (event plus
	// partition key). They become the producer's buffer. Default 50,000
	// events and 64 MiB.
	BufferRecords, BufferBytes int
	// BufferWait is how long a request waits for buffer room before it is
	// answered 503; 0 answers 503 at once (fail fast). Default 1 s.
	BufferWait time.Duration
	// RetryAfter is the Retry-After of a 503, rounded up to whole seconds.
	// Default 1 s.
	RetryAfter time.Duration
	// ShutdownGrace bounds Serve's graceful shutdown after ctx ends: the
	// first half for requests in progress, the rest for sending what is
	// buffered. Default 20 s.
	ShutdownGrace time.Duration
	// SpoolDir, when not empty, is a directory (created if missing) where
	// every accepted event is written and fsynced before its 202, and
	// kept until Kinesis confirms it; the next Serve sends what a crash
	// left there. Default empty: no spool, a crash loses the buffer.
	SpoolDir string
	// SpoolSegmentBytes is the size of one spool segment file. Default
	// spool.DefaultSegmentBytes (16 MiB).
	SpoolSegmentBytes int64
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:        5 << 20,
		MaxEventsPerRequest: 500,
		PartitionBy:         ByAssetID,
		BufferRecords:       50_000,
		BufferBytes:         64 << 20,
		BufferWait:          time.Second,
		RetryAfter:          time.Second,
		ShutdownGrace:       20 * time.Second,
	}
}

// Validate reports the first setting out of range.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes < minBodyBytes:
		return fmt.Errorf("collector: max body bytes %d below %d, the largest event", c.MaxBodyBytes, minBodyBytes)
	case c.MaxEventsPerRequest < 1:
		return fmt.Errorf("collector: max events per request %d must be positive", c.MaxEventsPerRequest)
	case c.BufferRecords < c.MaxEventsPerRequest:
		return fmt.Errorf("collector: buffer records %d below max events per request %d", c.BufferRecords, c.MaxEventsPerRequest)
	case c.BufferBytes < producer.MaxRecordBytes:
		return fmt.Errorf("collector: buffer bytes %d below one Kinesis record (%d)", c.BufferBytes, producer.MaxRecordBytes)
	case c.BufferWait < 0:
		return fmt.Errorf("collector: buffer wait %v is negative", c.BufferWait)
	case c.RetryAfter <= 0:
		return fmt.Errorf("collector: retry after %v must be positive", c.RetryAfter)
	case c.ShutdownGrace <= 0:
		return fmt.Errorf("collector: shutdown grace %v must be positive", c.ShutdownGrace)
	case c.SpoolSegmentBytes < 0:
		return fmt.Errorf("collector: spool segment bytes %d is negative", c.SpoolSegmentBytes)
	}
	return c.PartitionBy.Validate()
}

// Serving states.
const (
	stateNew int32 = iota
	stateReplaying
	stateServing
	stateDraining
	stateStopped
)

// Collector is the HTTP handler of POST /v1/events and owns the producer
// it feeds. ServeHTTP is safe for concurrent use; Serve runs the producer
// and an HTTP server until its ctx ends.
type Collector struct {
	cfg    Config
	log    *zap.Logger
	prod   *producer.Producer
	budget *budget
	m      *metrics
	spool  *spool.Dir     // nil without Config.SpoolDir
	replay []spool.Record // what the spool held at New; sent by Serve

	hasToken bool
	token    [sha256.Size]byte // SHA-256 of cfg.Token: compared in constant time whatever its length

	client producer.KinesisAPI // for the reachability probe
	stream string

	state       atomic.Int32
	kinesisDown atomic.Pointer[error] // set by StartWithoutKinesis until Kinesis answers
}

// EventRef rides on each event's producer.Record.Meta: its event_id and,
// with a spool, its spool record id (0 without). Its String is the
// event_id.
type EventRef struct {
	EventID string
	SpoolID uint64
}

// String returns the event_id.
func (r EventRef) String() string { return r.EventID }

// New returns a collector writing to stream through client. It validates
// cfg, builds the producer with opts (for linger, aggregation, logging,
// ...), opens the spool when cfg.SpoolDir is set (reading what a previous
// run left there) and starts nothing: call Serve, then nothing else may
// use the spool directory. The buffer size, the buffer policy, the result
// handler and never giving up are the collector's: WithBuffer,
// WithBufferPolicy, WithResultHandler and WithNeverGiveUp in opts are
// overridden. log may be nil (no logging). An error reports an invalid
// setting or a spool that cannot be opened.
func New(client producer.KinesisAPI, stream string, cfg Config, log *zap.Logger, opts ...producer.Option) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	c := &Collector{
		cfg:      cfg,
		log:      log,
		budget:   newBudget(cfg.BufferRecords, cfg.BufferBytes),
		hasToken: cfg.Token != "",
		token:    sha256.Sum256([]byte(cfg.Token)),
		client:   client,
		stream:   stream,
	}
	opts = append(opts[:len(opts):len(opts)],
		producer.WithBuffer(cfg.BufferRecords, cfg.BufferBytes),
		producer.WithBufferPolicy(producer.Block),
		producer.WithResultHandler(c.onResult),
		producer.WithNeverGiveUp(true),
	)
	p, err := producer.New(client, stream, opts...)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	c.prod = p
	if cfg.SpoolDir != "" {
		d, pending, err := spool.Open(cfg.SpoolDir, spool.Options{SegmentBytes: cfg.SpoolSegmentBytes})
		if err != nil {
			return nil, fmt.Errorf("collector: %w", err)
		}
		c.spool, c.replay = d, pending
	}
	c.m = newMetrics(p.Stats, c.budget, c.spool, func() bool { return c.kinesisDown.Load() != nil })
	return c, nil
}

// onResult is the producer's result handler: it frees the event's room in
// the budget, marks it done in the spool once written, and counts the
// outcome. The producer gives up on an event only when the shutdown's
// grace ends: with a spool the event stays there for the next start;
// without one it was answered 202 and is lost, and is logged with its
// event_id so it can be resent.
func (c *Collector) onResult(res producer.Result) {
	c.budget.release(1, len(res.Record.Data)+len(res.Record.PartitionKey))
	ref, _ := res.Record.Meta.(EventRef)
	if res.Err == nil {
		c.kinesisAnswered("write")
		if c.spool != nil {
			failpoint.Hit(failpoint.CollectorBeforeSpoolDone)
			c.spool.Done(ref.SpoolID)
		}
		c.m.sent.Inc()
		return
	}
	if c.spool != nil {
		c.m.kept.Inc()
		c.log.Warn("event not sent before the shutdown's grace ended; kept in the spool for the next start", zap.String("event_id", ref.EventID),
			zap.String("code", res.Code), zap.Int("attempts", res.Attempts), zap.Error(res.Err))
		return
	}
	c.m.failed.Inc()
	c.log.Error("event not sent", zap.String("event_id", ref.EventID), zap.String("code", res.Code),
		zap.Int("attempts", res.Attempts), zap.Error(res.Err))
}

// Ready reports whether the collector takes requests: nil while Serve
// serves, ErrNotServing before, ErrShuttingDown once the graceful shutdown
// has begun. While Kinesis has not answered since a start without it
// (StartWithoutKinesis) it reports ErrKinesisUnreachable, although
// requests are accepted into the spool. For /readyz. Safe for concurrent
// use.
func (c *Collector) Ready() error {
	switch c.state.Load() {
	case stateServing:
		if c.spool != nil {
			if err := c.spool.Err(); err != nil {
				return err
			}
		}
		return c.kinesisErr()
	case stateNew, stateReplaying:
		return ErrNotServing
	}
	return ErrShuttingDown
}

// SpoolStats returns the spool's figures; zero without a spool. Safe for
// concurrent use.
func (c *Collector) SpoolStats() spool.Stats {
	if c.spool == nil {
		return spool.Stats{}
	}
	return c.spool.Stats()
}

// ProducerStats returns the producer's counters. Safe for concurrent use.
func (c *Collector) ProducerStats() producer.Stats { return c.prod.Stats() }

// Serve runs the producer's send loop and an HTTP server for c on ln until
// ctx ends or the server fails, then shuts down gracefully within
// Config.ShutdownGrace: Ready turns ErrShuttingDown, the listener closes,
// the producer flushes without waiting for linger, requests in progress
// finish (for at most half the grace; then their connections are closed),
// and the producer sends everything buffered in the time left. It blocks until all of that is done and closes ln. Call
// it once.
//
// With a spool, Serve first puts the events a previous run left in it
// into the producer (Ready says ErrNotServing meanwhile), and keeps the
// spool's marks in step while it serves; at the end, events not sent in
// the grace stay in the spool for the next start.
//
// It returns nil when every accepted event was written (or, with a
// spool, is kept there); an error wrapping *producer.FailedError, listing
// the events lost (Record.Meta is an EventRef), when some were not; the
// server's error if it failed.
func (c *Collector) Serve(ctx context.Context, ln net.Listener) error {
	if !c.state.CompareAndSwap(stateNew, stateReplaying) {
		ln.Close()
		return errors.New("collector: Serve called twice")
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- c.prod.Run(runCtx) }()
	var spoolDone chan error // nil without a spool: never ready
	spoolCtx, stopSpool := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSpool()
	if c.spool != nil {
		spoolDone = make(chan error, 1)
		go func() { spoolDone <- c.spool.Run(spoolCtx) }()
	}
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		c.probeKinesis(probeCtx)
	}()
	defer func() {
		stopProbe()
		<-probeDone
	}()
	c.replaySpool(ctx)
	c.state.CompareAndSwap(stateReplaying, stateServing)

	srv := &http.Server{
		Handler:           c,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          zap.NewStdLog(c.log.Named("http")),
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
		serveDone = nil
	case err := <-spoolDone: // the spool broke: stop taking events we cannot keep
		spoolDone = nil
		serveErr = fmt.Errorf("spool: %w", err)
	}
	c.state.Store(stateDraining)
	start := time.Now()
	log := c.log.With(zap.Duration("grace", c.cfg.ShutdownGrace))
	log.Info("collector shutting down")

	// Requests first: they may still put events into the producer. Flush
	// meanwhile, so that requests waiting for buffer room get it without
	// waiting for linger; the flush's failures are Close's to report.
	httpCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(c.cfg.ShutdownGrace/2))
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		_ = c.prod.Flush(httpCtx)
	}()
	if err := srv.Shutdown(httpCtx); err != nil {
		log.Warn("requests still in progress at half the grace; closing their connections", zap.Error(err))
		_ = srv.Close()
	}
	cancel()
	<-flushed
	if serveDone != nil {
		<-serveDone // http.ErrServerClosed
	}

	closeCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), start.Add(c.cfg.ShutdownGrace))
	closeErr := c.prod.Close(closeCtx)
	cancel()
	stopRun()
	<-runDone
	if c.spool != nil {
		stopSpool()
		if spoolDone != nil {
			<-spoolDone
		}
		kept := c.spool.Stats().Pending
		if err := c.spool.Close(); err != nil {
			log.Error("closing the spool", zap.Error(err))
		}
		if closeErr != nil && kept > 0 {
			log.Warn("events not sent within the grace are kept in the spool and sent on the next start",
				zap.Int("events", kept), zap.String("spool_dir", c.cfg.SpoolDir))
			closeErr = nil
		}
	}
	c.state.Store(stateStopped)
	st := c.prod.Stats()
	log.Info("collector stopped", zap.Uint64("events_sent", st.RecordsSent), zap.Uint64("events_failed", st.RecordsFailed),
		zap.Duration("took", time.Since(start)))

	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = fmt.Errorf("collector: serve: %w", serveErr)
	} else {
		serveErr = nil
	}
	if closeErr != nil {
		closeErr = fmt.Errorf("collector: events accepted but not sent: %w", closeErr)
	}
	return errors.Join(serveErr, closeErr)
}

// replaySpool puts the events a previous run left in the spool into the
// producer, in the order they were accepted, taking their room in the
// budget like any request (waiting for it while Kinesis is slow). It
// stops early when ctx ends: what is left stays in the spool.
func (c *Collector) replaySpool(ctx context.Context) {
	if len(c.replay) == 0 {
		return
	}
	c.log.Info("sending the events a previous run left in the spool", zap.Int("events", len(c.replay)),
		zap.String("spool_dir", c.cfg.SpoolDir))
	for i, r := range c.replay {
		size := len(r.Data) + len(r.PartitionKey)
		if err := c.budget.acquire(ctx, 1, size); err != nil {
			c.log.Warn("stopped replaying the spool", zap.Int("left", len(c.replay)-i), zap.Error(err))
			break
		}
		ref := EventRef{EventID: bestEffortID(r.Data), SpoolID: r.ID}
		if err := c.prod.PutRecord(ctx, producer.Record{PartitionKey: r.PartitionKey, Data: r.Data, Meta: ref}); err != nil {
			c.budget.release(1, size)
			c.log.Warn("stopped replaying the spool", zap.Int("left", len(c.replay)-i), zap.Error(err))
			break
		}
		c.m.replayed.Inc()
	}
	c.replay = nil
}
