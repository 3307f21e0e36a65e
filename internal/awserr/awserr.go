// Package awserr decides, once per AWS service, what a failed call means
// for a writer: try again soon, wait for an operator, or give up on the
// request. The S3 archive sink, the S3 dead-letter writer and the DynamoDB
// sink all ask it (and the collector, whether Kinesis is reachable), so
// that they cannot drift apart (the dead-letter
// writer's own copy once treated InternalError, ServiceUnavailable and
// TokenRefreshRequired as permanent).
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
	"errors"
	"strings"

	"github.com/aws/smithy-go"
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
func S3(err error) Class {
	code := Code(err)
	switch code {
	case "RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "TooManyRequests",
		"RequestTimeTooSkewed", "ExpiredToken", "TokenRefreshRequired", "OperationAborted",
		"ConditionalRequestConflict", "InternalError", "ServiceUnavailable",
		"BadDigest", "IncompleteBody": // the body was damaged on the way: send it again
		return Retry
	case "AccessDenied", "NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"InvalidBucketName", "AllAccessDisabled", "AccountProblem", "InvalidToken",
		"PermanentRedirect", "AuthorizationHeaderMalformed": // the bucket is in another region
		return CannotWrite
	}
	if strings.HasPrefix(code, "KMS.") {
		return CannotWrite // KMS.DisabledException, KMS.KMSInvalidStateException, ...
	}
	return byStatus(Status(err))
}

// DynamoDB classifies a DynamoDB error. ValidationException (DynamoDB
// refuses an item) is Reject: the caller finds and dead-letters the item.
func DynamoDB(err error) Class {
	switch Code(err) {
	case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
		"LimitExceededException", "InternalServerError", "ServiceUnavailable", "TransactionInProgressException",
		"ExpiredTokenException", "RequestTimeout", "TransactionConflictException",
		"ResourceInUseException": // the table is being created or updated: it passes

		return Retry
	case "ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException",
		"MissingAuthenticationTokenException", "InvalidSignatureException", "IncompleteSignatureException",
		"KMSAccessDeniedException", "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException":
		return CannotWrite
	case "ValidationException", "ItemCollectionSizeLimitExceededException":
		return Reject
	}
	return byStatus(Status(err))
}

// Kinesis classifies a Kinesis error of a whole call (not a PutRecords
// entry's code: the producer classifies those, telling throttling apart).
// Throttling, 5xx, an unreachable endpoint and a stream being created or
// updated are Retry; a missing stream, access denied, refused credentials
// and KMS trouble CannotWrite.
func Kinesis(err error) Class {
	code := Code(err)
	switch code {
	case "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException",
		"InternalFailure", "InternalFailureException", "ServiceUnavailable", "ExpiredTokenException",
		"ResourceInUseException": // the stream is being created or updated: it passes
		return Retry
	case "ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException",
		"MissingAuthenticationTokenException", "InvalidSignatureException", "IncompleteSignatureException":
		return CannotWrite
	case "ValidationException", "InvalidArgumentException":
		return Reject
	}
	if strings.HasPrefix(code, "KMS") {
		return CannotWrite // KMSDisabledException, KMSAccessDeniedException, ...
	}
	return byStatus(Status(err))
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
