// Package s3sink archives events to S3 as gzipped NDJSON objects (one
// event.Event JSON per line), in Hive-style time partitions
// (<prefix>dt=YYYY-MM-DD/hour=HH/), so that the archive can be queried by
// date and replayed into other sinks.
//
// # Exactly once across objects
//
// Object keys are deterministic: the partition, the stream, the shard, and
// the position of the object's first record,
//
//	<prefix>dt=2024-05-01/hour=13/<stream>/<shard>/<first-sequence>-<first-sub>.ndjson.gz
//
// and every PutObject carries If-None-Match: *, so neither a replay nor a
// zombie worker can overwrite an object. Each object records its first and
// last record positions in user metadata (x-amz-meta-first-sequence,
// -first-sub, -last-sequence, -last-sub, -records). An object holds every
// record of its shard and partition between its first and last position,
// in order. A replay after a crash may cut objects at other places, so
// before a shard sink writes into a partition for the first time it lists
// the partition's objects for its shard; records inside an existing
// object's range are dropped as already archived, and a new object ends
// before the next existing one begins. When a PutObject still fails with
// 412 PreconditionFailed (another writer got there first), the sink reads
// the existing object's last position with HeadObject, drops what it
// covers and goes on with the rest under a new key. Each record therefore
// ends up in exactly one object.
//
// # Durability
//
// A shard sink keeps one open buffer per partition (the events of one
// batch may span hours). A buffer is written out when it reaches max_bytes
// (uncompressed) or max_records, when its first record is older than
// max_age, or on Flush. Durable reports the position just before the
// oldest record not yet in S3, whatever partition holds it, so the
// checkpoint never passes a record that is only in memory.
//
// # Memory
//
// All shard sinks of one Sink (one worker) share max_buffered_bytes of
// buffered NDJSON (a processors.MemoryBudget): a per-shard bound alone
// would multiply with the shards a worker holds. When it is spent, Write
// first writes out its own shard's buffers; a shard holding nothing waits
// (backpressure) and asks the other shards to write out theirs. Under
// pressure objects are therefore smaller than max_bytes: about
// max_buffered_bytes divided by the busy shards.
//
// S3 errors are classified by internal/awserr, which the S3 dead-letter
// writer shares. Transient ones (5xx, throttling, timeouts, connection
// errors) are retried with backoff until the context ends; so are those
// an operator must fix (AccessDenied, NoSuchBucket, refused credentials,
// a disabled KMS key), which also mark the shard "cannot write" in State
// (readiness goes red, leasehold_sink_cannot_write_shards) and are logged
// at Error when they start and at Info when writes succeed again: the
// records are fine, so nothing is dead-lettered and the shard keeps its
// lease. Only a request S3 rejects as malformed (another 4xx) stops the
// shard: Write or Flush return it, wrapped with processors.ErrPermanent.
// A message with no parsed event (or, when partitioning by event time, no
// event time) is dead-lettered, not archived.
package s3sink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/processors"
)

// Type is the sink type name used in the pipeline config.
const Type = "s3"

// Partitioning choices for Options.PartitionBy.
const (
	// PartitionByEventTime partitions by event.Event.EventTime: an
	// analyst's "what happened on that day" (CloudFront logs arrive up to
	// 24 h late).
	PartitionByEventTime = "event_time"
	// PartitionByArrivalTime partitions by the Kinesis approximate
	// arrival time of the record.
	PartitionByArrivalTime = "arrival_time"
)

// Defaults of Options.
const (
	DefaultPrefix     = "events/"
	DefaultMaxBytes   = 64 << 20
	DefaultMaxRecords = 100_000
	DefaultMaxAge     = 60 * time.Second
	DefaultName       = Type
	// DefaultMaxBufferedBytes bounds the buffered NDJSON of every shard of
	// one worker together.
	DefaultMaxBufferedBytes = 256 << 20
)

// maxObjectBytes is S3's limit for one PutObject.
const maxObjectBytes = 5 << 30

// Sentinel errors.
var (
	// ErrConfig is wrapped by every Options.Validate error.
	ErrConfig = errors.New("s3sink: invalid options")
	// ErrNoPosition is wrapped when an existing archive object lacks the
	// last-position metadata, so the sink cannot tell which records it
	// holds. It is permanent: the sink never overwrites such an object.
	ErrNoPosition = errors.New("s3sink: existing object has no last-position metadata")
)

// Options configure a Sink. The zero value of every field but Bucket means
// its default.
type Options struct {
	// Bucket is the archive bucket. Required. It must exist: the sink
	// does not create buckets.
	Bucket string `yaml:"bucket"`
	// Prefix starts every key; it must end with "/". Default "events/".
	Prefix string `yaml:"prefix"`
	// MaxBytes is the uncompressed size at which an object is written
	// (default 64 MiB). It also bounds what one shard holds in memory
	// across its open partitions: above it, the partition holding the
	// oldest record is written out.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxBufferedBytes bounds the uncompressed NDJSON that all shards of
	// this sink hold in memory in one worker, together (default 256 MiB).
	// When it is spent a shard writes out its own buffers before it
	// accepts more, or waits while the others write out theirs: the shard
	// reads nothing meanwhile. The gzip copy of an object being uploaded
	// (about a sixth of its size) comes on top.
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes"`
	// MaxRecords is the record count at which an object is written
	// (default 100,000).
	MaxRecords int `yaml:"max_records"`
	// MaxAge is how long a record may wait in memory before its object is
	// written (default 60s), measured from when the sink accepted the
	// object's first record.
	MaxAge time.Duration `yaml:"max_age"`
	// PartitionBy is "event_time" (default) or "arrival_time".
	PartitionBy string `yaml:"partition_by"`
	// Name is the sink's name in checkpoints and logs (default "s3"). It
	// is not read from YAML: the pipeline config's stage name is the
	// place for it.
	Name string `yaml:"-"`
}

// defaults fills the zero fields.
func (o *Options) defaults() {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxRecords == 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.MaxBufferedBytes == 0 {
		o.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.PartitionBy == "" {
		o.PartitionBy = PartitionByEventTime
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
}

// Validate reports every invalid option, naming it; zero values are
// valid (they mean the default). Errors wrap ErrConfig.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if o.Bucket == "" {
		bad("bucket is required")
	}
	if o.Prefix != "" && (!strings.HasSuffix(o.Prefix, "/") || strings.HasPrefix(o.Prefix, "/")) {
		bad("prefix %q must end with \"/\" and not start with one", o.Prefix)
	}
	if o.MaxBytes < 0 || o.MaxBytes > maxObjectBytes {
		bad("max_bytes %d must be between 1 and %d (S3's PutObject limit)", o.MaxBytes, int64(maxObjectBytes))
	}
	if o.MaxBufferedBytes < 0 {
		bad("max_buffered_bytes %d must be positive", o.MaxBufferedBytes)
	}
	if o.MaxRecords < 0 {
		bad("max_records %d must be positive", o.MaxRecords)
	}
	if o.MaxAge < 0 {
		bad("max_age %s must be positive", o.MaxAge)
	}
	switch o.PartitionBy {
	case "", PartitionByEventTime, PartitionByArrivalTime:
	default:
		bad("partition_by %q must be %q or %q", o.PartitionBy, PartitionByEventTime, PartitionByArrivalTime)
	}
	return errors.Join(errs...)
}

// API is the part of *s3.Client the sink uses; tests supply fakes.
// Implementations must be safe for concurrent use.
type API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Sink is the S3 archive sink. It opens one ShardSink per shard lease and
// is safe for concurrent use.
type Sink struct {
	api    API
	opts   Options
	log    *zap.Logger
	budget *processors.MemoryBudget // shared by every shard sink
	stalls processors.Stalls        // shards whose S3 requests fail and are retried

	// Set at construction; tests replace them.
	now        func() time.Time
	tick       time.Duration  // how often a shard sink checks buffer ages
	retry      backoff.Policy // between tries of a failed S3 request
	maxIndexes int
}

// New returns a sink writing through api. log may be nil. It does not
// block; an invalid option is an error wrapping ErrConfig.
func New(api API, opts Options, log *zap.Logger) (*Sink, error) {
	if api == nil {
		return nil, errors.New("s3sink: nil S3 client")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	if log == nil {
		log = zap.NewNop()
	}
	return &Sink{
		api: api, opts: opts, log: log.With(zap.String("sink", opts.Name)),
		budget:     processors.NewMemoryBudget(opts.MaxBufferedBytes),
		now:        time.Now,
		tick:       min(max(opts.MaxAge/4, 10*time.Millisecond), 5*time.Second),
		retry:      backoff.Policy{Min: 100 * time.Millisecond, Max: 10 * time.Second, Jitter: backoff.Spread},
		maxIndexes: defaultMaxIndexes,
	}, nil
}

// FromConfig is the processors.SinkCtor for type "s3": it decodes the
// options strictly and takes the S3 client from deps.S3 (required) and the
// logger for retry warnings from deps.Logger (optional). It does
// not block.
func FromConfig(_ context.Context, o processors.Options, deps processors.Deps) (processors.Sink, error) {
	var opts Options
	if err := o.Decode(&opts); err != nil {
		return nil, err
	}
	opts.Name = o.Name()
	if deps.S3 == nil {
		return nil, processors.MissingDep("S3", "the s3 sink writes objects with it")
	}
	return New(deps.S3, opts, deps.Logger)
}

// Register adds the "s3" sink type to r. It panics if the type is already
// registered.
func Register(r *processors.Registry) { r.RegisterSink(Type, FromConfig) }

// Name returns the sink's name (Options.Name, default "s3").
func (s *Sink) Name() string { return s.opts.Name }

// Options returns the effective options, defaults filled in.
func (s *Sink) Options() Options { return s.opts }

// State reports, for metrics and readiness, the shards whose S3 requests
// fail and are being retried, and the bytes buffered over all shards
// against max_buffered_bytes. It does not block; safe for concurrent use.
func (s *Sink) State() processors.SinkState {
	var st processors.SinkState
	s.stalls.Fill(&st)
	s.budget.Fill(&st)
	return st
}

// Close does nothing: the S3 client belongs to the caller. It is safe to
// call at any time.
func (s *Sink) Close(context.Context) error { return nil }
