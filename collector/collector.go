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
// "Accepted" means buffered, not yet written: the producer writes an event
// within its linger (100 ms by default) unless Kinesis pushes back, and
// retries failures. Serve's graceful shutdown sends everything buffered
// before it returns; a crash (SIGKILL, OOM, power) loses what was buffered,
// at most Config.BufferRecords events. Kinesis delivery is at least once
// (a timed-out call is retried), so consumers deduplicate by event_id, as
// the OpenSearch sink does with its document id.
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
	}
	return c.PartitionBy.Validate()
}

// Serving states.
const (
	stateNew int32 = iota
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

	hasToken bool
	token    [sha256.Size]byte // SHA-256 of cfg.Token: compared in constant time whatever its length

	state atomic.Int32
}

// New returns a collector writing to stream through client. It validates
// cfg, builds the producer with opts (for linger, aggregation, logging,
// ...) and starts nothing: call Serve. The buffer size, the buffer policy
// and the result handler are the collector's: WithBuffer, WithBufferPolicy
// and WithResultHandler in opts are overridden. log may be nil (no
// logging). An error reports an invalid setting.
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
	}
	opts = append(opts[:len(opts):len(opts)],
		producer.WithBuffer(cfg.BufferRecords, cfg.BufferBytes),
		producer.WithBufferPolicy(producer.Block),
		producer.WithResultHandler(c.onResult),
	)
	p, err := producer.New(client, stream, opts...)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	c.prod = p
	c.m = newMetrics(p.Stats, c.budget)
	return c, nil
}

// onResult is the producer's result handler: it frees the event's room in
// the budget and counts the outcome. An event the producer gave up on was
// answered 202 and is lost: it is logged with its event_id so it can be
// resent.
func (c *Collector) onResult(res producer.Result) {
	c.budget.release(1, len(res.Record.Data)+len(res.Record.PartitionKey))
	if res.Err == nil {
		c.m.sent.Inc()
		return
	}
	c.m.failed.Inc()
	id, _ := res.Record.Meta.(string)
	c.log.Error("event not sent", zap.String("event_id", id), zap.String("code", res.Code),
		zap.Int("attempts", res.Attempts), zap.Error(res.Err))
}

// Ready reports whether the collector takes requests: nil while Serve
// serves, ErrNotServing before, ErrShuttingDown once the graceful shutdown
// has begun. For /readyz. Safe for concurrent use.
func (c *Collector) Ready() error {
	switch c.state.Load() {
	case stateServing:
		return nil
	case stateNew:
		return ErrNotServing
	}
	return ErrShuttingDown
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
// It returns nil when every accepted event was written; an error wrapping
// *producer.FailedError, listing the events not sent (Record.Meta is the
// event_id), when some were not; the server's error if it failed.
func (c *Collector) Serve(ctx context.Context, ln net.Listener) error {
	if !c.state.CompareAndSwap(stateNew, stateServing) {
		ln.Close()
		return errors.New("collector: Serve called twice")
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- c.prod.Run(runCtx) }()

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
