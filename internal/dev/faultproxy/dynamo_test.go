package faultproxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// fakeDynamo answers every call with an empty success carrying one unit
// of consumed capacity.
func fakeDynamo() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), "Scan") {
			_, _ = w.Write([]byte(`{"Items":[],"Count":0,"ScannedCount":0,"ConsumedCapacity":{"TableName":"t","CapacityUnits":0.5}}`))
			return
		}
		_, _ = w.Write([]byte(`{"ConsumedCapacity":{"TableName":"t","CapacityUnits":1}}`))
	}))
}

func dynamoClient(url string) *dynamodb.Client {
	return dynamodb.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
	})
}

func TestDynamoProxyFaults(t *testing.T) {
	be := fakeDynamo()
	defer be.Close()
	p, err := StartDynamoProxy(be.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dynamoClient(p.URL())
	scan := func(ctx context.Context) error {
		_, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("t"), ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal})
		return err
	}
	update := func(ctx context.Context) error {
		_, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: map[string]types.AttributeValue{"k": &types.AttributeValueMemberS{Value: "x"}}})
		return err
	}
	ctx := context.Background()
	if err := scan(ctx); err != nil {
		t.Fatalf("pass-through: %v", err)
	}
	if err := update(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.ReadUnits != 0.5 || s.WriteUnits != 1 || s.Calls["Scan"] != 1 || s.Forwarded != 2 {
		t.Fatalf("stats after two calls: %+v", s)
	}

	p.Set(DynamoFaults{ThrottleRate: 1})
	var tp *types.ProvisionedThroughputExceededException
	if err := scan(ctx); !errors.As(err, &tp) {
		t.Fatalf("throttled: %v", err)
	}
	p.Set(DynamoFaults{ServerErrorRate: 1, Operations: []string{"UpdateItem"}})
	var ise *types.InternalServerError
	if err := update(ctx); !errors.As(err, &ise) {
		t.Fatalf("5xx on UpdateItem: %v", err)
	}
	if err := scan(ctx); err != nil {
		t.Fatalf("a Scan is not faulted when only UpdateItem is: %v", err)
	}

	p.Set(DynamoFaults{Latency: 300 * time.Millisecond})
	t0 := time.Now()
	if err := scan(ctx); err != nil || time.Since(t0) < 300*time.Millisecond {
		t.Fatalf("latency: %v after %s", err, time.Since(t0))
	}

	p.Set(DynamoFaults{BlackHole: true})
	bctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	if err := scan(bctx); err == nil || time.Since(t0) < 300*time.Millisecond {
		t.Fatalf("black hole answered: %v after %s", err, time.Since(t0))
	}
	if s := p.Stats(); s.BlackHoled != 1 || s.Injected != 2 {
		t.Fatalf("stats: %+v", s)
	}
	p.Set(DynamoFaults{})
	if err := scan(ctx); err != nil {
		t.Fatalf("after the faults are cleared: %v", err)
	}
}
