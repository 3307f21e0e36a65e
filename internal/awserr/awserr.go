// Package awserr decides, once per AWS service, what a failed call means
// for a writer: try again soon, wait for an operator, or give up on the
// request. The S3 archive sink, the S3 dead-letter writer, the DynamoDB
// sink, the producer, ingest, the collector, the lease coordinator and the
// shard consumers (Permanent) all ask it, so that they
// cannot drift apart (the dead-letter writer's own copy once treated
// InternalError, ServiceUnavailable and TokenRefreshRequired as permanent;
// ingest's read a DynamoDB throttling error that outlived the SDK's
// retries as permanent). Each service has one code table; throttling codes
// are shared (Throttled), and Classify picks the table from the service
// the SDK names in its error.
//
// The three classes:
//
//   - Retry: the service is busy, slow or unreachable for a moment
//     (throttling, 5xx, timeouts, a dropped connection, an expired
//     session token the SDK refreshes). Back off and resend.
//   - CannotWrite: the destination refuses every write until an operator
//     acts: the bucket or table is missing, access is denied, the
//     credentials are refused, a KMS key is disabled. The data is fine:
//     back off and resend like Retry, and tell the operator (an Error log
//     when it starts, a metric, readiness red). Dead-lettering here would
//     move good records aside because of a configuration mistake, and
//     stopping the shard would only make it start again and stop again.
//   - Reject: the request itself is wrong (another 4xx: a malformed
//     argument, an entity too large). Resending it unchanged cannot help.
//
// Errors that carry neither an AWS error code nor an HTTP status (a
// refused connection, a reset, a timeout) are Retry. Callers check their
// context first: a cancelled call is neither.
package awserr

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Class is what a writer does about a failed call.
type Class int

// The classes; see the package documentation.
const (
	Retry Class = iota + 1
	CannotWrite
	Reject
)

// String returns "retry", "cannot_write" or "reject".
func (c Class) String() string {
	switch c {
	case Retry:
		return "retry"
	case CannotWrite:
		return "cannot_write"
	case Reject:
		return "reject"
	}
	return "unknown"
}

// Code returns the AWS error code of err ("AccessDenied"), or "".
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Status returns the HTTP status of the response err came with, or 0.
func Status(err error) int {
	var sc interface{ HTTPStatusCode() int }
	if errors.As(err, &sc) {
		return sc.HTTPStatusCode()
	}
	return 0
}

// S3 classifies an S3 error. Not-found answers of reads (NoSuchKey,
// NotFound) and 412 PreconditionFailed are answers, not failures: callers
// handle them before asking.
func S3(err error) Class { return classify(err, s3Codes, "KMS.") }

// DynamoDB classifies a DynamoDB error. ValidationException (DynamoDB
// refuses an item) is Reject: the caller finds and dead-letters the item.
func DynamoDB(err error) Class { return classify(err, dynamoCodes, "") }

// Kinesis classifies a Kinesis error of a whole call, or (through
// KinesisEntry) the code of one PutRecords entry. Throttling, 5xx, an
// unreachable endpoint and a stream being created or updated are Retry; a
// missing stream, access denied, refused credentials and KMS trouble
// (other than KMS throttling or an internal KMS failure) CannotWrite.
func Kinesis(err error) Class { return classify(err, kinesisCodes, "KMS") }

// KinesisEntry classifies the ErrorCode of one PutRecords entry. Kinesis
// documents only ProvisionedThroughputExceededException and
// InternalFailure there; a KMS code that is not throttling is
// CannotWrite, and any other code, known or new, is Retry (the entry
// carries no HTTP status to judge by). ThrottleCode tells throttling
// apart.
func KinesisEntry(code string) Class {
	if !throttleCodes[code] && kinesisCodes[code] != Retry && strings.HasPrefix(code, "KMS") {
		return CannotWrite
	}
	return Retry
}

// Classify classifies err by the service that returned it (the SDK's
// operation error names it: S3, DynamoDB or Kinesis). An error of another
// service, or one that names none (an API error built by hand, a
// transport error), is classified by the first of the three code tables
// that knows its code, else by HTTP status. For callers, such as ingest,
// whose errors come from several services.
func Classify(err error) Class {
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		switch oe.ServiceID {
		case "S3":
			return S3(err)
		case "DynamoDB":
			return DynamoDB(err)
		case "Kinesis":
			return Kinesis(err)
		}
	}
	code := Code(err)
	for _, t := range []struct {
		codes  map[string]Class
		prefix string
	}{{s3Codes, "KMS."}, {dynamoCodes, ""}, {kinesisCodes, "KMS"}} {
		if c, ok := lookup(code, t.codes, t.prefix); ok {
			return c
		}
	}
	return byStatus(Status(err))
}

// Throttled reports whether err says the caller is sending too fast: a
// throttling code of any service (ThrottleCode) or HTTP 429. Throttling is
// Retry in every service's class; callers that slow down rather than
// count a failure (the producer) ask this as well.
func Throttled(err error) bool { return ThrottleCode(Code(err)) || Status(err) == 429 }

// Transport reports whether err is a failure to reach the service or to
// hear its answer (it carries no AWS code and no HTTP status): a timeout, an error sending
// the request, a network error, a response cut short, or another error the
// SDK's default retryer would retry. Such errors are Retry in every class;
// callers that name their failures (the producer) ask this to tell them
// from errors that are neither the service's nor the network's.
func Transport(err error) bool {
	var (
		timeout interface{ Timeout() bool }
		send    *smithyhttp.RequestSendError
		netOp   *net.OpError
	)
	if Code(err) != "" || Status(err) != 0 {
		return false // the service answered
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &timeout) && timeout.Timeout() ||
		errors.As(err, &send) || errors.As(err, &netOp) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err).Bool()
}

// ThrottleCode reports whether an AWS error code means "too fast":
// ProvisionedThroughputExceededException, ThrottlingException, SlowDown,
// RequestLimitExceeded and the like.
func ThrottleCode(code string) bool { return throttleCodes[code] }

// throttleCodes are the codes, of any service, that mean "too fast".
var throttleCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true, // Kinesis and DynamoDB
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"LimitExceededException":                 true, // Kinesis: too many control-plane calls
	"KMSThrottlingException":                 true,
	"RequestLimitExceeded":                   true, // DynamoDB: the account's request rate
	"TooManyRequestsException":               true,
	"SlowDown":                               true, // S3
}

// The services' code tables. Codes absent here (and not throttling) are
// classified by prefix, then by HTTP status.
var (
	s3Codes = table(map[Class][]string{
		Retry: {"RequestTimeout", "TooManyRequests", "RequestTimeTooSkewed", "ExpiredToken", "TokenRefreshRequired",
			"OperationAborted", "ConditionalRequestConflict", "InternalError", "ServiceUnavailable",
			"BadDigest", "IncompleteBody"}, // the body was damaged on the way: send it again
		CannotWrite: {"AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch",
			"InvalidBucketName", "AllAccessDisabled", "AccountProblem", "InvalidToken",
			"PermanentRedirect", "AuthorizationHeaderMalformed"}, // the bucket is in another region
	})
	dynamoCodes = table(map[Class][]string{
		Retry: {"InternalServerError", "ServiceUnavailable", "TransactionInProgressException",
			"ExpiredTokenException", "RequestTimeout", "TransactionConflictException",
			"ResourceInUseException"}, // the table is being created or updated: it passes
		CannotWrite: {"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException",
			"MissingAuthenticationTokenException", "MissingAuthenticationToken", "InvalidSignatureException",
			"IncompleteSignatureException", "IncompleteSignature", "InvalidClientTokenId",
			"KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException"},
		Reject: {"ValidationException", "ItemCollectionSizeLimitExceededException", "SerializationException"},
	})
	kinesisCodes = table(map[Class][]string{
		Retry: {"InternalFailure", "InternalFailureException", "InternalServerError", "InternalError",
			"ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
			"KMSInternalException", "EC2ThrottledException", "ExpiredTokenException",
			"ExpiredIteratorException", // GetRecords: take a new iterator and go on
			"ResourceInUseException"},  // the stream is being created or updated: it passes
		CannotWrite: {"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException",
			"MissingAuthenticationTokenException", "MissingAuthenticationToken", "InvalidSignatureException",
			"IncompleteSignatureException", "IncompleteSignature", "InvalidClientTokenId"},
		Reject: {"ValidationException", "InvalidArgumentException", "SerializationException"},
	})
)

func table(m map[Class][]string) map[string]Class {
	t := map[string]Class{}
	for c, codes := range m {
		for _, code := range codes {
			t[code] = c
		}
	}
	return t
}

// classify applies a service's rules: throttling, its code table, its
// KMS prefix (CannotWrite: KMS.DisabledException, KMSAccessDeniedException,
// ...), then the HTTP status.
func classify(err error, codes map[string]Class, kmsPrefix string) Class {
	if c, ok := lookup(Code(err), codes, kmsPrefix); ok {
		return c
	}
	return byStatus(Status(err))
}

func lookup(code string, codes map[string]Class, kmsPrefix string) (Class, bool) {
	if code == "" {
		return 0, false
	}
	if throttleCodes[code] {
		return Retry, true
	}
	if c, ok := codes[code]; ok {
		return c, true
	}
	if kmsPrefix != "" && strings.HasPrefix(code, kmsPrefix) {
		return CannotWrite, true
	}
	return 0, false
}

// byStatus classifies by HTTP status alone: no answer, 408, 409, 429 and
// 5xx are Retry; 401, 403 and 404 CannotWrite (credentials, permissions,
// the bucket or table); another 4xx Reject.
func byStatus(s int) Class {
	switch {
	case s == 0, s == 408, s == 409, s == 429, s >= 500:
		return Retry
	case s == 401, s == 403, s == 404, s == 301:
		return CannotWrite
	case s >= 400:
		return Reject
	}
	return Retry
}
