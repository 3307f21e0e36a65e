// Package processors turns records into documents and writes them out: a
// Processor transforms a batch (parse, enrich, filter), a Sink writes
// batches durably (OpenSearch, S3, DynamoDB, a file). A Pipeline chains them
// for one shard and is what the worker drives.
//
// # Contracts
//
// A Processor's Process returns the messages to pass on, in order. Zero
// messages and a nil error means every message was filtered. A message that
// cannot be processed (poison input) is marked with Message.Fail, whether
// or not it is returned; the pipeline dead-letters it once with the reason
// and goes on, so a poison record never blocks its shard. A returned error means the
// whole batch could not be processed now (a lookup service is down): the
// pipeline retries the batch with backoff and never skips it.
//
// A ShardSink accepts messages (it may buffer them across GetRecords calls
// and flush by size and age), retries retryable failures itself with
// backoff, blocks when it cannot keep up (backpressure: the shard stops
// reading), and dead-letters messages that fail permanently. It reports how
// far it has durably written; the worker checkpoints only what every sink
// has made durable.
package processors

import (
	"context"
	"errors"
	"fmt"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/event"
	"github.com/leasehold/leasehold/worker"
)

// Message is one record travelling through a pipeline. Processors of one
// shard run one batch at a time, so a Message needs no locking while the
// processors run. Once the pipeline hands it to the sinks it is shared:
// every sink gets the same *Message, and a sink may read it from its own
// goroutines (a flusher) while the next sink reads it too. Sinks must
// therefore never change a Message they were given; a sink that gives up
// on one dead-letters a copy marked with FailedCopy.
type Message struct {
	// Record is the source record: shard, sequence numbers and raw data.
	// Processors never change it.
	Record worker.Record
	// Event is the document. A parser processor fills it and sets Parsed.
	Event  event.Event
	Parsed bool
	// Redacted is set on a dead-letter copy whose Record.Data and Event a
	// Redactor has stripped of personal data (client addresses): the raw
	// data is then not byte for byte what the stream holds.
	Redacted bool

	failed *Failure
}

// Failure says why a message was dead-lettered.
type Failure struct {
	Stage    string // the processor or sink that gave up, e.g. "cloudfront", "opensearch"
	Err      error
	Attempts int
	// Sink says Stage is a sink: the other sinks have the record, and a
	// replay writes it to that sink alone. False for a processor or the
	// pipeline itself ("deaggregate", "event_time"): no sink has it. Set
	// by FailedCopy, and by the pipeline for whatever a sink dead-letters.
	Sink bool
}

// Fail marks m as permanently failed at stage, a processor's (Sink
// false). The pipeline dead-letters it and passes it to no further stage.
// attempts counts the tries made.
func (m *Message) Fail(stage string, attempts int, err error) {
	m.failed = &Failure{Stage: stage, Err: err, Attempts: attempts}
}

// FailWith marks m as failed with a copy of f. A Redactor uses it to
// replace the reason's text while keeping the rest of the failure.
func (m *Message) FailWith(f Failure) { m.failed = &f }

// Failed returns m's failure, or nil.
func (m *Message) Failed() *Failure { return m.failed }

// FailedCopy returns a copy of m marked as failed at stage, a sink
// (Failure.Sink), leaving m untouched. Sinks use it: the message they were given is shared with the
// other sinks (see Message), so marking it would be a data race and would
// make the others see a failure that is not theirs. The copy shares m's
// Record.Data and Event slices, which nobody may change.
func (m *Message) FailedCopy(stage string, attempts int, err error) *Message {
	c := *m
	c.failed = &Failure{Stage: stage, Err: err, Attempts: attempts, Sink: true}
	return &c
}

// Position is the message's place in its shard.
func (m *Message) Position() checkpoint.Position { return m.Record.Position() }

// Processor transforms a batch; see the package contract. Process is
// called for one shard's batches in order, never concurrently for one
// shard, but concurrently for different shards: implementations must be
// safe for concurrent use.
type Processor interface {
	Process(ctx context.Context, batch []*Message) ([]*Message, error)
}

// ProcessorFunc adapts a function to Processor.
type ProcessorFunc func(ctx context.Context, batch []*Message) ([]*Message, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, batch []*Message) ([]*Message, error) {
	return f(ctx, batch)
}

// Sink is a destination. It is created once per worker and opens a
// ShardSink per shard lease. Its methods are safe for concurrent use.
type Sink interface {
	// Name identifies the sink in checkpoints (per-sink progress), logs
	// and metrics. It must be stable across restarts.
	Name() string
	// Open prepares the sink for a shard. shard.Start.Sinks[Name()] is the
	// sink's own progress from the checkpoint, if any; the pipeline
	// already skips messages at or before it. dl receives the messages
	// the sink gives up on.
	Open(ctx context.Context, shard worker.Shard, dl DeadLetterer) (ShardSink, error)
	// Close releases what the sink holds (connections, files) after every
	// ShardSink is closed.
	Close(ctx context.Context) error
}

// ShardSink writes one shard's messages; see the package contract. Its
// methods are called from one goroutine at a time.
type ShardSink interface {
	// Write accepts messages in order. It may block for backpressure.
	// An error means the sink cannot go on (ctx ended, or it is broken):
	// the shard stops without a checkpoint.
	Write(ctx context.Context, msgs []*Message) error
	// Flush writes out everything accepted, dead-lettering permanent
	// failures, and returns once it is all durable.
	Flush(ctx context.Context) error
	// Durable returns, without blocking, the position of the last message
	// such that it and every message accepted before it are durable (or
	// dead-lettered). Zero if none yet.
	Durable() checkpoint.Position
	// Close releases the shard's resources. Unflushed messages are dropped
	// (the next owner replays them).
	Close() error
}

// DeadLetterer stores messages that cannot be processed or written, with
// the raw record and the reason (each message's Failed()), so nothing is
// dropped silently. DeadLetter must make the messages durable before it
// returns: the checkpoint may pass them next. It retries retryable errors
// itself until ctx ends. Implementations must be safe for concurrent use.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, msgs []*Message) error
}

// Redactor is implemented by a processor that removes personal data from
// events (anonymize_ip does). A pipeline passes every message it
// dead-letters — whether a processor or a sink gave up on it — through
// each of its stages that is a Redactor, so that the dead-letter store
// holds no more personal data than the sinks do, also for a record that
// failed before the processor ran (an unparsable line still holds the raw
// client address).
type Redactor interface {
	// Redact returns the message to store in m's place: a copy with the
	// personal data removed from Record.Data and Event and Redacted set,
	// or m itself when the operator asked to keep raw dead letters. m is
	// shared with sinks and must not change. Safe for concurrent use.
	Redact(m *Message) *Message
}

// ErrNotParsed is what a sink dead-letters a message with when it reached
// the sink without a parsed event: no parser processor is in the
// pipeline, or the parser did not set Message.Parsed. Every built-in sink
// that needs the event uses this one error (s3sink, dynamosink and
// searchbulk re-export it under their own name).
var ErrNotParsed = errors.New("processors: message reached a sink without a parsed event (no parse processor ran)")

// ErrPermanent marks an error as not worth retrying (bad input, a mapping
// conflict, a 4xx other than 429). Wrap it: fmt.Errorf("...: %w", ErrPermanent).
var ErrPermanent = errors.New("processors: permanent failure")

// Permanent wraps err so that IsPermanent reports true.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// IsPermanent reports whether err should not be retried. This is the one
// place that decides it: errors marked with ErrPermanent are permanent;
// everything else (throttling, 5xx, timeouts, connection errors) is
// retryable.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }
