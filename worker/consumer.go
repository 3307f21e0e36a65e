package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/checkpoint"
	"github.com/leasehold/leasehold/internal/failpoint"
	"github.com/leasehold/leasehold/kpl"
	"github.com/leasehold/leasehold/lease"
)

// consumer reads one shard for as long as this worker holds its lease.
// Its goroutine owns every field but the channels.
type consumer struct {
	w      *Worker
	lease  lease.Lease
	log    *zap.Logger
	stop   chan string // capacity 1: finish the batch, flush, transfer to the value ("" releases)
	cancel context.CancelFunc
	done   chan struct{}

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

// run is the consumer's main loop. It returns when the shard ended, the
// lease was handed off or released, or ctx ended (lease lost or hard stop:
// then nothing is checkpointed).
func (c *consumer) run(ctx context.Context) {
	defer close(c.done)
	shard := Shard{StreamName: c.w.cfg.StreamName, ShardID: c.lease.ShardID, WorkerID: c.w.cfg.Lease.WorkerID, Start: c.lease.Checkpoint}
	proc, err := c.w.factory(ctx, shard)
	if err != nil {
		c.log.Error("processor not created; lease dropped for a retry", zap.Error(err))
		c.w.coord.Drop(c.lease.ShardID)
		return
	}
	defer func() {
		if err := proc.Close(); err != nil {
			c.log.Warn("processor close", zap.Error(err))
		}
	}()
	c.pos = c.lease.Checkpoint.Position
	c.checkpointed = c.lease.Checkpoint
	c.lastCheckpoint = time.Now()

	iter, err := c.iterator(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("no shard iterator; lease dropped for a retry", zap.Error(err))
			c.w.coord.Drop(c.lease.ShardID)
		}
		return
	}
	c.log.Info("shard started", zap.String("from", c.pos.String()), zap.Int64("epoch", c.lease.Epoch))
	backoff := newBackoff()
	pace := newPacer(c.w.cfg)
	counts := c.w.metrics.shard(c.lease.ShardID)
	for {
		select {
		case <-ctx.Done():
			return
		case to := <-c.stop:
			c.finish(ctx, proc, to)
			return
		default:
		}
		limit, start := pace.limit(), time.Now()
		out, err := c.w.kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(limit))}, noSDKRetry)
		counts.calls.Add(1)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if isThrottle(err) {
				counts.throttled.Add(1)
				next := pace.throttled(start)
				if pace.throttles == 1 {
					c.log.Warn("get records throttled; backing off", zap.Error(err), zap.Duration("wait", time.Until(next)))
				}
				if !c.sleep(ctx, time.Until(next)) {
					return
				}
				continue
			}
			var expired *types.ExpiredIteratorException
			if errors.As(err, &expired) {
				c.log.Info("iterator expired; re-acquiring", zap.String("at", c.pos.String()))
				if iter, err = c.iterator(ctx); err == nil {
					continue
				}
			}
			var gone *types.ResourceNotFoundException
			if errors.As(err, &gone) {
				c.log.Error("shard or stream not found; lease dropped", zap.Error(err))
				c.w.coord.Drop(c.lease.ShardID)
				return
			}
			wait := backoff.next()
			c.log.Warn("get records failed; backing off", zap.Error(err), zap.Duration("wait", wait))
			if !c.sleep(ctx, wait) {
				return
			}
			continue
		}
		backoff.reset()
		c.w.metrics.observeLag(c.lease.ShardID, out.MillisBehindLatest)
		c.behind = aws.ToInt64(out.MillisBehindLatest)
		got := read{start: start, limit: limit, records: len(out.Records), bytes: recordBytes(out.Records), millisBehind: c.behind}
		counts.bytes.Add(int64(got.bytes))
		recs := c.userRecords(out.Records)
		if len(recs) > 0 {
			if err := proc.Process(ctx, recs); err != nil {
				if ctx.Err() == nil {
					c.log.Error("processor failed; shard stopped without checkpoint, lease dropped for a retry", zap.Error(err))
					c.w.coord.Drop(c.lease.ShardID)
				}
				return
			}
			c.pos = recs[len(recs)-1].Position()
			c.w.metrics.recordsIn.Add(int64(len(recs)))
			failpoint.Hit(failpoint.AfterProcess)
		}
		if out.NextShardIterator == nil {
			c.shardEnd(ctx, proc, out.ChildShards)
			return
		}
		iter = out.NextShardIterator
		if time.Since(c.lastCheckpoint) >= c.w.cfg.CheckpointInterval {
			if !c.checkpoint(ctx, proc.Durable()) {
				return
			}
		}
		if !c.sleep(ctx, time.Until(pace.next(got))) {
			return
		}
	}
}

// sleep waits d; false if ctx ended. A stop request cuts the wait short
// (the loop picks the request up next).
func (c *consumer) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case to := <-c.stop:
		c.requestStop(to) // put it back for the loop
		return true
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
	if err := c.w.coord.Checkpoint(ctx, c.lease.ShardID, cp); err != nil {
		if errors.Is(err, lease.ErrLost) {
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
func (c *consumer) finish(ctx context.Context, proc ShardProcessor, to string) {
	cp, err := proc.Flush(ctx)
	if err != nil {
		c.log.Error("flush failed; lease kept for a retry", zap.Error(err))
		c.w.coord.Drop(c.lease.ShardID)
		return
	}
	failpoint.Hit(failpoint.AfterFlush)
	if cp.Position.IsZero() {
		cp = c.checkpointed
	}
	cp.MillisBehind = c.behind
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.w.cfg.Lease.Duration)
	defer cancel()
	if err := c.w.coord.Transfer(tctx, c.lease.ShardID, cp, to); err != nil {
		c.log.Warn("lease transfer failed", zap.String("to", to), zap.Error(err))
		return
	}
	if to == "" {
		c.log.Info("lease released", zap.String("checkpoint", cp.Position.String()))
	} else {
		c.log.Info("lease handed off", zap.String("to", to), zap.String("checkpoint", cp.Position.String()))
	}
}

// shardEnd runs when a closed shard has been read to its end: flush,
// create the children's leases, then checkpoint SHARD_END and release in
// one write. Children are gated on every parent's SHARD_END, so creating
// them first is safe, and a crash in between leaves them for shard sync.
func (c *consumer) shardEnd(ctx context.Context, proc ShardProcessor, children []types.ChildShard) {
	cp, err := proc.Flush(ctx)
	if err != nil {
		c.log.Error("flush at shard end failed; lease dropped for a retry", zap.Error(err))
		c.w.coord.Drop(c.lease.ShardID)
		return
	}
	failpoint.Hit(failpoint.AfterFlush)
	for _, ch := range children {
		if err := c.w.createLease(ctx, aws.ToString(ch.ShardId), ch.ParentShards, checkpoint.Position{Sequence: checkpoint.TrimHorizon}); err != nil {
			c.log.Warn("child lease not created; shard sync will", zap.String("child", aws.ToString(ch.ShardId)), zap.Error(err))
		}
	}
	cp.Position = checkpoint.Position{Sequence: checkpoint.ShardEnd}
	if err := c.w.coord.Transfer(ctx, c.lease.ShardID, cp, ""); err != nil {
		c.log.Warn("shard end checkpoint failed", zap.Error(err))
		return
	}
	c.log.Info("shard ended", zap.Int("children", len(children)))
	c.w.coord.Kick() // take the children now, not at the next interval
}

// iterator returns a shard iterator just after c.pos. A record position
// uses AT_SEQUENCE_NUMBER and userRecords skips what was already done, so
// a checkpoint inside a KPL aggregate resumes at the exact sub-record.
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
			return out.ShardIterator, nil
		}
		var gone *types.ResourceNotFoundException
		if errors.As(err, &gone) || ctx.Err() != nil {
			return nil, fmt.Errorf("get shard iterator %s: %w", c.lease.ShardID, err)
		}
		wait := b.next()
		c.log.Warn("get shard iterator failed; backing off", zap.Error(err), zap.Duration("wait", wait))
		if !c.sleep(ctx, wait) {
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

// backoff is exponential with full jitter, 100ms to 5s.
type backoff struct{ n int }

func newBackoff() *backoff { return &backoff{} }

func (b *backoff) next() time.Duration {
	d := 100 * time.Millisecond << min(b.n, 6)
	b.n++
	d = min(d, 5*time.Second)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (b *backoff) reset() { b.n = 0 }
