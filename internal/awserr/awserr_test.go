package awserr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/leasehold/leasehold/internal/awserr"
)

// apiErr builds an error shaped as the SDK returns it: an operation
// error around a response error (the status) around the API error (the
// code).
func apiErr(code string, status int) error {
	var inner error = &smithy.GenericAPIError{Code: code, Message: "test"}
	if code == "" {
		inner = errors.New("no code")
	}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: inner}}
}

func TestS3(t *testing.T) {
	tests := []struct {
		err  error
		want awserr.Class
	}{
		// The dead-letter writer's old copy got these three wrong.
		{apiErr("InternalError", 500), awserr.Retry},
		{apiErr("InternalError", 200), awserr.Retry}, // S3 can send an error in a 200
		{apiErr("ServiceUnavailable", 503), awserr.Retry},
		{apiErr("TokenRefreshRequired", 400), awserr.Retry},
		{apiErr("SlowDown", 503), awserr.Retry},
		{apiErr("RequestTimeout", 400), awserr.Retry},
		{apiErr("ExpiredToken", 400), awserr.Retry},
		{apiErr("BadDigest", 400), awserr.Retry},
		{apiErr("", 502), awserr.Retry},
		{apiErr("", 429), awserr.Retry},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, awserr.Retry},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), awserr.Retry},
		{apiErr("AccessDenied", 403), awserr.CannotWrite},
		{apiErr("NoSuchBucket", 404), awserr.CannotWrite},
		{apiErr("InvalidAccessKeyId", 403), awserr.CannotWrite},
		{apiErr("SignatureDoesNotMatch", 403), awserr.CannotWrite},
		{apiErr("AllAccessDisabled", 403), awserr.CannotWrite},
		{apiErr("PermanentRedirect", 301), awserr.CannotWrite},
		{apiErr("KMS.DisabledException", 400), awserr.CannotWrite},
		{apiErr("", 403), awserr.CannotWrite},
		{apiErr("InvalidArgument", 400), awserr.Reject},
		{apiErr("EntityTooLarge", 400), awserr.Reject},
		{apiErr("", 400), awserr.Reject},
	}
	for _, tc := range tests {
		if got := awserr.S3(tc.err); got != tc.want {
			t.Errorf("S3(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestDynamoDB(t *testing.T) {
	tests := []struct {
		err  error
		want awserr.Class
	}{
		{apiErr("ProvisionedThroughputExceededException", 400), awserr.Retry},
		{apiErr("ThrottlingException", 400), awserr.Retry},
		{apiErr("InternalServerError", 500), awserr.Retry},
		{apiErr("ExpiredTokenException", 400), awserr.Retry},
		{apiErr("ResourceInUseException", 400), awserr.Retry},
		{apiErr("", 503), awserr.Retry},
		{&net.OpError{Op: "read", Err: errors.New("connection reset")}, awserr.Retry},
		{apiErr("ResourceNotFoundException", 400), awserr.CannotWrite},
		{apiErr("AccessDeniedException", 400), awserr.CannotWrite},
		{apiErr("UnrecognizedClientException", 400), awserr.CannotWrite},
		{apiErr("KMSDisabledException", 400), awserr.CannotWrite},
		{apiErr("ValidationException", 400), awserr.Reject},
		{apiErr("SerializationException", 400), awserr.Reject},
	}
	for _, tc := range tests {
		if got := awserr.DynamoDB(tc.err); got != tc.want {
			t.Errorf("DynamoDB(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestKinesis(t *testing.T) {
	tests := []struct {
		err  error
		want awserr.Class
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, awserr.Retry},
		{fmt.Errorf("describe: %w", context.DeadlineExceeded), awserr.Retry},
		{apiErr("LimitExceededException", 400), awserr.Retry},
		{apiErr("ResourceInUseException", 400), awserr.Retry},
		{apiErr("", 500), awserr.Retry},
		{apiErr("ResourceNotFoundException", 400), awserr.CannotWrite},
		{apiErr("AccessDeniedException", 400), awserr.CannotWrite},
		{apiErr("KMSDisabledException", 400), awserr.CannotWrite},
		{apiErr("InvalidArgumentException", 400), awserr.Reject},
	}
	for _, tc := range tests {
		if got := awserr.Kinesis(tc.err); got != tc.want {
			t.Errorf("Kinesis(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// withService is apiErr with another operation error's service.
func withService(service string, err error) error {
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		return &smithy.OperationError{ServiceID: service, OperationName: "Call", Err: oe.Err}
	}
	return err
}

func TestKinesisKMS(t *testing.T) {
	// KMS throttling and KMS's own failures pass; the old table read every
	// KMS code as CannotWrite, telling the collector's operator to act.
	for code, want := range map[string]awserr.Class{
		"KMSThrottlingException":   awserr.Retry,
		"KMSInternalException":     awserr.Retry,
		"KMSAccessDeniedException": awserr.CannotWrite,
		"KMSNotFoundException":     awserr.CannotWrite,
	} {
		if got := awserr.Kinesis(apiErr(code, 400)); got != want {
			t.Errorf("Kinesis(%s) = %v, want %v", code, got, want)
		}
	}
}

func TestKinesisEntry(t *testing.T) {
	for code, want := range map[string]awserr.Class{
		"ProvisionedThroughputExceededException": awserr.Retry,
		"InternalFailure":                        awserr.Retry,
		"KMSThrottlingException":                 awserr.Retry,
		"KMSInternalException":                   awserr.Retry,
		"SomethingNew":                           awserr.Retry,
		"KMSAccessDeniedException":               awserr.CannotWrite,
		"KMSDisabledException":                   awserr.CannotWrite,
	} {
		if got := awserr.KinesisEntry(code); got != want {
			t.Errorf("KinesisEntry(%s) = %v, want %v", code, got, want)
		}
	}
}

func TestThrottled(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{apiErr("ProvisionedThroughputExceededException", 400), true},
		{apiErr("ThrottlingException", 400), true},
		{apiErr("RequestLimitExceeded", 400), true},
		{apiErr("LimitExceededException", 400), true},
		{apiErr("KMSThrottlingException", 400), true},
		{apiErr("SlowDown", 503), true},
		{apiErr("Whatever", 429), true},
		{apiErr("", 429), true},
		{apiErr("InternalFailure", 500), false},
		{apiErr("ServiceUnavailable", 503), false},
		{apiErr("AccessDenied", 403), false},
		{fmt.Errorf("put: %w", context.DeadlineExceeded), false},
	}
	for _, tc := range tests {
		if got := awserr.Throttled(tc.err); got != tc.want {
			t.Errorf("Throttled(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want awserr.Class
	}{
		// The service named by the operation error picks the table.
		{"dynamodb throttled at 400", withService("DynamoDB", apiErr("ProvisionedThroughputExceededException", 400)), awserr.Retry},
		{"dynamodb validation", withService("DynamoDB", apiErr("ValidationException", 400)), awserr.Reject},
		{"dynamodb table missing", withService("DynamoDB", apiErr("ResourceNotFoundException", 400)), awserr.CannotWrite},
		{"s3 slow down", withService("S3", apiErr("SlowDown", 503)), awserr.Retry},
		{"s3 expired token", withService("S3", apiErr("ExpiredToken", 400)), awserr.Retry},
		{"s3 kms", withService("S3", apiErr("KMS.DisabledException", 400)), awserr.CannotWrite},
		{"kinesis stream updating", withService("Kinesis", apiErr("ResourceInUseException", 400)), awserr.Retry},
		{"kinesis invalid argument", withService("Kinesis", apiErr("InvalidArgumentException", 400)), awserr.Reject},
		// No service named: the first table that knows the code.
		{"bare s3 code", &smithy.GenericAPIError{Code: "NoSuchBucket"}, awserr.CannotWrite},
		{"bare dynamodb code", &smithy.GenericAPIError{Code: "ItemCollectionSizeLimitExceededException"}, awserr.Reject},
		{"bare throttling", &smithy.GenericAPIError{Code: "ThrottlingException"}, awserr.Retry},
		{"other service, unknown code, 400", withService("STS", apiErr("Whatever", 400)), awserr.Reject},
		{"other service, unknown code, 503", withService("STS", apiErr("Whatever", 503)), awserr.Retry},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, awserr.Retry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := awserr.Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestTransport(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"deadline", fmt.Errorf("put: %w", context.DeadlineExceeded), true},
		{"send error", &smithyhttp.RequestSendError{Err: errors.New("dial")}, true},
		{"net op error", &net.OpError{Op: "read", Err: errors.New("reset")}, true},
		{"cut short", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"canceled", context.Canceled, false},
		{"service answer", apiErr("InternalFailure", 500), false},
		{"mystery", errors.New("mystery"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := awserr.Transport(tc.err); got != tc.want {
				t.Errorf("Transport(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
