package redrive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Store is where a pipeline's dead letters are, with the replay ledger
// beside them. Implementations are safe for concurrent use.
type Store interface {
	// Name says where, for people: s3://bucket/prefix or a path.
	Name() string
	// Scan calls fn for each dead letter, with Replayed set from the
	// ledger, and bad for each line that is not one (counted, not fatal).
	// A store partitioned by day skips what lies wholly outside
	// [since, until) (zero: unbounded); fn still gets letters just outside
	// and must filter. An error from fn stops the scan and is returned.
	Scan(ctx context.Context, since, until time.Time, fn func(Letter) error, bad func(error)) error
	// MarkReplayed records in the ledger that letters were replayed at
	// at; it is durable when MarkReplayed returns.
	MarkReplayed(ctx context.Context, letters []Letter, at time.Time) error
}

// ledgerLine is one entry of the replay ledger.
type ledgerLine struct {
	Key        string    `json:"key"`
	ReplayedAt time.Time `json:"replayed_at"`
}

// ledger maps a Letter.Key to its latest replay.
type ledger map[string]time.Time

func (lg ledger) add(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var e ledgerLine
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Key == "" {
			continue // a torn last line
		}
		if e.ReplayedAt.After(lg[e.Key]) {
			lg[e.Key] = e.ReplayedAt
		}
	}
}

// mark sets l.Replayed when a replay after its failure covered it. A
// record that failed again after a replay is a new dead letter.
func (lg ledger) mark(l *Letter) {
	if at, ok := lg[l.Key()]; ok && !at.Before(l.FailedAt) {
		l.Replayed = at
	}
}

func ledgerBytes(letters []Letter, at time.Time) []byte {
	var b []byte
	for _, l := range letters {
		line, _ := json.Marshal(ledgerLine{Key: l.Key(), ReplayedAt: at.UTC()})
		b = append(append(b, line...), '\n')
	}
	return b
}

// readLines calls fn with each line of r (any length), numbered from 1.
func readLines(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// maybeGunzip returns r decompressed when it starts with the gzip magic.
func maybeGunzip(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(2)
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

// FileStore reads the dead letters of a "file" destination; the ledger
// is <path>.replayed.
type FileStore struct {
	path string
}

// NewFileStore returns the store of the dead-letter file at path.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Name is the path.
func (s *FileStore) Name() string { return s.path }

func (s *FileStore) ledgerPath() string { return s.path + ".replayed" }

// Scan implements Store.
func (s *FileStore) Scan(ctx context.Context, _, _ time.Time, fn func(Letter) error, bad func(error)) error {
	lg := ledger{}
	if f, err := os.Open(s.ledgerPath()); err == nil {
		lg.add(f)
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("redrive: %w", err)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	defer f.Close()
	return readLines(f, func(n int, line []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		l, err := decodeLetter(line, s.path+"#"+strconv.Itoa(n))
		if err != nil {
			bad(err)
			return nil
		}
		lg.mark(&l)
		return fn(l)
	})
}

// MarkReplayed appends to the ledger file (0600, like the dead letters)
// and fsyncs it.
func (s *FileStore) MarkReplayed(_ context.Context, letters []Letter, at time.Time) error {
	if len(letters) == 0 {
		return nil
	}
	f, err := os.OpenFile(s.ledgerPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("redrive: ledger: %w", err)
	}
	if _, err := f.Write(ledgerBytes(letters, at)); err != nil {
		f.Close()
		return fmt.Errorf("redrive: ledger: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("redrive: ledger: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("redrive: ledger: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// S3API is the part of *s3.Client an S3Store uses.
type S3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// S3Store reads the dead letters of an "s3" destination: gzipped NDJSON
// objects under <prefix>dt=YYYY-MM-DD/; the ledger is one object per
// MarkReplayed under <prefix>replayed/.
type S3Store struct {
	api            S3API
	bucket, prefix string
}

// NewS3Store returns the store of the dead letters under prefix (which
// ends with "/" or is empty) in bucket.
func NewS3Store(api S3API, bucket, prefix string) *S3Store {
	return &S3Store{api: api, bucket: bucket, prefix: prefix}
}

// Name is s3://bucket/prefix.
func (s *S3Store) Name() string { return "s3://" + s.bucket + "/" + s.prefix }

func (s *S3Store) ledgerPrefix() string { return s.prefix + "replayed/" }

// keys lists the object keys under p.
func (s *S3Store) keys(ctx context.Context, p string) ([]string, error) {
	var out []string
	pages := s3.NewListObjectsV2Paginator(s.api, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), Prefix: aws.String(p)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("redrive: list s3://%s/%s: %w", s.bucket, p, err)
		}
		for _, o := range page.Contents {
			out = append(out, aws.ToString(o.Key))
		}
	}
	return out, nil
}

func (s *S3Store) get(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("redrive: get s3://%s/%s: %w", s.bucket, key, err)
	}
	return out.Body, nil
}

// Scan implements Store. It reads the ledger first, then the objects of
// the days that overlap [since, until).
func (s *S3Store) Scan(ctx context.Context, since, until time.Time, fn func(Letter) error, bad func(error)) error {
	lg := ledger{}
	lkeys, err := s.keys(ctx, s.ledgerPrefix())
	if err != nil {
		return err
	}
	for _, k := range lkeys {
		body, err := s.get(ctx, k)
		if err != nil {
			return err
		}
		r, err := maybeGunzip(body)
		if err == nil {
			lg.add(r)
		}
		body.Close()
	}
	keys, err := s.keys(ctx, s.prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if strings.HasPrefix(k, s.ledgerPrefix()) || outsideDays(strings.TrimPrefix(k, s.prefix), since, until) {
			continue
		}
		if err := s.scanObject(ctx, k, lg, fn, bad); err != nil {
			return err
		}
	}
	return nil
}

func (s *S3Store) scanObject(ctx context.Context, key string, lg ledger, fn func(Letter) error, bad func(error)) error {
	body, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	defer body.Close()
	r, err := maybeGunzip(body)
	if err != nil {
		bad(fmt.Errorf("redrive: s3://%s/%s: %w", s.bucket, key, err))
		return nil
	}
	origin := "s3://" + s.bucket + "/" + key
	err = readLines(r, func(n int, line []byte) error {
		l, err := decodeLetter(line, origin+"#"+strconv.Itoa(n))
		if err != nil {
			bad(err)
			return nil
		}
		lg.mark(&l)
		if err := fn(l); err != nil {
			return stopScan{err}
		}
		return nil
	})
	var stop stopScan
	switch {
	case errors.As(err, &stop):
		return stop.error
	case err != nil && ctx.Err() != nil:
		return ctx.Err()
	case err != nil: // a damaged object: its readable lines were passed on
		bad(fmt.Errorf("redrive: read %s: %w", origin, err))
	}
	return nil
}

// stopScan wraps an error from the caller's fn, which ends the scan.
type stopScan struct{ error }

// outsideDays reports whether an object key (below the prefix) lies in a
// dt=YYYY-MM-DD/ partition wholly outside [since, until).
func outsideDays(rest string, since, until time.Time) bool {
	day, ok := strings.CutPrefix(rest, "dt=")
	if !ok || len(day) < 10 {
		return false
	}
	d, err := time.Parse("2006-01-02", day[:10])
	if err != nil {
		return false
	}
	return (!since.IsZero() && d.Add(24*time.Hour).Before(since)) || (!until.IsZero() && !d.Before(until))
}

// MarkReplayed writes one ledger object for letters.
func (s *S3Store) MarkReplayed(ctx context.Context, letters []Letter, at time.Time) error {
	if len(letters) == 0 {
		return nil
	}
	raw := ledgerBytes(letters, at)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(raw)
	if err := zw.Close(); err != nil {
		return fmt.Errorf("redrive: ledger: %w", err)
	}
	sum := sha256.Sum256(raw)
	key := s.ledgerPrefix() + at.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(sum[:6]) + ".ndjson.gz"
	_, err := s.api.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes()),
		ContentLength: aws.Int64(int64(buf.Len())), ContentType: aws.String("application/x-ndjson"), ContentEncoding: aws.String("gzip")})
	if err != nil {
		return fmt.Errorf("redrive: ledger s3://%s/%s: %w", s.bucket, key, err)
	}
	return nil
}
