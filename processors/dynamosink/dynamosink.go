// Package dynamosink backs events up to a DynamoDB table keyed so that one
// asset's history is a single Query:
//
//	pk (S, HASH)  = "<tenant>#<asset_id>"                         see PartitionKey
//	sk (S, RANGE) = "<event time, UTC, fixed width>#<event_id>"   see SortKey
//
// so "asset A of tenant T between t1 and t2" is a Query on pk with
// "sk BETWEEN SortKeyTime(t1) AND SortKeyTime(t2)". An empty tenant is
// written as "-". Events without an asset id (CloudFront requests for
// pages and scripts, often most of a tenant's traffic) would all share one
// partition key and cap the table's write rate at one partition's; they
// are spread over no_asset_partitions keys "<tenant>#-#<n>" (n from a hash
// of the event id, so a replay writes the same item; see
// NoAssetPartitionKey), or left out with skip_no_asset. Besides the keys,
// an item carries the main fields as attributes (see the Attr constants)
// and the whole event as JSON in "doc". docs/EVENTS.md lists the access
// patterns the table serves.
//
// Writes are BatchWriteItem requests of at most 25 items and 16 MiB, sent
// with bounded concurrency; UnprocessedItems are retried with backoff until
// none is left. Items with the same key in one batch (a CloudFront request
// logged twice with one x-edge-request-id) are written once, the last one
// winning: DynamoDB rejects a batch that names a key twice. Writes are
// idempotent by key, so a replay overwrites rather than duplicates.
//
// An item over 400 KB is dead-lettered without a request; one DynamoDB
// refuses (ValidationException, e.g. a sort key over 1,024 bytes) makes
// the sink retry its batch item by item and dead-letter that item alone.
// Messages without a parsed event are dead-lettered too. Errors are
// classified by internal/awserr: throttling, 5xx and connection errors are
// retried until the context ends; so are those an operator must fix (the
// table is gone, access denied, refused credentials), which also mark the
// shard "cannot write" in State (readiness red, a metric) and are logged
// at Error when they start and at Info when writes succeed again — the
// items are fine, so nothing is dead-lettered for it. Another rejected
// request stops the shard.
package dynamosink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/processors"
)

// Type is the sink type name used in the pipeline config.
const Type = "dynamodb"

// Defaults of Options.
const (
	DefaultConcurrency = 4
	DefaultName        = Type
	// DefaultNoAssetPartitions is how many partition keys per tenant the
	// events without an asset id are spread over.
	DefaultNoAssetPartitions = 16
	// MaxNoAssetPartitions bounds no_asset_partitions: a Query of them all
	// is one request per key.
	MaxNoAssetPartitions = 1000
)

// Limits of BatchWriteItem.
const (
	maxBatchItems = 25
	maxBatchBytes = 16 << 20
	// MaxItemBytes is DynamoDB's item size limit (names plus values).
	MaxItemBytes = 400 << 10
)

// Sentinel errors.
var (
	// ErrConfig is wrapped by every Options.Validate error.
	ErrConfig = errors.New("dynamosink: invalid options")
	// ErrTableSchema: the table exists with another key schema.
	ErrTableSchema = errors.New("dynamosink: table has the wrong key schema")
	// ErrNotParsed: a message reached the sink without a parsed event; it
	// is dead-lettered. It is processors.ErrNotParsed.
	ErrNotParsed = processors.ErrNotParsed
	// ErrItemTooLarge: the item would exceed MaxItemBytes; it is
	// dead-lettered without a request.
	ErrItemTooLarge = errors.New("dynamosink: item exceeds 400 KB")
	// ErrRejected wraps DynamoDB's ValidationException for one item; it is
	// dead-lettered.
	ErrRejected = errors.New("dynamosink: item rejected by DynamoDB")
)

// Options configure a Sink.
type Options struct {
	// Table is the table name. Required.
	Table string `yaml:"table"`
	// CreateTable creates the table (on-demand capacity, the key schema
	// above) when it does not exist. Default true; when false a missing
	// table is a start-up error.
	CreateTable *bool `yaml:"create_table"`
	// SkipNoAsset leaves out events without an asset id instead of
	// spreading them over NoAssetPartitions keys. Default false.
	SkipNoAsset bool `yaml:"skip_no_asset"`
	// NoAssetPartitions is how many partition keys per tenant the events
	// without an asset id are spread over ("<tenant>#-#0" …): a single
	// key takes at most about 1,000 writes per second. 1 writes them all
	// under "<tenant>#-", the layout before the spread. Default 16; at
	// most 1000.
	NoAssetPartitions int `yaml:"no_asset_partitions"`
	// Concurrency is how many BatchWriteItem requests one shard has in
	// flight. Default 4.
	Concurrency int `yaml:"concurrency"`
	// Name is the sink's name in checkpoints and logs (default
	// "dynamodb"); not read from YAML.
	Name string `yaml:"-"`
}

func (o *Options) defaults() {
	if o.CreateTable == nil {
		t := true
		o.CreateTable = &t
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.NoAssetPartitions == 0 {
		o.NoAssetPartitions = DefaultNoAssetPartitions
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
}

// Validate reports every invalid option, naming it; zero values are valid
// (defaults). Errors wrap ErrConfig.
func (o Options) Validate() error {
	var errs []error
	if o.Table == "" {
		errs = append(errs, fmt.Errorf("%w: table is required", ErrConfig))
	} else if n := len(o.Table); n < 3 || n > 255 || strings.Trim(o.Table, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
		errs = append(errs, fmt.Errorf("%w: table %q must be 3-255 characters of a-z, A-Z, 0-9, '_', '-' and '.'", ErrConfig, o.Table))
	}
	if o.NoAssetPartitions < 0 || o.NoAssetPartitions > MaxNoAssetPartitions {
		errs = append(errs, fmt.Errorf("%w: no_asset_partitions %d must be between 1 and %d", ErrConfig, o.NoAssetPartitions, MaxNoAssetPartitions))
	}
	if o.Concurrency < 0 || o.Concurrency > 64 {
		errs = append(errs, fmt.Errorf("%w: concurrency %d must be between 1 and 64", ErrConfig, o.Concurrency))
	}
	return errors.Join(errs...)
}

// API is the part of *dynamodb.Client the sink uses; tests supply fakes.
// Implementations must be safe for concurrent use.
type API interface {
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
}

// Sink is the DynamoDB backup sink. Safe for concurrent use.
type Sink struct {
	api    API
	opts   Options
	log    *zap.Logger
	stalls processors.Stalls // shards whose writes are throttled or failing and retried

	retry backoff.Policy // between tries of a failed batch write
}

// New returns a sink writing to opts.Table through api. It blocks while it
// makes sure the table exists and is ACTIVE (creating it when
// CreateTable, which is idempotent when several workers start together),
// for at most two minutes. log may be nil. Errors: ErrConfig, ErrTableSchema,
// a missing table with CreateTable false, or DynamoDB's error.
func New(ctx context.Context, api API, opts Options, log *zap.Logger) (*Sink, error) {
	if api == nil {
		return nil, errors.New("dynamosink: nil DynamoDB client")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	if log == nil {
		log = zap.NewNop()
	}
	s := &Sink{api: api, opts: opts, log: log.With(zap.String("sink", opts.Name)),
		retry: backoff.Policy{Min: 50 * time.Millisecond, Max: 5 * time.Second, Jitter: backoff.Spread}}
	if err := s.ensureTable(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// FromConfig is the processors.SinkCtor for type "dynamodb": it decodes
// the options strictly, takes the client from deps.DynamoDB (required) and
// the logger for retry warnings from deps.Logger (optional), and
// blocks like New.
func FromConfig(ctx context.Context, o processors.Options, deps processors.Deps) (processors.Sink, error) {
	var opts Options
	if err := o.Decode(&opts); err != nil {
		return nil, err
	}
	opts.Name = o.Name()
	if deps.DynamoDB == nil {
		return nil, processors.MissingDep("DynamoDB", "the dynamodb sink writes items with it")
	}
	return New(ctx, deps.DynamoDB, opts, deps.Logger)
}

// Register adds the "dynamodb" sink type to r. It panics if the type is
// already registered.
func Register(r *processors.Registry) { r.RegisterSink(Type, FromConfig) }

// Name returns the sink's name (Options.Name, default "dynamodb").
func (s *Sink) Name() string { return s.opts.Name }

// Options returns the effective options, defaults filled in.
func (s *Sink) Options() Options { return s.opts }

// State reports, for metrics and readiness, the shards whose writes are
// throttled or failing and being retried. It does not block; safe for
// concurrent use.
func (s *Sink) State() processors.SinkState {
	var st processors.SinkState
	s.stalls.Fill(&st)
	return st
}

// Close does nothing: the client belongs to the caller.
func (s *Sink) Close(context.Context) error { return nil }
