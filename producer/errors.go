package producer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/leasehold/leasehold/internal/awserr"
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

// classifyCode decides how a per-entry ErrorCode of a PutRecords response
// is handled: throttling slows the shard, KMS errors other than throttling
// and internal failures fail the record, and any other code, known or new,
// is retried (awserr.KinesisEntry).
func classifyCode(code string) class {
	switch {
	case awserr.ThrottleCode(code):
		return throttled
	case awserr.KinesisEntry(code) == awserr.Retry:
		return retryable
	}
	return permanent
}

// classify decides how a whole-call error is handled and names its code.
// It is the one place that decides "retryable?" for the producer, from
// awserr's Kinesis classes: throttling (awserr.Throttled) slows the shard,
// the rest of awserr.Retry uses up an attempt, and CannotWrite and Reject
// fail the record; an error that is neither an AWS answer nor a transport
// failure (awserr.Transport) is permanent too. The SDK's own retryer is
// disabled for PutRecords so decisions are not doubled. parent is the
// context the call ran under: when it has ended, the error is not the
// service's doing.
func classify(parent context.Context, err error) (class, string) {
	if parent.Err() != nil {
		return retryable, "Canceled"
	}
	code, status := awserr.Code(err), awserr.Status(err)
	var timeout interface{ Timeout() bool }
	switch {
	case code != "":
	case status != 0:
		code = fmt.Sprintf("HTTP%d", status)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &timeout) && timeout.Timeout():
		code = "RequestTimeout"
	case awserr.Transport(err):
		code = "NetworkError"
	default:
		return permanent, "Unknown"
	}
	switch {
	case awserr.Throttled(err):
		return throttled, code
	case awserr.Kinesis(err) == awserr.Retry:
		return retryable, code
	}
	return permanent, code
}
