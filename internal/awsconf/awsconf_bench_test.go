package awsconf

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// The benchmarks below measure what one SDK call costs this process at
// the worker's steady workload: a GetRecords answered with 8 records of
// about 300 bytes (25 records a second on a shard, polled once a
// second... or a third of it) and a DynamoDB GetItem, each against a local
// server that answers a canned response. BenchmarkRawPOST is the floor:
// the same request and response through net/http alone.

func getRecordsBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"MillisBehindLatest":0,"NextShardIterator":"AAAAAAAAAAH4b7Xw1bVqRy1cR4Rk8lNN+oZ0cDKcXoW1XW8I5+TCaV1V6Bz9O7v4RyvEAMPLE","Records":[`)
	data := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("2026-12-04\t12:00:00\tLHR62-C1\t3125\t198.51.100.7\tGET\td111111abcdef8.cloudfront.net\t/assets/a/b.jpg\t200\t", 3)))
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"ApproximateArrivalTimestamp":1.733313600123E9,"Data":%q,"PartitionKey":"asset-%d","SequenceNumber":"4963%052d"}`, data, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func cannedServer(b *testing.B, body []byte, contentType string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("x-amzn-RequestId", "c0ffee00-0000-4000-8000-000000000000")
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func benchConfig(endpoint string) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
}

func BenchmarkGetRecords(b *testing.B) {
	srv := cannedServer(b, getRecordsBody(8), "application/x-amz-json-1.1")
	kc := Kinesis(benchConfig(srv.URL))
	ctx := context.Background()
	in := &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAAAAAAAH4b7Xw1bVqRy1cR4Rk8lNN"), Limit: aws.Int32(2000)}
	b.ReportAllocs()
	for b.Loop() {
		out, err := kc.GetRecords(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Records) != 8 {
			b.Fatalf("%d records", len(out.Records))
		}
	}
}

func BenchmarkDynamoDBGetItem(b *testing.B) {
	body := []byte(`{"Item":{"leaseKey":{"S":"shardId-000000000001"},"leaseOwner":{"S":"w1"},"leaseCounter":{"N":"1234"},"checkpoint":{"S":"49630000000000000000000000000000000000000000000000000000"}}}`)
	srv := cannedServer(b, body, "application/x-amz-json-1.0")
	dc := DynamoDB(benchConfig(srv.URL))
	ctx := context.Background()
	in := &dynamodb.GetItemInput{TableName: aws.String("leases"), Key: map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000001"}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dc.GetItem(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawPOST(b *testing.B) {
	srv := cannedServer(b, getRecordsBody(8), "application/x-amz-json-1.1")
	hc := &http.Client{Transport: &http.Transport{}}
	req := `{"Limit":2000,"ShardIterator":"AAAAAAAAAAH4b7Xw1bVqRy1cR4Rk8lNN"}`
	b.ReportAllocs()
	for b.Loop() {
		resp, err := hc.Post(srv.URL, "application/x-amz-json-1.1", strings.NewReader(req))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
