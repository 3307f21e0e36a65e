package s3sink

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/processors"
)

// User-metadata names (x-amz-meta-...) of an archive object.
const (
	MetaFirstSequence = "first-sequence"
	MetaFirstSub      = "first-sub"
	MetaLastSequence  = "last-sequence"
	MetaLastSub       = "last-sub"
	MetaRecords       = "records"
)

// KeySuffix ends every archive object key.
const KeySuffix = ".ndjson.gz"

// defaultMaxIndexes bounds the partition indexes one shard sink keeps; an
// evicted index is listed again when needed (listing is authoritative).
const defaultMaxIndexes = 256

// errExists is put's answer to 412 PreconditionFailed.
var errExists = errors.New("s3sink: object exists")

// entry is one archive object of the shard in a partition.
type entry struct {
	first checkpoint.Position
	last  checkpoint.Position // zero until known (from our PUT or a HEAD)
	key   string
}

// partIndex lists the shard's objects in one partition, by first position.
type partIndex struct {
	entries []entry
	used    uint64
}

// floor returns the index of the entry with the greatest first ≤ p, or -1.
func (x *partIndex) floor(p checkpoint.Position) int {
	i := sort.Search(len(x.entries), func(i int) bool { return checkpoint.Less(p, x.entries[i].first) })
	return i - 1
}

// next returns the index of the entry with the least first > p, or -1.
func (x *partIndex) next(p checkpoint.Position) int {
	i := sort.Search(len(x.entries), func(i int) bool { return checkpoint.Less(p, x.entries[i].first) })
	if i == len(x.entries) {
		return -1
	}
	return i
}

// put inserts e, replacing an entry with the same first position.
func (x *partIndex) put(e entry) {
	i := sort.Search(len(x.entries), func(i int) bool { return !checkpoint.Less(x.entries[i].first, e.first) })
	if i < len(x.entries) && x.entries[i].first == e.first {
		x.entries[i] = e
		return
	}
	x.entries = append(x.entries, entry{})
	copy(x.entries[i+1:], x.entries[i:])
	x.entries[i] = e
}

func (x *partIndex) remove(i int) { x.entries = append(x.entries[:i], x.entries[i+1:]...) }

// Key returns the object key of the archive object whose first record is
// at first, in the partition of time t: a replay computes the same key.
func Key(prefix string, t time.Time, stream, shardID string, first checkpoint.Position) string {
	return keyIn(prefix, partitionDir(t), stream, shardID, first)
}

func keyIn(prefix, dir, stream, shardID string, first checkpoint.Position) string {
	return shardPrefix(prefix, dir, stream, shardID) + first.Sequence + "-" + strconv.FormatInt(first.Sub, 10) + KeySuffix
}

func shardPrefix(prefix, dir, stream, shardID string) string {
	if stream == "" {
		stream = "-"
	}
	if shardID == "" {
		shardID = "-"
	}
	return prefix + dir + stream + "/" + shardID + "/"
}

// parseKey returns the first position named by an archive key's last
// segment.
func parseKey(key string) (checkpoint.Position, bool) {
	base := key[strings.LastIndexByte(key, '/')+1:]
	base, ok := strings.CutSuffix(base, KeySuffix)
	if !ok {
		return checkpoint.Position{}, false
	}
	i := strings.LastIndexByte(base, '-')
	if i <= 0 {
		return checkpoint.Position{}, false
	}
	sub, err := strconv.ParseInt(base[i+1:], 10, 64)
	if err != nil || sub < 0 {
		return checkpoint.Position{}, false
	}
	return checkpoint.Position{Sequence: base[:i], Sub: sub}, true
}

// upload writes b's remaining records to S3: it skips those an existing
// object holds, and cuts new objects so they never overlap an existing
// one. It returns nil once every record of b is in exactly one object.
// Only drain calls it, holding upMu; sealed buffers do not change except
// start and off, which only upload moves (under mu, for Durable).
func (ss *shardSink) upload(ctx context.Context, b *buffer) error {
	idx, err := ss.index(ctx, b.dir)
	if err != nil {
		return err
	}
	for b.pending() > 0 {
		first := b.recs[b.start].pos
		if i := idx.floor(first); i >= 0 {
			e := &idx.entries[i]
			if e.last.IsZero() {
				last, found, err := ss.head(ctx, e.key, e.first)
				if err != nil {
					return err
				}
				if !found {
					idx.remove(i)
					continue
				}
				e.last = last
			}
			if !checkpoint.Less(e.last, first) {
				j := b.start
				for j < len(b.recs) && !checkpoint.Less(e.last, b.recs[j].pos) {
					j++
				}
				ss.log.Debug("records already archived", zap.String("key", e.key), zap.Int("records", j-b.start))
				ss.setStart(b, j)
				continue
			}
		}
		end := len(b.recs)
		if i := idx.next(first); i >= 0 {
			// A new object must end before the next existing one begins.
			nf := idx.entries[i].first
			end = b.start
			for end < len(b.recs) && checkpoint.Less(b.recs[end].pos, nf) {
				end++
			}
		}
		key := keyIn(ss.s.opts.Prefix, b.dir, ss.shard.StreamName, ss.shard.ShardID, first)
		last := b.recs[end-1].pos
		body, err := ss.gzip(b.data[b.off:b.recs[end-1].end])
		if err != nil {
			return err
		}
		switch err := ss.put(ctx, key, body, first, last, end-b.start); {
		case err == nil:
			idx.put(entry{first: first, last: last, key: key})
			ss.setStart(b, end)
			ss.log.Debug("archive object written", zap.String("key", key), zap.Int("bytes", len(body)))
		case errors.Is(err, errExists):
			// Someone (a zombie, an earlier run) wrote this key: the
			// next round reads its last position and skips what it has.
			ss.log.Info("archive object exists; skipping what it holds", zap.String("key", key))
			idx.put(entry{first: first, key: key})
		default:
			return err
		}
	}
	return nil
}

func (ss *shardSink) setStart(b *buffer, i int) {
	ss.mu.Lock()
	b.advance(i)
	ss.mu.Unlock()
}

func (ss *shardSink) gzip(p []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(p)/6 + 64)
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, fmt.Errorf("s3sink: gzip: %w", err)
	}
	if _, err := zw.Write(p); err != nil {
		return nil, fmt.Errorf("s3sink: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("s3sink: gzip: %w", err)
	}
	return buf.Bytes(), nil
}

// index returns the partition's index for this shard, listing S3 the
// first time (and again after eviction).
func (ss *shardSink) index(ctx context.Context, dir string) (*partIndex, error) {
	ss.useTick++
	if x := ss.indexes[dir]; x != nil {
		x.used = ss.useTick
		return x, nil
	}
	prefix := shardPrefix(ss.s.opts.Prefix, dir, ss.shard.StreamName, ss.shard.ShardID)
	x := &partIndex{used: ss.useTick}
	var token *string
	for {
		var out *s3.ListObjectsV2Output
		err := ss.retry(ctx, "list s3://"+ss.s.opts.Bucket+"/"+prefix, func() (err error) {
			out, err = ss.s.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &ss.s.opts.Bucket, Prefix: &prefix, ContinuationToken: token})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, o := range out.Contents {
			key := aws.ToString(o.Key)
			if first, ok := parseKey(key); ok && strings.HasPrefix(key, prefix) && !strings.Contains(key[len(prefix):], "/") {
				x.put(entry{first: first, key: key})
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break
		}
		token = out.NextContinuationToken
	}
	if len(ss.indexes) >= ss.s.maxIndexes {
		var lru string
		for d, y := range ss.indexes {
			if lru == "" || y.used < ss.indexes[lru].used {
				lru = d
			}
		}
		delete(ss.indexes, lru)
	}
	ss.indexes[dir] = x
	return x, nil
}

// put writes one object unless its key exists (errExists), retrying
// retryable errors until ctx ends.
func (ss *shardSink) put(ctx context.Context, key string, body []byte, first, last checkpoint.Position, n int) error {
	sum := md5.Sum(body)
	in := &s3.PutObjectInput{
		Bucket:          &ss.s.opts.Bucket,
		Key:             &key,
		ContentLength:   aws.Int64(int64(len(body))),
		ContentType:     aws.String("application/x-ndjson"),
		ContentEncoding: aws.String("gzip"),
		ContentMD5:      aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		IfNoneMatch:     aws.String("*"),
		Metadata: map[string]string{
			MetaFirstSequence: first.Sequence,
			MetaFirstSub:      strconv.FormatInt(first.Sub, 10),
			MetaLastSequence:  last.Sequence,
			MetaLastSub:       strconv.FormatInt(last.Sub, 10),
			MetaRecords:       strconv.Itoa(n),
		},
	}
	return ss.retry(ctx, "put s3://"+ss.s.opts.Bucket+"/"+key, func() error {
		in.Body = bytes.NewReader(body)
		_, err := ss.s.api.PutObject(ctx, in)
		if preconditionFailed(err) {
			return errExists
		}
		return err
	})
}

// head returns the last position recorded on an existing object; found is
// false when the object is gone.
func (ss *shardSink) head(ctx context.Context, key string, first checkpoint.Position) (last checkpoint.Position, found bool, err error) {
	var out *s3.HeadObjectOutput
	err = ss.retry(ctx, "head s3://"+ss.s.opts.Bucket+"/"+key, func() (err error) {
		out, err = ss.s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &ss.s.opts.Bucket, Key: &key})
		if notFound(err) {
			return errNotFound
		}
		return err
	})
	if errors.Is(err, errNotFound) {
		return checkpoint.Position{}, false, nil
	}
	if err != nil {
		return checkpoint.Position{}, false, err
	}
	meta := func(name string) string {
		for k, v := range out.Metadata {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}
	last.Sequence = meta(MetaLastSequence)
	sub, perr := strconv.ParseInt(meta(MetaLastSub), 10, 64)
	if last.Sequence == "" || perr != nil || sub < 0 || checkpoint.Less(checkpoint.Position{Sequence: last.Sequence, Sub: sub}, first) {
		return checkpoint.Position{}, false, fmt.Errorf("s3sink: s3://%s/%s: %w", ss.s.opts.Bucket, key, processors.Permanent(ErrNoPosition))
	}
	last.Sub = sub
	return last, true, nil
}

var errNotFound = errors.New("s3sink: not found")

// retry calls f until it succeeds, returns a sentinel of this package, or
// is rejected (awserr.Reject: the request is wrong, wrapped with
// processors.ErrPermanent), backing off between tries until ctx ends.
// While a failure lasts the shard counts as stalled in the sink's State;
// one an operator must fix (awserr.CannotWrite: AccessDenied,
// NoSuchBucket, refused credentials) also counts as "cannot write" and is
// logged at Error when it starts. It is retried all the same: the records
// are fine, and nothing is dead-lettered for it.
func (ss *shardSink) retry(ctx context.Context, op string, f func() error) error {
	var answer error // nil, errExists or errNotFound
	err := ss.s.retry.Retry(ctx, func(int) error {
		err := f()
		if err == nil || errors.Is(err, errExists) || errors.Is(err, errNotFound) {
			// Also on a first attempt: the failures may have been an
			// earlier call's, ended by its context.
			if d := ss.s.stalls.Recovered(ss.shard.ShardID); d > 0 {
				ss.log.Info("s3 requests succeed again", zap.String("op", op), zap.Duration("failed_for", d.Round(time.Millisecond)))
			}
			answer = err
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
		news := ss.s.stalls.Failed(ss.shard.ShardID, fmt.Errorf("s3sink: %s: %w", op, err), cannotWrite)
		fields := []zap.Field{zap.String("op", op), zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err)}
		switch {
		case cannotWrite && news:
			ss.log.Error("s3 cannot write; the shard waits and retries until an operator fixes the bucket or the permissions (nothing is dead-lettered)", fields...)
		case cannotWrite:
			ss.log.Warn("s3 still cannot write; retrying", fields...)
		default:
			ss.log.Warn("s3 request failed; the shard waits and retries", fields...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("s3sink: %s: %w", op, err)
	}
	return answer
}

func preconditionFailed(err error) bool {
	return err != nil && (awserr.Status(err) == 412 || awserr.Code(err) == "PreconditionFailed")
}

func notFound(err error) bool {
	if err == nil {
		return false
	}
	switch awserr.Code(err) {
	case "NotFound", "NoSuchKey":
		return true
	case "NoSuchBucket":
		return false
	}
	return awserr.Status(err) == 404 && awserr.Code(err) == ""
}
