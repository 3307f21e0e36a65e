package devstack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// startS3 serves S3 from dir on a random loopback port until the test ends.
func startS3(t *testing.T, dir string) *s3.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveS3(t, ln, dir)
}

// s3Client is an S3 client of the server at addr.
func s3Client(addr string) *s3.Client {
	return s3.New(s3.Options{
		Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String("http://" + addr), UsePathStyle: true,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// TestS3ServerConditionalPut checks what the archive sink relies on:
// If-None-Match: * refuses an overwrite with 412, "a" and "a/b" coexist,
// a bucket deletes cleanly once its nested keys are gone, and buckets are
// not created on first use.
func TestS3ServerConditionalPut(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	key := "archive/dt=2026-11-25/hour=21/shardId-000000000000-1.ndjson.gz"
	put := func(c *s3.Client, bucket, body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body), IfNoneMatch: aws.String("*")})
		return err
	}

	c := startS3(t, dir)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("kept")}); err != nil {
		t.Fatal(err)
	}
	if err := put(c, "kept", "first"); err != nil {
		t.Fatalf("first put: %v", err)
	}
	err := put(c, "kept", "second")
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Fatalf("overwrite: got %v, want HTTP 412", err)
	}
	// If-Match: the current ETag allows an overwrite, any other is refused.
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("kept"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("kept"), Key: aws.String(key), Body: strings.NewReader("third"), IfMatch: aws.String(`"0123"`)})
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Errorf("put with a stale If-Match: got %v, want HTTP 412", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("kept"), Key: aws.String(key), Body: strings.NewReader("third"), IfMatch: head.ETag}); err != nil {
		t.Errorf("put with the current If-Match: %v", err)
	}
	// "a" and "a/b" may coexist, as on S3.
	for _, k := range []string{"dir", "dir/file"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("kept"), Key: aws.String(k), Body: bytes.NewReader([]byte(k))}); err != nil {
			t.Errorf("put %s: %v", k, err)
		}
	}

	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("scratch")}); err != nil {
		t.Fatal(err)
	}
	if err := put(c, "scratch", "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("scratch"), Key: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("scratch")}); err != nil {
		t.Errorf("DeleteBucket after its only nested object was deleted: %v", err)
	}
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("missing"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if err == nil {
		t.Error("put to a missing bucket succeeded; buckets must not be created on first use")
	}
}

// TestS3ServerPersists restarts the server on the same folder and finds
// the object written before.
func TestS3ServerPersists(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- ServeS3(sctx, ln, dir, nil) }()
		c := s3.New(s3.Options{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("t", "t", ""),
			BaseEndpoint: aws.String("http://" + ln.Addr().String()), UsePathStyle: true})
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("kept")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("kept"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}()
	c := startS3(t, dir)
	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("kept"), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("object lost across a restart: %v", err)
	}
	b, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if string(b) != "v" {
		t.Errorf("object = %q after restart", b)
	}
}

func TestRunS3ServerLoopbackOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:9000", "localhost"} {
		err := RunS3Server(ctx, addr, t.TempDir(), nil)
		if err == nil {
			t.Errorf("RunS3Server(%q) succeeded, want a refusal", addr)
		}
	}
}
