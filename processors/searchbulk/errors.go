package searchbulk

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/leasehold/leasehold/processors"
)

// Sentinel errors of the bulk engine (Engine) both search sinks run on.
// Errors that must not be retried also wrap processors.ErrPermanent;
// processors.IsPermanent decides.
var (
	// ErrDocumentTooLarge marks a document that cannot be sent: with its
	// action line it exceeds flush_bytes, or the cluster answered 413 to a
	// request holding it alone. It is dead-lettered.
	ErrDocumentTooLarge = errors.New("search sink: document too large")
	// ErrNotParsed marks a message that reached the sink without a parsed
	// event (no parser processor ran). It is dead-lettered. It is
	// processors.ErrNotParsed.
	ErrNotParsed = processors.ErrNotParsed
	// ErrRejected marks a whole request the cluster refused for a reason
	// retrying cannot fix (a malformed request): the sink is misconfigured
	// or broken, and the shard stops without a checkpoint.
	ErrRejected = errors.New("search sink: request rejected")
	// ErrRetriesExhausted is returned by a shard sink once max_retries
	// attempts of one bulk request failed; the shard stops without a
	// checkpoint and is replayed.
	ErrRetriesExhausted = errors.New("search sink: retries exhausted")
	// ErrStopped is returned by a shard sink used after Close or after the
	// context given to Open ended.
	ErrStopped = errors.New("search sink: shard sink stopped")
	// ErrCannotWrite marks a failure that means the cluster refuses writes
	// until an operator acts (CannotWrite: shard limit reached, index
	// missing with auto-create off, index closed, no write index behind an
	// alias, a read-only block, refused credentials). The engine retries
	// it like a throttled request — the shard waits, nothing is
	// dead-lettered — and logs an Error when it starts.
	ErrCannotWrite = errors.New("search sink: the cluster cannot take these writes now")
	// ErrTooLarge marks a 413 answer to a whole request: the engine splits
	// the request and retries.
	ErrTooLarge = errors.New("search sink: request entity too large (413)")
)

// RequestError is the failure of a whole request (a bulk request, the
// index template, a retention call): a transport error (Status 0) or a
// non-2xx answer.
type RequestError struct {
	Op     string // "bulk", "install index template NAME", ...
	Status int    // HTTP status; 0 when no answer arrived
	// Type and Reason are the cluster's error, when it sent one.
	Type, Reason string
	Err          error
}

// Error returns "OP: status N: cause" or "OP: cause".
func (e *RequestError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: status %d: %v", e.Op, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *RequestError) Unwrap() error { return e.Err }

// RequestFailure classifies the failure of a whole request with Classify
// and returns it wrapped accordingly: ErrTooLarge for a 413,
// ErrCannotWrite when the cluster refuses writes until an operator acts,
// processors.ErrPermanent and ErrRejected when the request itself is
// wrong, and the bare *RequestError (retryable) otherwise. A failed
// certificate verification is permanent too: it is a configuration error
// (a CA file), not a passing fault.
func RequestFailure(re *RequestError) error {
	var cv *tls.CertificateVerificationError
	switch c := Classify(re.Status, re.Type, re.Reason); {
	case errors.As(re.Err, &cv):
		return processors.Permanent(fmt.Errorf("%w: %w", ErrRejected, re))
	case c == TooLarge:
		return fmt.Errorf("%w: %w", ErrTooLarge, re)
	case c == CannotWrite:
		return fmt.Errorf("%w: %w", ErrCannotWrite, re)
	case c == BadDocument:
		return processors.Permanent(fmt.Errorf("%w: %w", ErrRejected, re))
	}
	return re
}

// IsAuthError reports a 401 or 403 answer. At start-up it means wrong
// credentials or permissions, so a sink's constructor fails instead of
// retrying (later it is retried: see Classify).
func IsAuthError(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && (re.Status == 401 || re.Status == 403)
}

// ItemResult is one item of a _bulk response as the engine reads it.
type ItemResult struct {
	Status       int
	Type, Reason string // the item's error, when it failed
	CausedBy     string // the nested cause's "type: reason", if any
}

// ItemError is a bulk item's failure as the cluster reported it. The
// dead-letter record of a permanently failed document carries it (wrapped
// with processors.ErrPermanent).
type ItemError struct {
	Product string // "opensearch" or "elasticsearch"
	Index   string // the document's index
	ID      string // the document's _id
	Status  int    // the item's HTTP status, e.g. 400 or 429
	Type    string // e.g. mapper_parsing_exception
	Reason  string
	// CausedBy is the nested cause's "type: reason", if any.
	CausedBy string
}

// Error returns "PRODUCT: index I id D: status 400 mapper_parsing_exception: reason (caused by: ...)".
func (e *ItemError) Error() string {
	s := fmt.Sprintf("%s: index %s id %s: status %d %s: %s", e.Product, e.Index, e.ID, e.Status, e.Type, e.Reason)
	if e.CausedBy != "" {
		s += " (caused by: " + e.CausedBy + ")"
	}
	return s
}

// itemFailure returns the error for a failed item: permanent for a bad
// document (BadDocument, or a 413 for the item alone), wrapping
// ErrCannotWrite when the cluster refuses it until an operator acts, and
// a plain retryable *ItemError otherwise.
func itemFailure(product, index, id string, r ItemResult) error {
	e := &ItemError{Product: product, Index: index, ID: id, Status: r.Status, Type: r.Type, Reason: r.Reason, CausedBy: r.CausedBy}
	switch Classify(e.Status, e.Type, e.Reason) {
	case Retry:
		return e
	case CannotWrite:
		return fmt.Errorf("%w: %w", ErrCannotWrite, e)
	}
	return processors.Permanent(e)
}

func processorsPermanent(err error) error { return processors.Permanent(err) }
