package integration

// Smoke tests of the local stack (`leasehold dev up`): one per service,
// each through the client the project uses in production, each checking
// a behaviour the project relies on. They are skipped under -short and
// fail with a how-to when the stack is down.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/opensearch-project/opensearch-go/v4"
	"github.com/opensearch-project/opensearch-go/v4/opensearchapi"

	"github.com/leasehold/leasehold/internal/dev/testenv"
)

// cleanupContext bounds clean-up calls made after the test's own context
// may have ended.
func cleanupContext(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
}

// TestStackKinesis creates a 4-shard stream, puts records and reads every
// one back, exactly once, from all four shards.
func TestStackKinesis(t *testing.T) {
	e := testenv.Require(t, "kinesis")
	ctx := testenv.Context(t, 2*time.Minute)
	c := testenv.Kinesis(e)
	stream := testenv.Name(t, "stream")

	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
			t.Errorf("DeleteStream: %v", err)
		}
	})
	if err := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	}).Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, time.Minute); err != nil {
		t.Fatalf("wait for stream: %v", err)
	}

	const n = 200
	want := map[string]bool{}
	var entries []kintypes.PutRecordsRequestEntry
	for i := range n {
		data := fmt.Sprintf(`{"event":"view","seq":%d}`, i)
		want[data] = true
		entries = append(entries, kintypes.PutRecordsRequestEntry{Data: []byte(data), PartitionKey: aws.String(fmt.Sprintf("asset-%d", i))})
	}
	out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %d of %d records failed", aws.ToInt32(out.FailedRecordCount), n)
	}

	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	if len(shards.Shards) != 4 {
		t.Fatalf("ListShards: got %d shards, want 4", len(shards.Shards))
	}
	got := map[string]int{}
	perShard := map[string]int{}
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator %s: %v", aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			r, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
			if err != nil {
				t.Fatalf("GetRecords %s: %v", aws.ToString(sh.ShardId), err)
			}
			for _, rec := range r.Records {
				got[string(rec.Data)]++
				perShard[aws.ToString(sh.ShardId)]++
			}
			if len(r.Records) == 0 && aws.ToInt64(r.MillisBehindLatest) == 0 {
				break
			}
			iter = r.NextShardIterator
		}
	}
	for data := range want {
		if got[data] != 1 {
			t.Errorf("record %s read %d times, want once", data, got[data])
		}
	}
	if len(got) != len(want) {
		t.Errorf("read %d distinct records, want %d", len(got), len(want))
	}
	if len(perShard) != 4 {
		t.Errorf("records landed on %d shards (%v), want all 4", len(perShard), perShard)
	}
}

// TestStackDynamoDB creates a table and sees a conditional write rejected
// with ConditionalCheckFailedException, the basis of lease fencing.
func TestStackDynamoDB(t *testing.T) {
	e := testenv.Require(t, "dynamodb")
	ctx := testenv.Context(t, time.Minute)
	c := testenv.DynamoDB(e)
	table := testenv.Name(t, "table")

	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
			t.Errorf("DeleteTable: %v", err)
		}
	})
	if err := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	}).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute); err != nil {
		t.Fatalf("wait for table: %v", err)
	}

	put := func(owner string, epoch int) error {
		_, err := c.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(table),
			Item: map[string]ddbtypes.AttributeValue{
				"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000000"},
				"owner":    &ddbtypes.AttributeValueMemberS{Value: owner},
				"epoch":    &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(epoch)},
			},
			ConditionExpression: aws.String("attribute_not_exists(leaseKey)"),
		})
		return err
	}
	if err := put("worker-a", 1); err != nil {
		t.Fatalf("first conditional PutItem: %v", err)
	}
	err = put("worker-b", 1)
	var ccf *ddbtypes.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("second conditional PutItem: got %v, want ConditionalCheckFailedException", err)
	}
	item, err := c.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(table),
		Key:            map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000000"}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	if o, _ := item.Item["owner"].(*ddbtypes.AttributeValueMemberS); o == nil || o.Value != "worker-a" {
		t.Errorf("owner after rejected write = %v, want worker-a", item.Item["owner"])
	}
}

// TestStackS3 writes a gzipped NDJSON object under a Hive-style partition,
// lists and reads it back, and sees If-None-Match: * refuse an overwrite.
func TestStackS3(t *testing.T) {
	e := testenv.Require(t, "s3")
	ctx := testenv.Context(t, time.Minute)
	c := testenv.S3(e)
	bucket := testenv.Name(t, "bucket")

	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	now := time.Now().UTC()
	prefix := fmt.Sprintf("archive/dt=%s/hour=%02d/", now.Format("2006-01-02"), now.Hour())
	key := prefix + "shardId-000000000000-49650000000000000000000000.ndjson.gz"
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
			t.Errorf("DeleteObject: %v", err)
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("DeleteBucket: %v", err)
		}
	})

	var lines []string
	for i := range 50 {
		lines = append(lines, fmt.Sprintf(`{"asset":"a-%d","event":"download"}`, i))
	}
	plain := strings.Join(lines, "\n") + "\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write([]byte(plain)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	put := func() error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key),
			Body: bytes.NewReader(gz.Bytes()), ContentType: aws.String("application/gzip"),
			IfNoneMatch: aws.String("*"),
		})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("first PutObject with If-None-Match: *: %v", err)
	}

	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	if len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != key {
		var keys []string
		for _, o := range list.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		t.Fatalf("ListObjectsV2 %s: got %v, want [%s]", prefix, keys, key)
	}

	obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer obj.Body.Close()
	zr, err := gzip.NewReader(obj.Body)
	if err != nil {
		t.Fatalf("GetObject: body is not gzip: %v", err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("GetObject: gunzip: %v", err)
	}
	if string(got) != plain {
		t.Errorf("object read back differs: got %d bytes, want %d", len(got), len(plain))
	}

	err = put()
	var re *awshttp.ResponseError
	var api smithy.APIError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed || !errors.As(err, &api) || api.ErrorCode() != "PreconditionFailed" {
		t.Fatalf("overwrite with If-None-Match: *: got %v, want HTTP 412 PreconditionFailed", err)
	}
}

// TestStackOpenSearch creates an index, bulk-indexes documents with
// deterministic ids through opensearch-go v4, and finds every one.
func TestStackOpenSearch(t *testing.T) {
	e := testenv.Require(t, "opensearch")
	ctx := testenv.Context(t, 2*time.Minute)
	client, err := opensearchapi.NewClient(opensearchapi.Config{Client: opensearch.Config{Addresses: []string{e.OpenSearch}}})
	if err != nil {
		t.Fatalf("opensearch client: %v", err)
	}
	index := testenv.Name(t, "events")

	_, err = client.Indices.Create(ctx, opensearchapi.IndicesCreateReq{
		Index: index,
		Body:  strings.NewReader(`{"settings":{"number_of_shards":1,"number_of_replicas":0},"mappings":{"properties":{"asset":{"type":"keyword"},"event":{"type":"keyword"},"seq":{"type":"integer"}}}}`),
	})
	if err != nil {
		t.Fatalf("create index: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext(t)
		defer cancel()
		if _, err := client.Indices.Delete(ctx, opensearchapi.IndicesDeleteReq{Indices: []string{index}}); err != nil {
			t.Errorf("delete index: %v", err)
		}
	})

	const n = 100
	var body bytes.Buffer
	for i := range n {
		meta, _ := json.Marshal(map[string]any{"index": map[string]any{"_index": index, "_id": fmt.Sprintf("req-%04d", i)}})
		doc, _ := json.Marshal(map[string]any{"asset": fmt.Sprintf("a-%d", i%10), "event": "view", "seq": i})
		body.Write(meta)
		body.WriteByte('\n')
		body.Write(doc)
		body.WriteByte('\n')
	}
	// Index the batch twice: deterministic ids make the replay harmless.
	for round := range 2 {
		resp, err := client.Bulk(ctx, opensearchapi.BulkReq{Body: bytes.NewReader(body.Bytes())})
		if err != nil {
			t.Fatalf("bulk round %d: %v", round, err)
		}
		if resp.Errors || len(resp.Items) != n {
			t.Fatalf("bulk round %d: errors=%v items=%d, want no errors and %d items", round, resp.Errors, len(resp.Items), n)
		}
	}
	if _, err := client.Indices.Refresh(ctx, &opensearchapi.IndicesRefreshReq{Index: []string{index}}); err != nil {
		t.Fatalf("refresh: %v", err)
	}

	count, err := client.Indices.Count(ctx, &opensearchapi.IndicesCountReq{Indices: []string{index}})
	if err != nil {
		t.Fatalf("count: %v", err)
	}
	if count.Count != n {
		t.Errorf("count = %d, want %d", count.Count, n)
	}
	search, err := client.Search(ctx, &opensearchapi.SearchReq{
		Indices: []string{index},
		Body:    strings.NewReader(`{"size":100,"query":{"term":{"asset":"a-3"}},"sort":[{"seq":"asc"}]}`),
	})
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	var ids []string
	for _, h := range search.Hits.Hits {
		ids = append(ids, h.ID)
	}
	sort.Strings(ids)
	var want []string
	for i := 3; i < n; i += 10 {
		want = append(want, fmt.Sprintf("req-%04d", i))
	}
	if search.Hits.Total.Value != len(want) || strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Errorf("search asset=a-3: total %d ids %v, want %v", search.Hits.Total.Value, ids, want)
	}
}
