package dynamosink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/processors"
	"github.com/leasehold/leasehold/worker"
)

// batchOverhead approximates a request's bytes besides its items.
const batchOverhead = 1 << 10

// Open returns the ShardSink of shard. It does not block and starts no
// goroutine.
func (s *Sink) Open(_ context.Context, shard worker.Shard, dl processors.DeadLetterer) (processors.ShardSink, error) {
	if dl == nil {
		return nil, errors.New("dynamosink: nil dead-letterer")
	}
	return &shardSink{s: s, dl: dl, shard: shard.ShardID, log: s.log.With(zap.String("shard_id", shard.ShardID))}, nil
}

// shardSink writes synchronously: Write returns once every item of the
// call is in DynamoDB or dead-lettered. DynamoDB bills per item, not per
// request, so buffering across calls would save requests but no cost, and
// would delay the checkpoint.
type shardSink struct {
	s     *Sink
	dl    processors.DeadLetterer
	shard string
	log   *zap.Logger

	mu      sync.Mutex
	durable checkpoint.Position // guarded by mu: Durable may be read while Write runs
}

// Write puts one item per message (de-duplicated by key, in batches of 25
// sent concurrently), retries UnprocessedItems and retryable errors with
// backoff, and dead-letters the messages that cannot be written: no
// parsed event, item too large, or refused by DynamoDB. It blocks until
// all of that is done. An error (ctx ended, the table is gone, access
// denied, dead-lettering failed) means the shard cannot go on; Durable
// then does not move.
func (ss *shardSink) Write(ctx context.Context, msgs []*processors.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var dead []*processors.Message
	fail := func(m *processors.Message, attempts int, err error) {
		// The message is shared with other sinks: mark a copy.
		dead = append(dead, m.FailedCopy(ss.s.opts.Name, attempts, err))
	}
	items := make([]item, 0, len(msgs))
	at := make(map[string]int, len(msgs)) // key → index in items
	for _, m := range msgs {
		switch {
		case !m.Parsed:
			fail(m, 1, ErrNotParsed)
			continue
		case m.Event.AssetID == "" && ss.s.opts.SkipNoAsset:
			continue
		}
		it := newItem(m, ss.s.opts.NoAssetPartitions)
		if it.size > MaxItemBytes {
			fail(m, 1, fmt.Errorf("%w: about %d bytes", ErrItemTooLarge, it.size))
			continue
		}
		if i, dup := at[it.key]; dup {
			items[i] = it // the later record wins, as if written in order
			continue
		}
		at[it.key] = len(items)
		items = append(items, it)
	}

	var mu sync.Mutex // guards dead from the goroutines
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ss.s.opts.Concurrency)
	for len(items) > 0 {
		n, size := 0, batchOverhead
		for n < len(items) && n < maxBatchItems && size+items[n].size <= maxBatchBytes {
			size += items[n].size
			n++
		}
		chunk := items[:n]
		items = items[n:]
		g.Go(func() error {
			rejected, err := ss.writeChunk(gctx, chunk)
			mu.Lock()
			for _, r := range rejected {
				fail(r.it.msg, r.attempts, r.err)
			}
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(dead) > 0 {
		if err := ss.dl.DeadLetter(ctx, dead); err != nil {
			return fmt.Errorf("dynamosink: dead-letter %d records: %w", len(dead), err)
		}
	}
	ss.mu.Lock()
	ss.durable = msgs[len(msgs)-1].Position()
	ss.mu.Unlock()
	return nil
}

// Flush returns nil: Write leaves nothing behind.
func (ss *shardSink) Flush(context.Context) error { return nil }

// Durable returns the last message of the last successful Write. It does
// not block.
func (ss *shardSink) Durable() checkpoint.Position {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.durable
}

// Close forgets the shard's stall state (the lease may move).
func (ss *shardSink) Close() error {
	ss.s.stalls.Forget(ss.shard)
	return nil
}

type rejection struct {
	it       item
	attempts int
	err      error
}

// writeChunk writes ≤ 25 items with distinct keys until none is left
// unprocessed. On a ValidationException (DynamoDB refuses the whole
// request for one bad item) it writes the items one by one and returns
// those refused.
func (ss *shardSink) writeChunk(ctx context.Context, chunk []item) ([]rejection, error) {
	byKey := make(map[string]item, len(chunk))
	reqs := make([]types.WriteRequest, len(chunk))
	for i, it := range chunk {
		byKey[it.key] = it
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: it.attr}}
	}
	err := ss.batch(ctx, reqs)
	if !errors.Is(err, errValidation) {
		return nil, err
	}
	var rejected []rejection
	for _, it := range chunk {
		err := ss.batch(ctx, []types.WriteRequest{{PutRequest: &types.PutRequest{Item: it.attr}}})
		var ve *validationError
		switch {
		case errors.As(err, &ve):
			rejected = append(rejected, rejection{it: it, attempts: 1, err: fmt.Errorf("%w: %s", ErrRejected, ve.msg)})
		case err != nil:
			return nil, err
		}
	}
	ss.log.Warn("batch refused; items written one by one", zap.Int("items", len(chunk)), zap.Int("rejected", len(rejected)))
	return rejected, nil
}

var errValidation = errors.New("dynamosink: validation")

type validationError struct{ msg string }

func (e *validationError) Error() string { return "dynamosink: validation: " + e.msg }
func (e *validationError) Is(target error) bool {
	return target == errValidation
}

// batch sends reqs with BatchWriteItem until none is unprocessed,
// backing off between tries. Errors are classified by awserr.DynamoDB:
// throttling and transient failures are retried; so are those an
// operator must fix (the table is missing, access denied, refused
// credentials), which also mark the shard "cannot write" in the sink's
// State and are logged at Error when they start. A ValidationException
// comes back as a *validationError; another rejected request is wrapped
// with processors.ErrPermanent.
func (ss *shardSink) batch(ctx context.Context, reqs []types.WriteRequest) error {
	table := ss.s.opts.Table
	bo := backoff.New(ss.s.retry)
	for attempt := 1; ; attempt++ {
		out, err := ss.s.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs}})
		if err == nil {
			left := out.UnprocessedItems[table]
			if len(left) == 0 {
				// Also on a first attempt: the failures may have been
				// an earlier call's, ended by its context.
				if d := ss.s.stalls.Recovered(ss.shard); d > 0 {
					ss.log.Info("dynamodb writes succeed again", zap.Duration("failed_for", d.Round(time.Millisecond)))
				}
				return nil
			}
			if len(left) < len(reqs) {
				bo.Reset() // progress: start the backoff over
			}
			reqs = left
			ss.s.stalls.Failed(ss.shard, fmt.Errorf("dynamodb: %d unprocessed items of a batch write to %s (throttled)", len(left), table), false)
			ss.log.Debug("unprocessed items; retrying", zap.Int("items", len(left)), zap.Int("attempt", attempt))
		} else {
			if ctx.Err() != nil {
				return fmt.Errorf("dynamosink: batch write %s: %w", table, ctx.Err())
			}
			if awserr.Code(err) == "ValidationException" {
				var ae smithy.APIError
				errors.As(err, &ae)
				return &validationError{msg: ae.ErrorMessage()}
			}
			class := awserr.DynamoDB(err)
			if class == awserr.Reject {
				return fmt.Errorf("dynamosink: batch write %s: %w", table, processors.Permanent(err))
			}
			cannotWrite := class == awserr.CannotWrite
			news := ss.s.stalls.Failed(ss.shard, fmt.Errorf("dynamodb: batch write %s: %w", table, err), cannotWrite)
			fields := []zap.Field{zap.Int("attempt", attempt), zap.Error(err)}
			switch {
			case cannotWrite && news:
				ss.log.Error("dynamodb cannot write; the shard waits and retries until an operator fixes the table or the permissions (nothing is dead-lettered)", fields...)
			case cannotWrite:
				ss.log.Warn("dynamodb still cannot write; retrying", fields...)
			default:
				ss.log.Warn("batch write failed; the shard waits and retries", fields...)
			}
		}
		if err := bo.Wait(ctx); err != nil {
			return fmt.Errorf("dynamosink: batch write %s: %w", table, err)
		}
	}
}
