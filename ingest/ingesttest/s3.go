package ingesttest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// ErrCut is the error a body cut by S3.CutAfter returns, like a connection
// reset in the middle of a download.
var ErrCut = errors.New("ingesttest: connection reset by peer")

// S3 is an in-memory S3 implementing ingest.S3API: GetObject (with
// If-Match) and ListObjectsV2 (prefix, pages of PageSize keys in key
// order). Its methods are safe for concurrent use; set the hook fields
// before the first call.
type S3 struct {
	// PageSize caps keys per ListObjectsV2 page; default 1000.
	PageSize int
	// CutAfter, if set, makes the body of an object fail with ErrCut after
	// the returned number of bytes (negative: not cut), once per call.
	CutAfter func(bucket, key string) int
	// GetError, if set, fails GetObject with the returned error.
	GetError func(bucket, key string) error

	mu      sync.Mutex
	objects map[string][]byte // "bucket/key" -> data
	gets    map[string]int
}

// NewS3 returns an empty S3.
func NewS3() *S3 { return &S3{objects: map[string][]byte{}, gets: map[string]int{}} }

// Put stores an object and returns its ETag (hex MD5, without quotes).
func (f *S3) Put(bucket, key string, data []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[bucket+"/"+key] = append([]byte(nil), data...)
	return etag(data)
}

// Gets returns how many times GetObject found the object.
func (f *S3) Gets(bucket, key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[bucket+"/"+key]
}

func etag(data []byte) string {
	sum := md5.Sum(data)
	return hex.EncodeToString(sum[:])
}

// GetObject implements ingest.S3API.
func (f *S3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bucket, key := aws.ToString(in.Bucket), aws.ToString(in.Key)
	if f.GetError != nil {
		if err := f.GetError(bucket, key); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	data, ok := f.objects[bucket+"/"+key]
	if ok {
		f.gets[bucket+"/"+key]++
	}
	f.mu.Unlock()
	if !ok {
		return nil, &types.NoSuchKey{Message: aws.String("The specified key does not exist.")}
	}
	tag := etag(data)
	if m := aws.ToString(in.IfMatch); m != "" && strings.Trim(m, `"`) != tag {
		return nil, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold"}
	}
	var body io.Reader = bytes.NewReader(data)
	if f.CutAfter != nil {
		if n := f.CutAfter(bucket, key); n >= 0 {
			body = io.MultiReader(io.LimitReader(bytes.NewReader(data), int64(n)), errReader{ErrCut})
		}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(body), ETag: aws.String(`"` + tag + `"`), ContentLength: aws.Int64(int64(len(data)))}, nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// ListObjectsV2 implements ingest.S3API.
func (f *S3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bucket, prefix := aws.ToString(in.Bucket), aws.ToString(in.Prefix)
	f.mu.Lock()
	var keys []string
	for k := range f.objects {
		b, key, _ := strings.Cut(k, "/")
		if b == bucket && strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	start := 0
	if tok := aws.ToString(in.ContinuationToken); tok != "" {
		start, _ = strconv.Atoi(tok)
	}
	size := f.PageSize
	if size <= 0 {
		size = 1000
	}
	end := min(start+size, len(keys))
	out := &s3.ListObjectsV2Output{KeyCount: aws.Int32(int32(end - start))}
	for _, k := range keys[start:end] {
		data := f.objects[bucket+"/"+k]
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k), ETag: aws.String(`"` + etag(data) + `"`), Size: aws.Int64(int64(len(data)))})
	}
	f.mu.Unlock()
	if end < len(keys) {
		out.IsTruncated = aws.Bool(true)
		out.NextContinuationToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}
