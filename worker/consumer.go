package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/awserr"
	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/internal/failpoint"
	"github.com/leasehold/leasehold/kpl"
	"github.com/leasehold/leasehold/lease"
)

// latestSkew is how far before the first take a LATEST lease is fixed
// (AT_TIMESTAMP), to allow for this host's clock running ahead of the
// Kinesis arrival timestamps.
const latestSkew = 5 * time.Second

var (
	errStopRequested = errors.New("worker: stop requested")
	errShardGone     = errors.New("worker: shard no longer listed (trimmed)")
	// ErrStreamDeleted is returned by Run when the stream was deleted
	// while the worker ran.
	ErrStreamDeleted = errors.New("worker: stream deleted")
)

// consumer reads one shard for as long as this worker holds its lease.
// Its goroutine owns every field but the channels.
type consumer struct {
	w     *Worker
	g     *lease.Grant
	lease lease.Lease
	log   *zap.Logger
	stop  chan string // capacity 1: finish the batch, flush, transfer to the value ("" releases)
	done  chan struct{}

	stopTo         *string               // a stop request taken off the channel while waiting
	pos            checkpoint.Position   // last record handed to the processor
	behind         int64                 // MillisBehindLatest of the last GetRecords
	checkpointed   checkpoint.Checkpoint // last checkpoint written
	lastCheckpoint time.Time
}

// requestStop asks the consumer to finish and hand the lease to `to`
// (release when ""). It never blocks; the first request wins.
func (c *consumer) requestStop(to string) {
	select {
	case c.stop <- to:
	default:
	}
}

// pendingStop returns a stop request, if one came.
func (c *consumer) pendingStop() (string, bool) {
	if c.stopTo != nil {
		to := *c.stopTo
		c.stopTo = nil
		return to, true
	}
	select {
	case to := <-c.stop:
		return to, true
	default:
		return "", false
	}
}

// run is the consumer's goroutine. It returns when the shard ended, the
// lease was handed off or released, or the lease context ended (lease
// lost, fenced, or hard stop: then nothing is checkpointed).
func (c *consumer) run(parent context.Context) {
	defer close(c.done)
	ctx := c.g.Context(parent)
	c.pos = c.lease.Checkpoint.Position
	c.checkpointed = c.lease.Checkpoint
	c.lastCheckpoint = time.Now()
	if c.pos.Sequence == checkpoint.Latest && !c.fixLatest(ctx) {
		if to, ok := c.pendingStop(); ok {
			c.transfer(ctx, c.checkpointed, to)
		}
		return
	}
	shard := Shard{StreamName: c.w.cfg.StreamName, ShardID: c.lease.ShardID, WorkerID: c.w.cfg.Lease.WorkerID, Epoch: c.lease.Epoch, Start: c.checkpointed}
	proc, err := c.w.factory(ctx, shard)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("processor not created; lease dropped for a retry", zap.Error(err))
			c.w.coord.Drop(c.g)
		}
		return
	}
	reason := c.loop(ctx, proc)
	if err := proc.Close(reason); err != nil {
		c.log.Warn("processor close", zap.Error(err), zap.Stringer("reason", reason))
	}
}

// fixLatest turns a LATEST start into a fixed position before anything is
// read: AT_TIMESTAMP of now minus latestSkew, checkpointed under this
// grant. Otherwise a crash (or a release) before the first durable
// checkpoint would make the next owner start at LATEST again and skip
// what arrived in between. False if the grant ended or a stop came first.
func (c *consumer) fixLatest(ctx context.Context) bool {
	p := checkpoint.AtTimestamp(time.Now().Add(-latestSkew))
	c.checkpointed.Position = p // a release before it is written writes it
	b := newBackoff()
	for {
		err := c.w.coord.Checkpoint(ctx, c.g, checkpoint.Checkpoint{Position: p})
		if err == nil {
			c.pos = p
			c.log.Info("LATEST fixed as a timestamp", zap.String("position", p.String()))
			return true
		}
		if errors.Is(err, lease.ErrLost) || c.g.Err() != nil || ctx.Err() != nil {
			return false
		}
		c.log.Warn("fixing LATEST failed; retrying", zap.Error(err))
		if !c.sleep(ctx, b.next(false)) {
			return false
		}
	}
}

// loop reads and processes until the consumer must stop, and says why.
func (c *consumer) loop(ctx context.Context, proc ShardProcessor) CloseReason {
	iter, err := c.iterator(ctx)
	if r, done := c.afterIteratorError(ctx, proc, err); done {
		return r
	}
	c.log.Info("shard started", zap.String("from", c.pos.String()), zap.Int64("epoch", c.lease.Epoch))
	backoff := newBackoff()
	pace := newPacer(c.w.cfg, c.w.grid)
	counts := c.w.metrics.shard(c.lease.ShardID)
	if at := c.g.HandedAt(); !at.IsZero() {
		// The previous owner's last read began before it handed the
		// lease over, maybe moments ago: our first read one ceiling
		// interval after that keeps the shard's reads by both within
		// the ceiling (its last, our first and our second would
		// otherwise fit in one second). At most one interval from now,
		// whatever the two clocks say.
		c.sleep(ctx, min(pace.gap, time.Until(at.Add(pace.gap))))
	}
	for {
		if to, ok := c.pendingStop(); ok {
			if r, done := c.finish(ctx, proc, to); done {
				return r
			}
		}
		if ctx.Err() != nil {
			return c.stopped()
		}
		limit, start := pace.limit(), time.Now()
		out, err := c.w.kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(limit))}, noSDKRetry)
		counts.calls.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return c.stopped()
			}
			if isThrottle(err) {
				counts.throttled.Add(1)
				next := pace.throttled(start)
				if pace.throttles == 1 {
					c.log.Warn("get records throttled; backing off", zap.Error(err), zap.Duration("wait", time.Until(next)))
				}
				c.sleep(ctx, time.Until(next)) // a stop or the end of ctx is seen at the top
				continue
			}
			var expired *types.ExpiredIteratorException
			var gone *types.ResourceNotFoundException
			switch {
			case errors.As(err, &expired):
				c.log.Info("iterator expired; re-acquiring", zap.String("at", c.pos.String()))
				iter, err = c.iterator(ctx)
				if r, done := c.afterIteratorError(ctx, proc, err); done {
					return r
				}
				continue
			case errors.As(err, &gone):
				if gerr := c.w.shardGone(ctx, c.lease.ShardID); gerr != nil {
					if r, done := c.afterIteratorError(ctx, proc, gerr); done {
						return r
					}
				}
			}
			c.w.noteStall(c.lease.ShardID, err)
			wait := backoff.next(awserr.Permanent(err))
			c.log.Warn("get records failed; backing off", zap.Error(err), zap.Duration("wait", wait))
			c.sleep(ctx, wait)
			continue
		}
		c.w.clearStall(c.lease.ShardID)
		backoff.reset()
		c.w.metrics.observeLag(c.lease.ShardID, out.MillisBehindLatest)
		c.behind = aws.ToInt64(out.MillisBehindLatest)
		got := read{start: start, limit: limit, records: len(out.Records), bytes: recordBytes(out.Records), millisBehind: c.behind}
		counts.bytes.Add(int64(got.bytes))
		recs := c.userRecords(out.Records)
		if len(recs) > 0 {
			// The processor checks the lease context before each write
			// too; checking here keeps a fenced consumer from even
			// handing records over.
			if ctx.Err() != nil {
				return c.stopped()
			}
			if err := proc.Process(ctx, recs); err != nil {
				if ctx.Err() != nil {
					return c.stopped()
				}
				c.log.Error("processor failed; shard stopped without checkpoint, lease dropped for a retry", zap.Error(err))
				c.w.coord.Drop(c.g)
				return CloseFailed
			}
			c.pos = recs[len(recs)-1].Position()
			c.w.metrics.recordsIn.Add(int64(len(recs)))
			failpoint.Hit(failpoint.AfterProcess)
		}
		if out.NextShardIterator == nil {
			return c.shardEnd(ctx, proc, out.ChildShards)
		}
		iter = out.NextShardIterator
		if time.Since(c.lastCheckpoint) >= c.w.cfg.CheckpointInterval {
			if !c.checkpoint(ctx, proc.Durable()) {
				return CloseLeaseLost
			}
		}
		c.sleep(ctx, time.Until(pace.next(got))) // a stop or the end of ctx is seen at the top
	}
}

// afterIteratorError handles a failure to get an iterator; done reports
// that the consumer must return with the reason.
func (c *consumer) afterIteratorError(ctx context.Context, proc ShardProcessor, err error) (CloseReason, bool) {
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, errStopRequested):
		to, _ := c.pendingStop()
		return c.finish(ctx, proc, to)
	case errors.Is(err, errShardGone):
		c.log.Warn("shard trimmed away before it was read to its end; treated as ended so its children start", zap.String("at", c.pos.String()))
		return c.shardEnd(ctx, proc, nil), true
	case errors.Is(err, ErrStreamDeleted):
		c.w.fail(err)
		c.w.coord.Drop(c.g)
		return CloseFailed, true
	case ctx.Err() != nil:
		return c.stopped(), true
	}
	c.log.Error("no shard iterator; lease dropped for a retry", zap.Error(err))
	c.w.coord.Drop(c.g)
	return CloseFailed, true
}

// stopped is the reason when the lease context ended: the lease was lost
// or the fence time passed (the grant may end a moment after the context
// saw the clock pass it), or else a hard stop past the grace period.
func (c *consumer) stopped() CloseReason {
	err := c.g.Err()
	if err == nil && !c.g.Fenced() {
		return CloseShutdown
	}
	if err == nil {
		err = lease.ErrFenced
	}
	c.log.Warn("shard stopped: lease lost", zap.Error(err))
	return CloseLeaseLost
}

// sleep waits d; false if the wait was cut short by the end of ctx or by
// a stop request (kept for the loop to act on).
func (c *consumer) sleep(ctx context.Context, d time.Duration) bool {
	if c.stopTo != nil {
		return false
	}
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case to := <-c.stop:
		c.stopTo = &to
		return false
	case <-t.C:
		return true
	}
}

// checkpoint writes cp if it moved. False means the lease is lost.
func (c *consumer) checkpoint(ctx context.Context, cp checkpoint.Checkpoint) bool {
	c.lastCheckpoint = time.Now()
	if cp.Position.IsZero() || cp.Position == c.checkpointed.Position {
		return true
	}
	cp.MillisBehind = c.behind
	failpoint.Hit(failpoint.BeforeCheckpoint)
	if err := c.w.coord.Checkpoint(ctx, c.g, cp); err != nil {
		if errors.Is(err, lease.ErrLost) || c.g.Err() != nil {
			c.log.Warn("checkpoint rejected: lease lost; shard stopped", zap.Error(err))
			return false
		}
		c.log.Warn("checkpoint failed; will retry", zap.Error(err))
		return true
	}
	c.checkpointed = cp
	c.w.metrics.checkpoints.Add(1)
	failpoint.Hit(failpoint.AfterCheckpoint)
	return true
}

// finish flushes, then hands the lease over (or releases it) with the
// final checkpoint in the same conditional write, so the next owner starts
// exactly after the last durable record: no duplicates on a planned move.
// If the requester withdrew its request meanwhile, the lease is still ours
// and processing goes on (done is false).
func (c *consumer) finish(ctx context.Context, proc ShardProcessor, to string) (reason CloseReason, done bool) {
	cp, err := proc.Flush(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return c.stopped(), true
		}
		c.log.Error("flush failed; lease dropped for a retry", zap.Error(err))
		c.w.coord.Drop(c.g)
		return CloseFailed, true
	}
	failpoint.Hit(failpoint.AfterFlush)
	if cp.Position.IsZero() {
		cp = c.checkpointed
	}
	err = c.transfer(ctx, cp, to)
	switch {
	case err == nil && to == "":
		return CloseShutdown, true
	case err == nil:
		return CloseHandoff, true
	case errors.Is(err, lease.ErrConflict):
		c.log.Info("handoff withdrawn by the requester; carrying on", zap.String("to", lease.WorkerName(to)))
		return 0, false
	case ctx.Err() != nil:
		return c.stopped(), true
	}
	return CloseFailed, true
}

// transfer writes cp and hands the lease to `to` ("" releases it).
func (c *consumer) transfer(ctx context.Context, cp checkpoint.Checkpoint, to string) error {
	cp.MillisBehind = c.behind
	tctx, cancel := c.w.transferContext(ctx)
	defer cancel()
	err := c.w.coord.Transfer(tctx, c.g, cp, to)
	switch {
	case err == nil:
		c.checkpointed = cp
		if to == "" {
			c.log.Info("lease released", zap.String("checkpoint", cp.Position.String()))
		} else {
			c.log.Info("lease handed off", zap.String("to", lease.WorkerName(to)), zap.String("checkpoint", cp.Position.String()))
		}
	case !errors.Is(err, lease.ErrConflict):
		c.log.Warn("lease transfer failed", zap.String("to", to), zap.Error(err))
	}
	return err
}

// shardEnd runs when a closed shard has been read to its end (or was
// trimmed away): flush, create the children's leases, then checkpoint
// SHARD_END and release in one write. Children are gated on every
// parent's SHARD_END, so creating them first is safe, and a crash in
// between leaves them for shard sync.
func (c *consumer) shardEnd(ctx context.Context, proc ShardProcessor, children []types.ChildShard) CloseReason {
	cp, err := proc.Flush(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return c.stopped()
		}
		c.log.Error("flush at shard end failed; lease dropped for a retry", zap.Error(err))
		c.w.coord.Drop(c.g)
		return CloseFailed
	}
	failpoint.Hit(failpoint.AfterFlush)
	for _, ch := range children {
		if err := c.w.createLease(ctx, aws.ToString(ch.ShardId), ch.ParentShards, checkpoint.Position{Sequence: checkpoint.TrimHorizon}); err != nil {
			c.log.Warn("child lease not created; shard sync will", zap.String("child", aws.ToString(ch.ShardId)), zap.Error(err))
		}
	}
	cp.Position = checkpoint.Position{Sequence: checkpoint.ShardEnd}
	if err := c.transfer(ctx, cp, ""); err != nil {
		return CloseFailed
	}
	c.log.Info("shard ended", zap.Int("children", len(children)))
	return CloseShardEnd
}

// iterator returns a shard iterator just after c.pos. A record position
// uses AT_SEQUENCE_NUMBER and userRecords skips what was already done, so
// a checkpoint inside a KPL aggregate resumes at the exact sub-record.
// Failures are retried with backoff; a stop request ends the wait
// (errStopRequested), as do a trimmed shard (errShardGone) and a deleted
// stream (ErrStreamDeleted).
func (c *consumer) iterator(ctx context.Context) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(c.w.cfg.StreamName), ShardId: aws.String(c.lease.ShardID)}
	switch p := c.pos; {
	case p.Sequence == checkpoint.TrimHorizon:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	case p.Sequence == checkpoint.Latest:
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	default:
		if ts, ok := p.Timestamp(); ok {
			in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
			in.Timestamp = aws.Time(ts)
		} else {
			in.ShardIteratorType = types.ShardIteratorTypeAtSequenceNumber
			in.StartingSequenceNumber = aws.String(p.Sequence)
		}
	}
	b := newBackoff()
	for {
		out, err := c.w.kin.GetShardIterator(ctx, in)
		if err == nil {
			c.w.clearStall(c.lease.ShardID)
			return out.ShardIterator, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var gone *types.ResourceNotFoundException
		if errors.As(err, &gone) {
			if gerr := c.w.shardGone(ctx, c.lease.ShardID); gerr != nil {
				return nil, gerr
			}
		}
		c.w.noteStall(c.lease.ShardID, err)
		wait := b.next(awserr.Permanent(err))
		c.log.Warn("get shard iterator failed; backing off", zap.Error(err), zap.Duration("wait", wait))
		if !c.sleep(ctx, wait) {
			if c.stopTo != nil {
				return nil, errStopRequested
			}
			return nil, ctx.Err()
		}
	}
}

// userRecords de-aggregates KPL records and drops every user record at or
// before c.pos (re-read because iterators start AT the checkpointed record).
func (c *consumer) userRecords(in []types.Record) []Record {
	out := make([]Record, 0, len(in))
	skipSeq := ""
	if !c.pos.IsSentinel() {
		skipSeq = c.pos.Sequence
	}
	for _, r := range in {
		seq := aws.ToString(r.SequenceNumber)
		if skipSeq != "" && checkpoint.Less(checkpoint.Position{Sequence: seq, Sub: 1 << 62}, c.pos) {
			continue // whole record before the checkpoint
		}
		base := Record{
			StreamName: c.w.cfg.StreamName, ShardID: c.lease.ShardID, SequenceNumber: seq,
			PartitionKey: aws.ToString(r.PartitionKey), ArrivalTime: aws.ToTime(r.ApproximateArrivalTimestamp),
		}
		subs, err := kpl.Deaggregate(r.Data)
		if err != nil {
			rec := base
			rec.Data, rec.Malformed = r.Data, err
			if skipSeq == "" || seq != skipSeq {
				out = append(out, rec)
			}
			continue
		}
		for _, u := range subs {
			rec := base
			rec.Data, rec.Aggregated, rec.SubSequenceNumber = u.Data, u.Aggregated, int64(u.SubSequence)
			if u.PartitionKey != "" {
				rec.PartitionKey = u.PartitionKey
			}
			if skipSeq != "" && seq == skipSeq && rec.SubSequenceNumber <= c.pos.Sub {
				continue
			}
			out = append(out, rec)
		}
	}
	return out
}

// retryBackoff is exponential with equal jitter (half to all of each
// delay), 100ms to 5s; to 30s for errors that will not cure themselves
// (access denied, KMS key disabled), which are retried in case an
// operator fixes them, slowly.
type retryBackoff struct{ b *backoff.Backoff }

func newBackoff() *retryBackoff {
	return &retryBackoff{b: backoff.New(backoff.Policy{Min: 100 * time.Millisecond, Jitter: backoff.Equal})}
}

func (r *retryBackoff) next(permanent bool) time.Duration {
	r.b.Max = 5 * time.Second
	if permanent {
		r.b.Max = 30 * time.Second
	}
	return r.b.Next()
}

func (r *retryBackoff) reset() { r.b.Reset() }

// describeErr is a short description of a stall for health reports.
func describeErr(err error) string {
	if code := awserr.Code(err); code != "" {
		return code
	}
	return fmt.Sprint(err)
}
