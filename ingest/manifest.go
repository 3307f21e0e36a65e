package ingest

import (
	"context"
	"time"
)

// State is where a file stands in the manifest.
type State string

// The states of a manifest entry. A file goes pending → done, or pending →
// failed → pending (on a retry) → done. A new ETag (the object was
// replaced) starts it over at pending, line 0.
const (
	// StatePending: being ingested, or interrupted; Line says how far.
	StatePending State = "pending"
	// StateDone: every line was confirmed written. Reruns skip the file.
	StateDone State = "done"
	// StateFailed: ingestion stopped on an error (Entry.Error); a rerun
	// resumes after Line.
	StateFailed State = "failed"
)

// Entry is one file's manifest record.
type Entry struct {
	URL   string // s3://bucket/key, the item's key
	ETag  string // of the object the progress belongs to, without quotes
	State State  // pending, done or failed
	// Line is the resume offset (attribute lines_sent): every data line up
	// to this line number (header lines included, as cloudfront.Reader
	// counts) was confirmed written to Kinesis.
	Line     int
	Records  int64     // data lines confirmed written, over every run
	BadLines int64     // lines not sent (too long, or no layout), last run
	Attempts int       // runs that began this file (Begin calls)
	Error    string    // why the last run failed; empty otherwise
	Updated  time.Time // when the entry was last written, by the writer's clock
	// Owner is the run that holds the file's claim (Config.Owner), empty
	// when no run does: the file is done, failed, released, or was never
	// begun.
	Owner string
	// ClaimVersion changes with every claim and renewal. A run that sees
	// it unchanged for a whole claim duration, on its own clock, knows the
	// owner stopped renewing and may take the claim over.
	ClaimVersion int64
}

// Manifest records per-file ingestion progress so that a rerun skips
// finished files and resumes a partial one at its offset, and lets one run
// at a time ingest a file. Every write is conditional on the ETag, so
// progress of a replaced object is never applied to its successor, and
// every write of a run in progress is conditional on its claim (Owner), so
// a run that lost the file to another can no longer move its offset.
// Implementations must be safe for concurrent use; every method blocks
// for one or a few requests and honours ctx.
//
// A claim works like a lease, without comparing clocks across hosts: the
// owner renews it (ClaimVersion changes) well within the claim duration,
// and stops working on the file by itself when it could not renew for
// most of the duration; another run takes a claim over only after
// watching ClaimVersion stay the same for a whole duration on its own
// monotonic clock (Begin with takeOver).
type Manifest interface {
	// EnsureTable creates the table if missing and waits until it is
	// usable. Concurrent calls from several processes are fine.
	EnsureTable(ctx context.Context) error
	// Begin claims the file for owner and starts a run on it, returning
	// its entry: a new pending entry at line 0 when there is none or its
	// ETag differs (a replaced object starts over); the entry unchanged
	// when it is done (the caller skips the file); otherwise the entry
	// back at pending, Line kept, Attempts increased. The claim is
	// granted when no run holds the file, when owner does, or when
	// takeOver equals the entry's ClaimVersion (the caller saw it
	// unchanged for a claim duration); else Begin fails with a
	// *ClaimedError (errors.Is ErrClaimed) carrying the entry.
	Begin(ctx context.Context, url, etag, owner string, takeOver int64) (Entry, error)
	// Renew keeps owner's claim alive (a new ClaimVersion). It fails with
	// ErrConflict unless owner holds the claim on this ETag.
	Renew(ctx context.Context, url, etag, owner string) error
	// Checkpoint records that lines up to line are confirmed, records in
	// all. It fails with ErrConflict unless the entry has this ETag, is
	// pending, is claimed by owner and has no later line.
	Checkpoint(ctx context.Context, url, etag, owner string, line int, records int64) error
	// Finish records the end of e.Owner's run: e.State done or failed,
	// with Line, Records, BadLines and Error, and gives up the claim. It
	// fails with ErrConflict unless the entry has e.ETag and e.Owner holds
	// it (finishing a done file as done again is fine), and when failing a
	// file that is done (a done file is never demoted).
	Finish(ctx context.Context, e Entry) error
	// Release gives up owner's claim without changing the progress, so
	// another run can take the file at once (after an interruption). It
	// fails with ErrConflict unless owner holds the claim.
	Release(ctx context.Context, url, etag, owner string) error
	// Get returns the file's entry, or an error wrapping ErrNotFound.
	Get(ctx context.Context, url string) (Entry, error)
}
