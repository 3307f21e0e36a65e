// Package ingest sends CloudFront standard-log files from S3 to a Kinesis
// stream: one file (Ingester.Ingest), a list (IngestFiles), every file
// under a prefix in a time range (Backfill), or the files named by S3
// event notifications (Handler, for AWS Lambda).
//
// Each file is streamed — GetObject, gunzip, line reader, one record per
// line (cloudfront.RecordReader), a batching producer with optional KPL
// aggregation — in constant memory whatever its size. Progress per file
// goes to a Manifest (a DynamoDB table): the offset recorded is always a
// line up to which every line was confirmed written, so a rerun skips
// finished files and resumes a partial one without skipping any line. A
// crash can make a rerun send again at most 2×Config.CheckpointLines
// lines of each file that was in progress. A run claims each file in the
// manifest before reading it, like a lease, so two runs over the same
// files (two backfills of one prefix, a Lambda invoked twice) never both
// send one: the other run waits, or skips the file and says so.
// docs/INGEST.md has the details.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/producer"
)

// S3API is the part of the S3 client the ingester uses. *s3.Client
// implements it. Implementations must be safe for concurrent use.
type S3API interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Config tunes an Ingester. The zero value of each field means its
// default.
type Config struct {
	// Aggregate packs lines into KPL aggregated records, so a 400-byte
	// line does not cost a whole Kinesis record. Consumers must
	// de-aggregate (leasehold workers do). Default off here; the
	// ingest.aggregate key defaults to on.
	Aggregate bool
	// CheckpointLines is how many lines may be confirmed between two
	// manifest checkpoints of a file, and also how many lines of one file
	// may be in flight (put, not yet confirmed in order). A crash makes a
	// rerun send again at most twice this many lines of each file in
	// progress. Default 5,000.
	CheckpointLines int
	// CheckpointInterval also checkpoints a file whose watermark moved at
	// least this long after its last checkpoint. Default 1s.
	CheckpointInterval time.Duration
	// DrainTimeout bounds the wait for a file's records in flight once its
	// reading stopped early (context ended): what is confirmed by then is
	// recorded. Default 30s.
	DrainTimeout time.Duration
	// ProgressLines is how often, in lines read, FileOptions.Progress is
	// called. Default 1,000.
	ProgressLines int
	// Manifest records progress; nil means none: every file is read from
	// FileOptions.StartLine and nothing is skipped.
	Manifest Manifest
	// Owner names this ingester's claims in the manifest: one run holds a
	// file at a time. Default <hostname>-<pid>-<random>, unique per
	// ingester, so a rerun never mistakes a dead run's claim for its own.
	Owner string
	// ClaimDuration is how long a claim on a file lives without renewal.
	// The owner renews it every third of that, and stops working on the
	// file by itself when it could not renew for two thirds; another run
	// takes a file over only after seeing its claim unrenewed for the
	// whole duration. Default 30s.
	ClaimDuration time.Duration
	// Limiter caps the rate of records and bytes put; nil means no cap
	// (the producer still backs off when Kinesis throttles).
	Limiter *Limiter
	// Logger; default a no-op logger.
	Logger *zap.Logger
	// ProducerOptions are added to the producer's options, after the
	// ingester's own (linger 10ms, aggregation, result handler, logger),
	// so they can override them.
	ProducerOptions []producer.Option
}

func (c *Config) defaults() {
	if c.CheckpointLines == 0 {
		c.CheckpointLines = 5000
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.ProgressLines == 0 {
		c.ProgressLines = 1000
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Owner == "" {
		host, _ := os.Hostname()
		c.Owner = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.Uint32()&0xffff)
	}
	if c.ClaimDuration == 0 {
		c.ClaimDuration = 30 * time.Second
	}
}

// Validate reports a setting out of range.
func (c Config) Validate() error {
	switch {
	case c.CheckpointLines < 1:
		return fmt.Errorf("ingest: checkpoint lines %d must be positive", c.CheckpointLines)
	case c.CheckpointInterval < 0:
		return fmt.Errorf("ingest: checkpoint interval %v is negative", c.CheckpointInterval)
	case c.DrainTimeout < 0:
		return fmt.Errorf("ingest: drain timeout %v is negative", c.DrainTimeout)
	case c.ProgressLines < 1:
		return fmt.Errorf("ingest: progress lines %d must be positive", c.ProgressLines)
	case c.ClaimDuration < 300*time.Millisecond:
		return fmt.Errorf("ingest: claim duration %v is below 300ms", c.ClaimDuration)
	}
	return nil
}

// Ingester sends log files from S3 to one Kinesis stream through a
// producer it owns. Its methods are safe for concurrent use; each call
// runs the producer's send loop while it needs it. Call Close when done.
type Ingester struct {
	s3   S3API
	prod *producer.Producer
	cfg  Config
	log  *zap.Logger

	mu      sync.Mutex
	users   int                // calls using the send loop; guarded by mu
	stopRun context.CancelFunc // stops the send loop; guarded by mu
	runDone chan struct{}      // closed when the send loop returned; guarded by mu
}

// New returns an ingester reading from s3c and writing to stream through
// kc. It starts nothing. The error reports an invalid setting.
func New(s3c S3API, kc producer.KinesisAPI, stream string, cfg Config) (*Ingester, error) {
	if s3c == nil {
		return nil, errors.New("ingest: nil S3 client")
	}
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	in := &Ingester{s3: s3c, cfg: cfg, log: cfg.Logger}
	opts := append([]producer.Option{
		// A file's reading waits once CheckpointLines records are in
		// flight; a short linger keeps that wait short, and a file's
		// records fill aggregates quickly anyway.
		producer.WithLinger(10 * time.Millisecond),
		producer.WithAggregation(cfg.Aggregate),
		producer.WithResultHandler(onResult),
		producer.WithLogger(cfg.Logger),
	}, cfg.ProducerOptions...)
	p, err := producer.New(kc, stream, opts...)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	in.prod = p
	return in, nil
}

// onResult routes a record's outcome to its file's tracker.
func onResult(r producer.Result) {
	if tk, ok := r.Record.Meta.(ticket); ok {
		tk.t.settle(tk.seq, r.Err)
	}
}

// Owner returns the name this ingester's claims carry in the manifest
// (Config.Owner).
func (in *Ingester) Owner() string { return in.cfg.Owner }

// Stats returns the producer's counters.
func (in *Ingester) Stats() producer.Stats { return in.prod.Stats() }

// Close sends what is still buffered (records of files that gave up
// waiting for them) and stops the producer, blocking until done or ctx
// ends. It returns the producer's *producer.FailedError listing records
// never written over the ingester's life, or nil.
func (in *Ingester) Close(ctx context.Context) error {
	if err := in.prod.Close(ctx); err != nil {
		return fmt.Errorf("ingest: close: %w", err)
	}
	return nil
}

// acquire makes sure the producer's send loop runs until the matching
// release. The loop's context is detached from ctx: a caller whose context
// ended still needs its records in flight confirmed before it records its
// progress.
func (in *Ingester) acquire(ctx context.Context) (release func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.users++
	if in.users == 1 {
		loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		in.stopRun, in.runDone = stop, done
		go func() {
			defer close(done)
			// Returns ctx's error when released, ErrClosed after Close:
			// neither is news to anyone.
			_ = in.prod.Run(loopCtx)
		}()
	}
	return func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		in.users--
		if in.users == 0 {
			// Stop and wait under the lock, so that a new acquire starts
			// its loop only after this one has returned.
			in.stopRun()
			<-in.runDone
		}
	}
}

// open starts reading the object; it requires ref.ETag when one is given.
func (in *Ingester) open(ctx context.Context, ref ObjectRef) (io.ReadCloser, string, error) {
	req := &s3.GetObjectInput{Bucket: aws.String(ref.Bucket), Key: aws.String(ref.Key)}
	if ref.ETag != "" {
		req.IfMatch = aws.String(`"` + ref.ETag + `"`)
	}
	out, err := in.s3.GetObject(ctx, req)
	if err != nil {
		return nil, "", fmt.Errorf("get object: %w", err)
	}
	return out.Body, trimETag(aws.ToString(out.ETag)), nil
}

// trimETag drops the quotes S3 puts around ETags in listings and
// responses (S3 event notifications have none).
func trimETag(e string) string { return strings.Trim(e, `"`) }
