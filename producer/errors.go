package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

var (
	// ErrBufferFull is returned by Put under the FailFast policy when the
	// buffer has no room for the record. Nothing was accepted.
	ErrBufferFull = errors.New("producer: buffer full")
	// ErrClosed is returned by Put, Run and Flush once Close has begun.
	ErrClosed = errors.New("producer: closed")
	// ErrRunning is returned by Run when a send loop is already running.
	ErrRunning = errors.New("producer: already running")
	// ErrInvalidRecord is wrapped by Put's error for a record Kinesis would
	// reject: a partition key that is empty or over 256 characters, a bad
	// explicit hash key, or data plus partition key over the record limit.
	// Records are never truncated.
	ErrInvalidRecord = errors.New("producer: invalid record")
	// ErrAttemptsExhausted is wrapped by a record's error when it failed
	// with retryable errors as many times as WithMaxAttempts allows.
	ErrAttemptsExhausted = errors.New("producer: attempts exhausted")
)

// Result is the outcome of one record.
type Result struct {
	// Record is the record as given to PutRecord (Meta included).
	Record Record
	// ShardID and SequenceNumber say where Kinesis wrote the record; set
	// when Err is nil.
	ShardID, SequenceNumber string
	// Aggregated reports whether the record was written inside a KPL
	// aggregate; SubSequence is then its index there.
	Aggregated  bool
	SubSequence int
	// Attempts is how many times the record was sent.
	Attempts int
	// Code is the last error code: the Kinesis code when Kinesis gave one
	// (e.g. "ProvisionedThroughputExceededException", "InternalFailure",
	// "ResourceNotFoundException"), else one of "RequestTimeout",
	// "NetworkError", "HTTP<status>", "Canceled", "InvalidResponse".
	// Empty on success.
	Code string
	// Err is nil when the record was written, else why it was not.
	Err error
}

// FailedError reports the records that could not be sent. Close returns
// it, listing every record that failed over the producer's life; Flush
// returns one for the records it waited on.
type FailedError struct {
	// Records lists the failed records with their last error code, in the
	// order they failed.
	Records []Result
	// Omitted counts failed records not listed because more than
	// WithMaxFailedKept had failed. They were reported to the result
	// handler, if any.
	Omitted int
}

// Error summarises the failures by code.
func (e *FailedError) Error() string {
	counts := map[string]int{}
	for _, r := range e.Records {
		counts[r.Code]++
	}
	codes := make([]string, 0, len(counts))
	for c := range counts {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	var b strings.Builder
	fmt.Fprintf(&b, "producer: %d records not sent", len(e.Records)+e.Omitted)
	for i, c := range codes {
		sep := ", "
		if i == 0 {
			sep = " ("
		}
		fmt.Fprintf(&b, "%s%s: %d", sep, c, counts[c])
	}
	if len(codes) > 0 {
		b.WriteString(")")
	}
	if e.Omitted > 0 {
		fmt.Fprintf(&b, "; %d not listed", e.Omitted)
	}
	if len(e.Records) > 0 {
		fmt.Fprintf(&b, "; first: %v", e.Records[0].Err)
	}
	return b.String()
}

// Unwrap returns one error per distinct code so errors.Is and errors.As
// see the underlying causes (context.DeadlineExceeded, API errors).
func (e *FailedError) Unwrap() []error {
	seen := map[string]bool{}
	var errs []error
	for _, r := range e.Records {
		if !seen[r.Code] {
			seen[r.Code] = true
			errs = append(errs, r.Err)
		}
	}
	return errs
}

// class is how a failure is handled.
type class int

const (
	permanent class = iota // fail the record
	retryable              // retry; uses up an attempt
	throttled              // retry after slowing the shard; no attempt used
)

// throttleCodes are Kinesis and AWS error codes meaning "too fast".
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"LimitExceededException":                 true,
	"KMSThrottlingException":                 true,
	"RequestLimitExceeded":                   true,
	"TooManyRequestsException":               true,
	"SlowDown":                               true,
}

// retryableCodes are transient server-side failures.
var retryableCodes = map[string]bool{
	"InternalFailure":             true,
	"InternalFailureException":    true,
	"InternalServerError":         true,
	"InternalError":               true,
	"ServiceUnavailable":          true,
	"ServiceUnavailableException": true,
	"RequestTimeout":              true,
	"RequestTimeoutException":     true,
	"KMSInternalException":        true,
	"EC2ThrottledException":       true,
}

// classifyCode decides how a per-entry ErrorCode of a PutRecords response
// is handled. Unknown codes are retried (Kinesis documents only
// ProvisionedThroughputExceededException and InternalFailure there; KMS
// errors such as KMSAccessDeniedException are permanent).
func classifyCode(code string) class {
	switch {
	case throttleCodes[code]:
		return throttled
	case retryableCodes[code]:
		return retryable
	case strings.HasPrefix(code, "KMS"):
		return permanent
	}
	return retryable
}

// classify decides how a whole-call error is handled and names its code.
// It is the one place that decides "retryable?" for the producer; the SDK's
// own retryer is disabled for PutRecords so decisions are not doubled.
// parent is the context the call ran under: when it has ended, the error
// is not the service's doing.
func classify(parent context.Context, err error) (class, string) {
	if parent.Err() != nil {
		return retryable, "Canceled"
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		switch {
		case throttleCodes[code]:
			return throttled, code
		case retryableCodes[code]:
			return retryable, code
		}
		if status := httpStatus(err); status == 429 {
			return throttled, code
		} else if status >= 500 {
			return retryable, code
		}
		return permanent, code
	}
	if status := httpStatus(err); status != 0 {
		code := fmt.Sprintf("HTTP%d", status)
		switch {
		case status == 429:
			return throttled, code
		case status >= 500:
			return retryable, code
		}
		return permanent, code
	}
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		return retryable, "RequestTimeout"
	case isNetwork(err):
		return retryable, "NetworkError"
	}
	return permanent, "Unknown"
}

// httpStatus returns the HTTP status of a response error, or 0.
func httpStatus(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// isNetwork reports transport failures: the request may not have reached
// Kinesis, or its response was lost.
func isNetwork(err error) bool {
	var (
		send  *smithyhttp.RequestSendError
		netOp *net.OpError
	)
	return errors.As(err, &send) || errors.As(err, &netOp) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool()
}
