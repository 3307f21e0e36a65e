package producer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestClassify(t *testing.T) {
	resp := func(status int, err error) error {
		return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}
	}
	api := func(code string) error { return &smithy.GenericAPIError{Code: code} }
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "Kinesis", OperationName: "PutRecords", Err: err}
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		err      error
		want     class
		wantCode string
	}{
		{"throughput exceeded", context.Background(), api("ProvisionedThroughputExceededException"), throttled, "ProvisionedThroughputExceededException"},
		{"limit exceeded", context.Background(), api("LimitExceededException"), throttled, "LimitExceededException"},
		{"kms throttling", context.Background(), api("KMSThrottlingException"), throttled, "KMSThrottlingException"},
		{"internal failure", context.Background(), api("InternalFailure"), retryable, "InternalFailure"},
		{"unknown code on 503", context.Background(), resp(503, api("Whatever")), retryable, "Whatever"},
		{"unknown code on 429", context.Background(), resp(429, api("Whatever")), throttled, "Whatever"},
		{"bare 500", context.Background(), resp(500, errors.New("boom")), retryable, "HTTP500"},
		{"bare 403", context.Background(), resp(403, errors.New("no")), permanent, "HTTP403"},
		{"not found", context.Background(), api("ResourceNotFoundException"), permanent, "ResourceNotFoundException"},
		{"access denied", context.Background(), api("AccessDeniedException"), permanent, "AccessDeniedException"},
		{"kms disabled", context.Background(), api("KMSDisabledException"), permanent, "KMSDisabledException"},
		{"validation", context.Background(), api("ValidationException"), permanent, "ValidationException"},
		{"call timeout", context.Background(), fmt.Errorf("op: %w", context.DeadlineExceeded), retryable, "RequestTimeout"},
		{"connection reset", context.Background(), &smithyhttp.RequestSendError{Err: &net.OpError{Op: "read", Err: syscall.ECONNRESET}}, retryable, "NetworkError"},
		{"parent canceled", canceled, errors.New("anything"), retryable, "Canceled"},
		{"unknown", context.Background(), errors.New("mystery"), permanent, "Unknown"},
		// Real SDK shapes, as PutRecords returns them.
		{"sdk throughput exceeded", context.Background(), op(resp(400, &types.ProvisionedThroughputExceededException{})), throttled, "ProvisionedThroughputExceededException"},
		{"sdk kms throttling", context.Background(), op(resp(400, &types.KMSThrottlingException{})), throttled, "KMSThrottlingException"},
		{"sdk kms access denied", context.Background(), op(resp(400, &types.KMSAccessDeniedException{})), permanent, "KMSAccessDeniedException"},
		{"sdk stream missing", context.Background(), op(resp(400, &types.ResourceNotFoundException{})), permanent, "ResourceNotFoundException"},
		{"sdk invalid argument", context.Background(), op(resp(400, &types.InvalidArgumentException{})), permanent, "InvalidArgumentException"},
		{"sdk 503", context.Background(), op(resp(503, errors.New("unavailable"))), retryable, "HTTP503"},
		// Where the producer's old copy disagreed with awserr.Kinesis (and
		// so with the collector): these pass, so they are retried, within
		// WithMaxAttempts.
		{"stream being updated", context.Background(), op(resp(400, &types.ResourceInUseException{})), retryable, "ResourceInUseException"},
		{"expired session token", context.Background(), op(resp(400, api("ExpiredTokenException"))), retryable, "ExpiredTokenException"},
		{"bare 408", context.Background(), resp(408, errors.New("timeout")), retryable, "HTTP408"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, code := classify(tt.ctx, tt.err)
			if got != tt.want || code != tt.wantCode {
				t.Fatalf("classify = %v %q, want %v %q", got, code, tt.want, tt.wantCode)
			}
		})
	}
}

func TestClassifyCode(t *testing.T) {
	tests := []struct {
		code string
		want class
	}{
		{"ProvisionedThroughputExceededException", throttled},
		{"KMSThrottlingException", throttled},
		{"InternalFailure", retryable},
		{"KMSAccessDeniedException", permanent},
		{"KMSNotFoundException", permanent},
		{"SomethingNew", retryable},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			if got := classifyCode(tt.code); got != tt.want {
				t.Fatalf("classifyCode = %v, want %v", got, tt.want)
			}
		})
	}
}

// A long base doubled many times stays at the cap: base<<(n-1) used to
// overflow (10s·2³⁰ > 2⁶³ ns), and rand.Int64N panicked on the negative.
func TestBackoffLongBaseDoesNotOverflow(t *testing.T) {
	p := &Producer{cfg: defaults()}
	p.cfg.backoffBase, p.cfg.backoffMax = 10*time.Second, time.Hour
	for _, n := range []int{10, 30, 31, 32} {
		if d := p.backoff(n); d < 30*time.Minute || d > time.Hour {
			t.Fatalf("backoff(%d) = %v, want within [30m, 1h]", n, d)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	p := &Producer{cfg: defaults()}
	p.cfg.backoffBase, p.cfg.backoffMax = 100*time.Millisecond, 2*time.Second
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{5, 800 * time.Millisecond, 1600 * time.Millisecond},
		{6, time.Second, 2 * time.Second},
		{100, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			for range 200 {
				if d := p.backoff(tt.n); d < tt.min || d > tt.max {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.n, d, tt.min, tt.max)
				}
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		ok   bool
	}{
		{"defaults", func(*config) {}, true},
		{"negative linger", WithLinger(-1), false},
		{"zero linger", WithLinger(0), true},
		{"501 records", WithBatchRecords(501), false},
		{"batch smaller than a record", WithBatchBytes(1000), false},
		{"10 MiB records", func(c *config) {
			WithMaxRecordBytes(10 << 20)(c)
			WithBatchBytes(10 << 20)(c)
			WithBuffer(10, 10<<20)(c)
		}, true},
		{"buffer below a record", WithBuffer(10, 1000), false},
		{"zero buffer records", WithBuffer(0, 64<<20), false},
		{"bad policy", WithBufferPolicy(7), false},
		{"zero in flight", WithMaxInFlight(0), false},
		{"zero attempts", WithMaxAttempts(0), false},
		{"backoff max below base", WithBackoff(time.Second, time.Millisecond), false},
		{"zero request timeout", WithRequestTimeout(0), false},
		{"aggregate too big", WithAggregationLimits(2<<20, 0), false},
		{"aggregate 64 KiB", WithAggregationLimits(64<<10, 100), true},
		{"nil logger", WithLogger(nil), false},
		{"nil clock", WithClock(nil), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaults()
			tt.opt(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := New(nil, "s"); err == nil {
		t.Fatal("New accepted a nil client")
	}
}

func TestFailedErrorMessage(t *testing.T) {
	e := &FailedError{Records: []Result{
		{Code: "ResourceNotFoundException", Err: errors.New("stream gone")},
		{Code: "Canceled", Err: context.DeadlineExceeded},
		{Code: "Canceled", Err: context.DeadlineExceeded},
	}, Omitted: 2}
	want := "producer: 5 records not sent (Canceled: 2, ResourceNotFoundException: 1); 2 not listed; first: stream gone"
	if e.Error() != want {
		t.Fatalf("Error() = %q\nwant       %q", e.Error(), want)
	}
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Fatal("FailedError does not unwrap to its causes")
	}
}
