package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/ingest"
	"github.com/leasehold/leasehold/producer"
)

// sdkErr wraps err as the SDK returns a service's error after its own
// retries: an operation error naming the service around a response error
// carrying the HTTP status.
func sdkErr(service, op string, status int, err error) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op, Err: &awshttp.ResponseError{
		RequestID: "req-1",
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err,
		},
	}}
}

func TestRetryable(t *testing.T) {
	code := func(c string) error { return &smithy.GenericAPIError{Code: c, Message: "test"} }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		// DynamoDB (the manifest): throttling that outlived the SDK's
		// retries passes; it was once read as a permanent 400.
		{"dynamodb throughput exceeded", sdkErr("DynamoDB", "UpdateItem", 400, &dbtypes.ProvisionedThroughputExceededException{Message: new("slow down")}), true},
		{"dynamodb throttling", sdkErr("DynamoDB", "UpdateItem", 400, code("ThrottlingException")), true},
		{"dynamodb request limit", sdkErr("DynamoDB", "GetItem", 400, &dbtypes.RequestLimitExceeded{}), true},
		{"dynamodb 500", sdkErr("DynamoDB", "GetItem", 500, &dbtypes.InternalServerError{}), true},
		{"dynamodb table missing", sdkErr("DynamoDB", "GetItem", 400, &dbtypes.ResourceNotFoundException{}), false},
		{"dynamodb access denied", sdkErr("DynamoDB", "PutItem", 400, code("AccessDeniedException")), false},
		{"dynamodb validation", sdkErr("DynamoDB", "PutItem", 400, code("ValidationException")), false},
		// S3 (the logs).
		{"s3 slow down", sdkErr("S3", "GetObject", 503, code("SlowDown")), true},
		{"s3 internal error", sdkErr("S3", "GetObject", 500, code("InternalError")), true},
		{"s3 expired token", sdkErr("S3", "GetObject", 400, code("ExpiredToken")), true},
		{"s3 request timeout", sdkErr("S3", "GetObject", 400, code("RequestTimeout")), true},
		{"s3 object changed", sdkErr("S3", "GetObject", 412, code("PreconditionFailed")), true},
		{"s3 no such key", sdkErr("S3", "GetObject", 404, &s3types.NoSuchKey{}), false},
		{"s3 no such key without status", code("NoSuchKey"), false},
		{"s3 not found", sdkErr("S3", "HeadObject", 404, &s3types.NotFound{}), false},
		{"s3 no such bucket", sdkErr("S3", "ListObjectsV2", 404, &s3types.NoSuchBucket{}), false},
		{"s3 archived", sdkErr("S3", "GetObject", 403, &s3types.InvalidObjectState{}), false},
		{"s3 access denied", sdkErr("S3", "GetObject", 403, code("AccessDenied")), false},
		{"s3 bare 403", sdkErr("S3", "GetObject", 403, errors.New("forbidden")), false},
		{"s3 bare 503", sdkErr("S3", "GetObject", 503, errors.New("unavailable")), true},
		// Kinesis, through the producer.
		{"producer gave up", &producer.FailedError{Records: []producer.Result{{Code: "InternalFailure", Err: code("InternalFailure")}}}, true},
		{"invalid record", fmt.Errorf("put: %w", producer.ErrInvalidRecord), false},
		// Neither service's doing.
		{"connection reset", &smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}}, true},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), true},
		{"canceled", context.Canceled, true},
		{"interrupted", ingest.ErrInterrupted, true},
		{"claimed", &ingest.ClaimedError{}, true},
		{"claim lost", ingest.ErrClaimLost, true},
		{"corrupt", fmt.Errorf("read: %w", cloudfront.ErrCorrupt), false},
		{"bad layout", cloudfront.ErrBadLayout, false},
		{"conflict", ingest.ErrConflict, false},
		{"bad url", ingest.ErrBadURL, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ingest.Retryable(tt.err); got != tt.want {
				t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
