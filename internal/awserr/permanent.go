package awserr

import (
	"errors"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// permanentCodes are error codes a retry will not cure.
var permanentCodes = map[string]bool{
	"AccessDeniedException":       true,
	"AccessDenied":                true,
	"UnrecognizedClientException": true,
	"InvalidSignatureException":   true,
	"MissingAuthenticationToken":  true,
	"IncompleteSignature":         true,
	"InvalidClientTokenId":        true,
	"ExpiredTokenException":       true,
	"KMSDisabledException":        true,
	"KMSInvalidStateException":    true,
	"KMSAccessDeniedException":    true,
	"KMSNotFoundException":        true,
	"KMSOptInRequired":            true,
	"InvalidArgumentException":    true,
	"ValidationException":         true,
	"SerializationException":      true,
}

// retryableCodes are 4xx codes that are transient.
var retryableCodes = map[string]bool{
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"LimitExceededException":                 true,
	"KMSThrottlingException":                 true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
	"TransactionInProgressException":         true,
	"ExpiredIteratorException":               true,
}

// Permanent reports, for the lease coordinator and the shard consumers
// (Kinesis and lease-table calls; sinks use the classes above), whether err
// will keep failing on retry: a service
// error whose code says so (access denied, KMS key disabled or missing,
// invalid argument), or any other 4xx that is not throttling. Throttling,
// 5xx, timeouts, connection errors and cancellations are not permanent.
// Conditional-check failures are decided by the caller before this.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if permanentCodes[code] {
			return true
		}
		if retryableCodes[code] {
			return false
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		s := re.HTTPStatusCode()
		return s >= 400 && s < 500 && s != http.StatusTooManyRequests && s != http.StatusRequestTimeout
	}
	return false
}
