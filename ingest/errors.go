package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/leasehold/leasehold/cloudfront"
	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/producer"
)

var (
	// ErrInterrupted means a file was not read to its end because the
	// context ended or the reading deadline (FileOptions.StopReadingAt)
	// passed. What was confirmed is recorded; a retry resumes there.
	ErrInterrupted = errors.New("ingest: interrupted before the end of the file")
	// ErrConflict means a manifest entry was changed by another writer: the
	// object was replaced (new ETag), the file is already done, or another
	// run recorded a later offset. The file is left to that writer.
	ErrConflict = errors.New("ingest: manifest entry changed by another writer")
	// ErrNotFound is returned by Manifest.Get for a file it has no entry for.
	ErrNotFound = errors.New("ingest: no manifest entry")
	// ErrBadURL means an argument is not an s3://bucket/key URL.
	ErrBadURL = errors.New("ingest: not an s3://bucket/key URL")
	// ErrClaimed means another run holds the file's claim in the
	// manifest: it is ingesting the file. See ClaimedError.
	ErrClaimed = errors.New("ingest: file claimed by another run")
	// ErrClaimLost means this run stopped ingesting a file because it no
	// longer holds its claim: another run took it over, or the claim could
	// not be renewed for most of its duration. That run resumes the file.
	ErrClaimLost = errors.New("ingest: claim on the file lost")
)

// ClaimedError is Manifest.Begin's error for a file another run holds.
type ClaimedError struct {
	Entry Entry // as read: Owner and ClaimVersion say who and how recently
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("ingest: %s is claimed by run %s (claim version %d)", e.Entry.URL, e.Entry.Owner, e.Entry.ClaimVersion)
}

// Is reports ErrClaimed.
func (e *ClaimedError) Is(target error) bool { return target == ErrClaimed }

// FileError reports a file that was not ingested in full: which object,
// the last line read when ingestion stopped (the line reached; lines up to
// FileResult.EndLine are confirmed written), and why.
type FileError struct {
	URL  string // s3://bucket/key
	Line int    // last line read, 0 before the first
	Err  error  // the cause: see Retryable
}

// Error returns e.g. "ingest: s3://logs/E1.2024-05-01-10.ab.gz: at line
// 1234: cloudfront: corrupt or truncated compressed stream: unexpected EOF".
func (e *FileError) Error() string {
	return fmt.Sprintf("ingest: %s: at line %d: %v", e.URL, e.Line, e.Err)
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// Retryable reports whether ingesting the file again may succeed. It is the
// one place in ingest that decides: corrupt data (cloudfront.ErrCorrupt), a
// #Fields header that cannot be used (cloudfront.ErrBadLayout, an RTMP
// log's among them), a missing or archived object, manifest conflicts, bad
// URLs and records Kinesis would reject are permanent; interruptions, a
// file claimed by another run or a claim lost to one, an object changed
// since it was listed (412) and records the producer gave up on are
// retryable. Other AWS errors are classified by the service that returned
// them (awserr.Classify): throttling — DynamoDB's included, even after the
// SDK's own retries —, server errors, network errors and expired tokens
// are retryable; access denied, a missing bucket or table and other
// client errors are not. nil is not retryable.
func Retryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, cloudfront.ErrCorrupt), errors.Is(err, cloudfront.ErrBadLayout), errors.Is(err, ErrConflict),
		errors.Is(err, ErrBadURL), errors.Is(err, producer.ErrInvalidRecord):
		return false
	case errors.Is(err, ErrInterrupted), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrClaimed), errors.Is(err, ErrClaimLost):
		return true
	}
	var fe *producer.FailedError
	if errors.As(err, &fe) {
		return true // Kinesis refused or timed out after every attempt
	}
	switch awserr.Code(err) {
	case "NoSuchKey", "NotFound", "InvalidObjectState":
		return false // the object is gone or archived: an answer, not a failure
	case "PreconditionFailed":
		return true // the object changed since it was listed: the retry reads the new one
	}
	if awserr.Status(err) == 412 {
		return true
	}
	return awserr.Classify(err) == awserr.Retry
}
