package searchbulk

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// Cluster is what the bulk engine needs of a search cluster; each sink
// implements it on its own client (opensearch-go, go-elasticsearch).
// Methods are called concurrently, from every shard's flusher.
type Cluster interface {
	// Bulk sends one _bulk request body of n index items and returns the
	// n item results in order. A whole-request failure is returned as
	// RequestFailure classified it; an answer with a different number of
	// items is a retryable *RequestError.
	Bulk(ctx context.Context, body []byte, n int) ([]ItemResult, error)
	// Ready is called before every bulk attempt and returns nil once the
	// cluster is prepared (the index template installed); its errors are
	// classified like Bulk's.
	Ready(ctx context.Context) error
}

// Defaults both search sinks share, so that a pipeline moves between
// OpenSearch and Elasticsearch by changing its sink's type and connection.
const (
	// DefaultIndex names one index per UTC day of the event time.
	DefaultIndex = "leasehold-events-{yyyy.MM.dd}"
	// DefaultFlushBytes is the default request body cap.
	DefaultFlushBytes = 5 << 20
	// MaxFlushBytes is the cap on flush_bytes (exclusive): Amazon
	// OpenSearch Service rejects request bodies of 10 MiB and more on small
	// instance types, and Elasticsearch, which accepts up to
	// http.max_content_length (100 MiB), answers big bulk requests slowly
	// and all at once (Elastic recommends 5-15 MB).
	MaxFlushBytes = 10 << 20
	// DefaultFlushInterval is how long a document waits at most before its
	// bulk request is sent.
	DefaultFlushInterval = time.Second
	// DefaultTemplatePriority is the index template's priority.
	DefaultTemplatePriority = 100
	// DefaultBackoffMin and DefaultBackoffMax bound the retry backoff.
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 10 * time.Second
	// DefaultRequestTimeout bounds one bulk attempt.
	DefaultRequestTimeout = time.Minute
	// DefaultMaxBufferedBytes is the default max_buffered_bytes
	// (Options.MaxBufferedBytes), the bytes every shard of one worker
	// buffers together: about a second of 32 busy shards' traffic, plus
	// requests in flight.
	DefaultMaxBufferedBytes = 64 << 20
)

// Options tune an Engine; every field is required (the sinks' configs
// apply the defaults and validate them).
type Options struct {
	// Product is "opensearch" or "elasticsearch": in log messages and
	// item errors.
	Product string
	// Name is the sink's name in checkpoints, logs and metrics.
	Name string
	// FlushBytes caps a request body; FlushInterval is the longest a
	// document waits; MaxBufferBytes bounds a shard's bytes not yet
	// durable (Write blocks beyond it).
	FlushBytes, MaxBufferBytes int64
	FlushInterval              time.Duration
	// MaxBufferedBytes bounds the bytes not yet durable of every shard of
	// the engine together, one worker's (a processors.MemoryBudget, as
	// the S3 sink's shards share): a shard that finds it spent sends what
	// it holds and waits; one holding nothing waits and asks the others
	// to send theirs. 0 leaves only MaxBufferBytes per shard.
	MaxBufferedBytes int64
	// MaxRetries bounds the attempts of one bulk request; 0 retries until
	// the shard stops.
	MaxRetries int
	// BackoffMin and BackoffMax bound the exponential backoff.
	BackoffMin, BackoffMax time.Duration
	// RequestTimeout bounds one attempt.
	RequestTimeout time.Duration
}

// Engine is the part of a search sink that does not depend on the
// cluster's client: per-shard buffering across Write calls, bulk requests
// of at most FlushBytes sent in order from one flusher goroutine per
// shard, per-item results (429 and 5xx items resent alone with backoff,
// "cannot write now" retried and reported, bad documents dead-lettered
// with the cluster's reason), 413 splitting, and the durable position.
// Safe for concurrent use.
type Engine struct {
	opts    Options
	pattern IndexPattern
	cluster Cluster
	log     *zap.Logger
	stats   counters
	stalls  processors.Stalls // shards whose bulk requests fail and are retried
	// buffered is the bytes accepted by every shard sink, not yet durable.
	buffered atomic.Int64
	budget   *processors.MemoryBudget // MaxBufferedBytes; nil when 0 (unlimited)
}

// NewEngine returns an engine that names indices with pattern and talks to
// cluster. log may be nil. It does not block.
func NewEngine(opts Options, pattern IndexPattern, cluster Cluster, log *zap.Logger) *Engine {
	if log == nil {
		log = zap.NewNop()
	}
	e := &Engine{opts: opts, pattern: pattern, cluster: cluster, log: log}
	if opts.MaxBufferedBytes > 0 {
		e.budget = processors.NewMemoryBudget(opts.MaxBufferedBytes)
	}
	return e
}

// Open starts a shard sink and its flushing goroutine, which runs until
// the shard sink's Close or until ctx ends (then Write and Flush fail with
// ErrStopped). dl receives the documents the cluster rejects permanently;
// Open fails only without one. It does not block.
func (e *Engine) Open(ctx context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	if dl == nil {
		return nil, errors.New(e.opts.Product + ": Open needs a dead-letterer")
	}
	return e.open(ctx, shard, dl), nil
}

// Stats is a snapshot of an Engine's counters, summed over its shards.
type Stats struct {
	DocsIndexed       int64 // items the cluster accepted (created or updated)
	ItemsRetried      int64 // items resent after a retryable item failure (429, 5xx, cannot write)
	ItemsDeadLettered int64 // documents handed to the dead-letterer (rejected, too large, not parsed)
	BulkRequests      int64 // bulk requests sent, retries included
	BulkBytes         int64 // request body bytes sent, retries included
	RequestErrors     int64 // bulk requests that failed as a whole (transport error or non-2xx)
}

// Stats returns the counters. It does not block; safe for concurrent use.
func (e *Engine) Stats() Stats {
	return Stats{
		DocsIndexed:       e.stats.docs.Load(),
		ItemsRetried:      e.stats.retried.Load(),
		ItemsDeadLettered: e.stats.deadLettered.Load(),
		BulkRequests:      e.stats.requests.Load(),
		BulkBytes:         e.stats.bytes.Load(),
		RequestErrors:     e.stats.requestErrors.Load(),
	}
}

// State reports, for metrics and readiness, the shards whose writes fail
// and are being retried (and which of them the cluster refuses until an
// operator acts: ErrCannotWrite), and the bytes buffered over all shards
// against MaxBufferedBytes. It does not block; safe for concurrent use.
func (e *Engine) State() processors.SinkState {
	var st processors.SinkState
	e.stalls.Fill(&st)
	st.BufferedBytes = e.buffered.Load()
	e.budget.Fill(&st)
	return st
}

type counters struct {
	docs, retried, deadLettered, requests, bytes, requestErrors atomic.Int64
}

// bulk sends one request through the cluster, bounded by RequestTimeout,
// and counts it.
func (e *Engine) bulk(ctx context.Context, body []byte, n int) ([]ItemResult, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
	defer cancel()
	e.stats.requests.Add(1)
	e.stats.bytes.Add(int64(len(body)))
	items, err := e.cluster.Bulk(ctx, body, n)
	if err != nil {
		e.stats.requestErrors.Add(1)
	}
	return items, err
}

// DocID is a document's _id: the event id, or, when a parser left it
// empty, "<stream>-<shard>-<sequence>-<sub>" from the source record, which
// a replay reproduces as well. It appends to dst.
func DocID(dst []byte, m *processors.Message, stream string) []byte {
	if m.Event.EventID != "" {
		return append(dst, m.Event.EventID...)
	}
	if m.Record.StreamName != "" {
		stream = m.Record.StreamName
	}
	r := &m.Record
	dst = append(dst, stream...)
	dst = append(dst, '-')
	dst = append(dst, r.ShardID...)
	dst = append(dst, '-')
	dst = append(dst, r.SequenceNumber...)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, r.SubSequenceNumber, 10)
}
