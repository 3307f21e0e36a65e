package deadletter

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/processors"
)

// DefaultPrefix is the default S3Options.Prefix.
const DefaultPrefix = "dead-letter/"

// S3Options configure an S3 dead-letterer. Zero values mean the default.
type S3Options struct {
	// Bucket is required; it must exist (buckets are not created).
	Bucket string `yaml:"bucket"`
	// Prefix starts every key and must end with "/". Default
	// "dead-letter/".
	Prefix string `yaml:"prefix"`
}

// Validate reports a missing bucket or a malformed prefix, wrapping
// ErrConfig.
func (o S3Options) Validate() error {
	var errs []error
	if o.Bucket == "" {
		errs = append(errs, fmt.Errorf("%w: bucket is required", ErrConfig))
	}
	if o.Prefix != "" && (!strings.HasSuffix(o.Prefix, "/") || strings.HasPrefix(o.Prefix, "/")) {
		errs = append(errs, fmt.Errorf("%w: prefix %q must end with \"/\" and not start with one", ErrConfig, o.Prefix))
	}
	return errors.Join(errs...)
}

// S3API is the part of *s3.Client the S3 dead-letterer uses. It must be
// safe for concurrent use.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// S3 writes dead letters to S3. Safe for concurrent use.
type S3 struct {
	api    S3API
	bucket string
	prefix string
	log    *zap.Logger
	stalls processors.Stalls // shards whose dead letters fail to be stored and are retried

	now   func() time.Time
	retry backoff.Policy // between tries of a failed put
}

// NewS3 returns an S3 dead-letterer. log may be nil. It does not block;
// errors wrap ErrConfig.
func NewS3(api S3API, opts S3Options, log *zap.Logger) (*S3, error) {
	if api == nil {
		return nil, errors.New("deadletter: nil S3 client")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &S3{api: api, bucket: opts.Bucket, prefix: opts.Prefix, log: log.With(zap.String("dead_letter", TypeS3)),
		now: time.Now, retry: backoff.Policy{Min: 100 * time.Millisecond, Max: 10 * time.Second, Jitter: backoff.Spread}}, nil
}

// S3FromConfig is the processors.DeadLetterCtor for type "s3": options
// decoded strictly, the client from deps.S3 (required), the logger for
// retry warnings from deps.Logger (optional).
func S3FromConfig(_ context.Context, o processors.Options, deps processors.Deps) (processors.DeadLetterer, error) {
	var opts S3Options
	if err := o.Decode(&opts); err != nil {
		return nil, err
	}
	if deps.S3 == nil {
		return nil, processors.MissingDep("S3", "the s3 dead-letter type writes objects with it")
	}
	return NewS3(deps.S3, opts, deps.Logger)
}

// Key returns the object key for a group of dead letters of one shard and
// stage: <prefix>dt=<failure date>/<shard>/<first-seq>-<first-sub>-<stage>-<digest>.ndjson.gz.
// The digest covers the stream, shard and stage, and every record's
// position and reason, so the same failures dead-lettered again on the
// same day (a worker's replay after a crash) get the same key and write
// nothing new, while a record failing again for another reason — after a
// fix that did not suffice — is stored beside its first dead letter
// instead of being taken for it by If-None-Match. Readers deduplicate on
// the record's position and stage (redrive.Letter.Key). msgs must not be
// empty; the first message names the shard and stage.
func Key(prefix string, failedAt time.Time, msgs []*processors.Message) string {
	first := msgs[0].Record
	stage := "unknown"
	if f := msgs[0].Failed(); f != nil && f.Stage != "" {
		stage = f.Stage
	}
	h := sha256.New()
	h.Write([]byte(first.StreamName + "\x00" + first.ShardID + "\x00" + stage))
	for _, m := range msgs {
		reason := ""
		if f := m.Failed(); f != nil && f.Err != nil {
			reason = f.Err.Error()
		}
		h.Write([]byte("\x00" + m.Record.SequenceNumber + "/" + strconv.FormatInt(m.Record.SubSequenceNumber, 10) + "\x00" + reason))
	}
	shard := first.ShardID
	if shard == "" {
		shard = "-"
	}
	return prefix + failedAt.UTC().Format("dt=2006-01-02/") + safe(shard) + "/" + safe(first.SequenceNumber) + "-" +
		strconv.FormatInt(first.SubSequenceNumber, 10) + "-" + safe(stage) + "-" + hex.EncodeToString(h.Sum(nil)[:4]) + ".ndjson.gz"
}

// safe keeps key segments to characters S3 and shells take literally.
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// DeadLetter writes one object per shard and stage among msgs and returns
// once all are stored. S3 errors are classified by internal/awserr, as
// the S3 sink's: transient ones are retried with backoff until ctx ends;
// so are those an operator must fix (AccessDenied, NoSuchBucket, refused
// credentials), which are logged at Error when they start and reported in
// State (the shard waits: its records have nowhere else to go). A request
// S3 rejects as malformed is returned at once, wrapped with
// processors.ErrPermanent. An object that already exists under the key
// (412) holds these very failures: that is success.
func (d *S3) DeadLetter(ctx context.Context, msgs []*processors.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	at := d.now().UTC()
	for _, g := range group(msgs) {
		raw, err := appendLines(nil, g, at)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(raw); err != nil {
			return fmt.Errorf("deadletter: gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("deadletter: gzip: %w", err)
		}
		if err := d.put(ctx, g[0].Record.ShardID, Key(d.prefix, at, g), buf.Bytes(), len(g)); err != nil {
			return err
		}
	}
	return nil
}

// group splits msgs by shard and stage, keeping order within each group.
func group(msgs []*processors.Message) [][]*processors.Message {
	idx := map[string]int{}
	var out [][]*processors.Message
	for _, m := range msgs {
		stage := ""
		if f := m.Failed(); f != nil {
			stage = f.Stage
		}
		k := m.Record.StreamName + "\x00" + m.Record.ShardID + "\x00" + stage
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], m)
	}
	return out
}

// put stores one object, retrying until it is stored or ctx ends; shard
// names the shard in State. Failures are classified by awserr.S3, as the
// S3 sink's are.
func (d *S3) put(ctx context.Context, shard, key string, body []byte, n int) error {
	sum := md5.Sum(body)
	err := d.retry.Retry(ctx, func(int) error {
		_, err := d.api.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &d.bucket, Key: &key, Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
			ContentType: aws.String("application/x-ndjson"), ContentEncoding: aws.String("gzip"),
			ContentMD5:  aws.String(base64.StdEncoding.EncodeToString(sum[:])),
			IfNoneMatch: aws.String("*"),
			Metadata:    map[string]string{"records": strconv.Itoa(n)},
		})
		if err == nil || awserr.Status(err) == 412 || awserr.Code(err) == "PreconditionFailed" {
			if dur := d.stalls.Recovered(shard); dur > 0 {
				d.log.Info("dead-letter writes succeed again", zap.String("shard_id", shard), zap.Duration("failed_for", dur.Round(time.Millisecond)))
			}
			return nil
		}
		return err
	}, func(attempt int, err error, wait time.Duration) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		class := awserr.S3(err)
		if class == awserr.Reject {
			return processors.Permanent(err)
		}
		cannotWrite := class == awserr.CannotWrite
		news := d.stalls.Failed(shard, fmt.Errorf("deadletter: put s3://%s/%s: %w", d.bucket, key, err), cannotWrite)
		fields := []zap.Field{zap.String("shard_id", shard), zap.String("key", key), zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err)}
		switch {
		case cannotWrite && news:
			d.log.Error("dead-letter store cannot write; the shard waits and retries until an operator fixes the bucket or the permissions", fields...)
		case cannotWrite:
			d.log.Warn("dead-letter store still cannot write; retrying", fields...)
		default:
			d.log.Warn("dead-letter put failed; retrying", fields...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("deadletter: put s3://%s/%s: %w", d.bucket, key, err)
	}
	return nil
}

// State reports, for metrics and readiness, the shards whose dead letters
// cannot be stored now and are being retried (processors.StateReporter;
// the pipeline reports it under the name "dead_letter"). It does not
// block; safe for concurrent use.
func (d *S3) State() processors.SinkState {
	var st processors.SinkState
	d.stalls.Fill(&st)
	return st
}
