package awserr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestPermanent(t *testing.T) {
	status := func(code int) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("x")}
	}
	api := func(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }
	// sdk is err as a service's call returns it: the operation error names
	// the service, the response error carries the status.
	sdk := func(service string, status int, code string) error {
		return &smithy.OperationError{ServiceID: service, OperationName: "Call", Err: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: api(code)}}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{api("AccessDeniedException"), true},
		{fmt.Errorf("get records: %w", api("KMSDisabledException")), true},
		{api("InvalidArgumentException"), true},
		{api("ProvisionedThroughputExceededException"), false},
		{api("ThrottlingException"), false},
		{api("InternalFailure"), false},
		{status(403), true},
		{status(400), true},
		{status(429), false},
		{status(500), false},
		{status(503), false},
		{context.DeadlineExceeded, false},
		{errors.New("connection reset"), false},
		{api("SerializationException"), true},
		{api("InvalidClientTokenId"), true},
		// As the SDK returns them, judged by awserr's table of the service.
		{sdk("DynamoDB", 400, "ProvisionedThroughputExceededException"), false},
		{sdk("DynamoDB", 400, "ConditionalCheckFailedException"), true},
		{sdk("DynamoDB", 400, "ResourceNotFoundException"), true},
		{sdk("DynamoDB", 400, "KMSDisabledException"), true},
		{sdk("Kinesis", 400, "ExpiredIteratorException"), false},
		{sdk("Kinesis", 400, "KMSAccessDeniedException"), true},
		{sdk("Kinesis", 400, "KMSThrottlingException"), false},
		// Where Permanent's own code lists once disagreed with the
		// services' tables. The SDK refreshes session credentials, so an
		// expired token passes (it was permanent here, Retry there); a
		// redirect to another region's endpoint needs an operator (it was
		// not permanent here, CannotWrite there).
		{sdk("DynamoDB", 400, "ExpiredTokenException"), false},
		{sdk("Kinesis", 301, "PermanentRedirect"), true},
	} {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
