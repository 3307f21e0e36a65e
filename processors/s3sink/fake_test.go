package s3sink

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// apiErr is an S3 error as the SDK reports it: a code and an HTTP status.
type apiErr struct {
	code   string
	status int
}

func (e *apiErr) Error() string                 { return fmt.Sprintf("api error %s: status %d", e.code, e.status) }
func (e *apiErr) ErrorCode() string             { return e.code }
func (e *apiErr) ErrorMessage() string          { return e.code }
func (e *apiErr) ErrorFault() smithy.ErrorFault { return smithy.FaultUnknown }
func (e *apiErr) HTTPStatusCode() int           { return e.status }

type object struct {
	body []byte
	meta map[string]string
}

// fakeS3 is an in-memory bucket with S3's conditional-put semantics.
// fail, when set, is consulted before each call and may return an error
// to inject. Safe for concurrent use.
type fakeS3 struct {
	mu       sync.Mutex
	bucket   string
	objects  map[string]object
	puts     int
	exists   int // 412s returned
	heads    int
	lists    int
	pageSize int
	fail     func(op, key string) error
}

func newFakeS3(bucket string) *fakeS3 {
	return &fakeS3{bucket: bucket, objects: map[string]object{}, pageSize: 1000}
}

func (f *fakeS3) inject(op, key string) error {
	if f.fail == nil {
		return nil
	}
	return f.fail(op, key)
}

func (f *fakeS3) PutObject(ctx context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := aws.ToString(in.Key)
	if err := f.inject("put", key); err != nil {
		return nil, err
	}
	if aws.ToString(in.Bucket) != f.bucket {
		return nil, &apiErr{"NoSuchBucket", 404}
	}
	body, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	if in.ContentMD5 != nil {
		sum := md5.Sum(body)
		if base64.StdEncoding.EncodeToString(sum[:]) != *in.ContentMD5 {
			return nil, &apiErr{"BadDigest", 400}
		}
	}
	if aws.ToString(in.IfNoneMatch) == "*" {
		if _, ok := f.objects[key]; ok {
			f.exists++
			return nil, &apiErr{"PreconditionFailed", 412}
		}
	}
	meta := map[string]string{}
	for k, v := range in.Metadata {
		meta[k] = v
	}
	f.objects[key] = object{body: body, meta: meta}
	f.puts++
	return &s3.PutObjectOutput{}, nil
}

func (f *fakeS3) HeadObject(ctx context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := aws.ToString(in.Key)
	if err := f.inject("head", key); err != nil {
		return nil, err
	}
	f.heads++
	o, ok := f.objects[key]
	if !ok {
		return nil, &types.NotFound{}
	}
	meta := map[string]string{}
	for k, v := range o.meta {
		meta[strings.ToUpper(k[:1])+k[1:]] = v // the wire does not keep case
	}
	return &s3.HeadObjectOutput{Metadata: meta, ContentLength: aws.Int64(int64(len(o.body)))}, nil
}

func (f *fakeS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.inject("list", aws.ToString(in.Prefix)); err != nil {
		return nil, err
	}
	f.lists++
	var keys []string
	for k := range f.objects {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) && k > aws.ToString(in.ContinuationToken) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := &s3.ListObjectsV2Output{}
	if len(keys) > f.pageSize {
		keys = keys[:f.pageSize]
		out.IsTruncated = aws.Bool(true)
		out.NextContinuationToken = aws.String(keys[len(keys)-1])
	}
	for _, k := range keys {
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k)})
	}
	return out, nil
}

// keys returns the stored keys, sorted.
func (f *fakeS3) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ks []string
	for k := range f.objects {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (f *fakeS3) get(key string) object {
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objects[key]
	return object{body: bytes.Clone(o.body), meta: o.meta}
}

func (f *fakeS3) counts() (puts, exists, heads, lists int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts, f.exists, f.heads, f.lists
}
