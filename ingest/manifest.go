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
}

// Manifest records per-file ingestion progress so that a rerun skips
// finished files and resumes a partial one at its offset. Every write is
// conditional on the ETag, so progress of a replaced object is never
// applied to its successor. Implementations must be safe for concurrent
// use; every method blocks for one or a few requests and honours ctx.
//
// One run at a time should ingest a given file: two runs beginning the
// same file both get it (the manifest does not lease files); the second
// one's checkpoints then fail with ErrConflict once the first is ahead.
type Manifest interface {
	// EnsureTable creates the table if missing and waits until it is
	// usable. Concurrent calls from several processes are fine.
	EnsureTable(ctx context.Context) error
	// Begin starts a run on the file and returns its entry: a new pending
	// entry at line 0 when there is none or its ETag differs (a replaced
	// object starts over); the entry unchanged when it is done (the caller
	// skips the file); otherwise the entry back at pending, Line kept,
	// Attempts increased.
	Begin(ctx context.Context, url, etag string) (Entry, error)
	// Checkpoint records that lines up to line are confirmed, records in
	// all. It fails with ErrConflict unless the entry has this ETag, is
	// pending and has no later line.
	Checkpoint(ctx context.Context, url, etag string, line int, records int64) error
	// Finish records the end of a run: e.State done or failed, with Line,
	// Records, BadLines and Error. It fails with ErrConflict unless the
	// entry has e.ETag, and when failing a file that is done (a done file
	// is never demoted).
	Finish(ctx context.Context, e Entry) error
	// Get returns the file's entry, or an error wrapping ErrNotFound.
	Get(ctx context.Context, url string) (Entry, error)
}
