package integration

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/leasehold/leasehold/internal/dev/testenv"
)

// The helpers below remove, when the test ends, what a test made in the
// local stack, so a `make test` leaves the stack as it found it. Register
// them right after naming the resource: cleanups run last-registered
// first, so workers started later are stopped before their table, bucket
// or indices go. A failed removal is logged, not a test failure: the
// test's verdict is already in.

// deleteTableAtEnd deletes the DynamoDB table (a lease table the workers
// create, or one the test creates) when the test ends.
func deleteTableAtEnd(t *testing.T, table string) {
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		_, _ = testenv.DynamoDB(testenv.Local()).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table})
	})
}

// deleteBucketAtEnd empties and deletes the S3 bucket when the test ends
// (a bucket that was never created is fine).
func deleteBucketAtEnd(t *testing.T, bucket string) {
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		c := testenv.S3(testenv.Local())
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return // NoSuchBucket: nothing to remove
			}
			for _, o := range page.Contents {
				if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
					t.Logf("cleanup: delete s3://%s/%s: %v", bucket, *o.Key, err)
				}
			}
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
			t.Logf("cleanup: delete bucket %s: %v", bucket, err)
		}
	})
}

// deleteIndicesAtEnd deletes the local OpenSearch's indices named
// index-* and the index template named index (the search sinks write
// daily indices through a template) when the test ends.
func deleteIndicesAtEnd(t *testing.T, index string) {
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		base := testenv.Local().OpenSearch
		for _, u := range []string{base + "/" + index + "-*?expand_wildcards=all", base + "/_index_template/" + index} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, u, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Logf("cleanup: DELETE %s: %v", u, err)
				continue
			}
			resp.Body.Close()
		}
	})
}
