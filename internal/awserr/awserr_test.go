package awserr_test

import (
	"context"
	"errors"
	"fmt"
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
