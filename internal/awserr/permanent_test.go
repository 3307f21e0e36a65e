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
	} {
		if got := Permanent(tc.err); got != tc.want {
			t.Errorf("Permanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
