package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/backoff"
)

// outcome is a record's final result on its way to the result handler.
type outcome struct {
	pd     *pending
	failed bool // pd.code and pd.err say why
	res    Result
}

// disableSDKRetries turns off the SDK's retryer for PutRecords: the
// producer retries per entry itself, and stacking both would multiply
// attempts and hide partial failures.
func disableSDKRetries(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} }

// EntryError is the error of a record that Kinesis refused inside a
// successful PutRecords response.
type EntryError struct {
	Code, Message string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("put records entry: %s: %s", e.Code, e.Message)
}

// send makes one PutRecords call for b and settles its records. It runs in
// its own goroutine, tracked by the loop that started it.
func (p *Producer) send(ctx context.Context, b *batch) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: b.entries}
	callCtx, cancel := context.WithTimeout(ctx, p.cfg.requestTimeout)
	out, err := p.client.PutRecords(callCtx, in, disableSDKRetries)
	cancel()

	p.mu.Lock()
	outs := p.settleLocked(ctx, b, out, err, p.cfg.clock.Now())
	p.inflight--
	p.mu.Unlock()
	p.deliver(outs)
	p.poke()
}

// shardOutcome sums up what one call did to one shard.
type shardOutcome struct {
	requeue     []*pending
	throttled   bool
	maxFailures int  // highest failure count among re-queued records
	permanent   bool // a permanent failure was re-queued (WithNeverGiveUp)
}

// settleLocked applies a call's result: successes and permanent failures
// become outcomes; retryable failures go back to the front of their
// shard's queue in their original order; shards that throttled slow down.
func (p *Producer) settleLocked(ctx context.Context, b *batch, out *kinesis.PutRecordsOutput, err error, now time.Time) []outcome {
	var outs []outcome
	shards := map[*shardQueue]*shardOutcome{}
	for _, q := range b.shards {
		if shards[q] == nil {
			shards[q] = &shardOutcome{}
		}
	}

	// fail handles the records of entry i failing with (cls, code, err).
	fail := func(i int, cls class, code string, err error) {
		so := shards[b.shards[i]]
		for _, pd := range b.groups[i] {
			pd.code, pd.err = code, err
			switch cls {
			case throttled:
				p.stats.Throttled++
				so.throttled = true
				so.requeue = append(so.requeue, pd)
				continue
			case retryable:
				pd.failures++
				if p.cfg.neverGiveUp || pd.failures < p.cfg.maxAttempts {
					so.maxFailures = max(so.maxFailures, pd.failures)
					so.requeue = append(so.requeue, pd)
					continue
				}
				pd.err = fmt.Errorf("%w (%d): %w", ErrAttemptsExhausted, pd.failures, err)
			case permanent:
				if p.cfg.neverGiveUp {
					pd.failures++
					so.permanent = true
					so.requeue = append(so.requeue, pd)
					continue
				}
			}
			outs = append(outs, outcome{pd: pd, failed: true})
		}
	}

	switch {
	case err != nil && ctx.Err() != nil:
		// The loop is stopping: nothing is known about this call. Put the
		// records back as they were, without using an attempt; whoever
		// drains next sends them again.
		for i := range b.entries {
			for _, pd := range b.groups[i] {
				pd.sends--
				shards[b.shards[i]].requeue = append(shards[b.shards[i]].requeue, pd)
			}
		}
	case err != nil:
		cls, code := classify(ctx, err)
		p.stats.CallErrors++
		p.logCallError(cls, code, len(b.entries), err)
		for i := range b.entries {
			fail(i, cls, code, fmt.Errorf("put records: %w", err))
		}
	case len(out.Records) != len(b.entries):
		err := fmt.Errorf("put records: %d results for %d records", len(out.Records), len(b.entries))
		p.stats.CallErrors++
		p.logCallError(retryable, "InvalidResponse", len(b.entries), err)
		for i := range b.entries {
			fail(i, retryable, "InvalidResponse", err)
		}
	default:
		var throttledN, failedN int
		var permanentCode string
		for i, r := range out.Records {
			if r.ErrorCode == nil {
				shard, seq := aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
				if p.smap.real && shard != b.shards[i].id {
					p.refreshWanted = true // the map is stale: a reshard happened
				}
				p.stats.KinesisRecords++
				for j, pd := range b.groups[i] {
					res := Result{ShardID: shard, SequenceNumber: seq, Aggregated: b.agg[i]}
					if b.agg[i] {
						res.SubSequence = j
					}
					outs = append(outs, outcome{pd: pd, res: res})
				}
				continue
			}
			code := aws.ToString(r.ErrorCode)
			cls := classifyCode(code)
			if cls == throttled {
				throttledN++
			} else {
				failedN++
			}
			if cls == permanent {
				permanentCode = code
			}
			fail(i, cls, code, &EntryError{Code: code, Message: aws.ToString(r.ErrorMessage)})
		}
		if throttledN+failedN > 0 {
			p.log.Debug("put records partly failed", zap.Int("entries", len(b.entries)),
				zap.Int("throttled", throttledN), zap.Int("failed", failedN))
		}
		if permanentCode != "" && p.cfg.neverGiveUp {
			p.log.Error("put records entries refused with a permanent error; retrying until its cause is fixed",
				zap.String("code", permanentCode), zap.Int("entries", len(b.entries)))
		}
	}

	for q, so := range shards {
		q.busy = false
		p.adjustShardLocked(q, so, now)
		if len(so.requeue) > 0 {
			for _, pd := range so.requeue {
				q.bytes += pd.size
			}
			q.recs = append(so.requeue, q.recs...)
		}
	}
	return outs
}

// adjustShardLocked is the per-shard rate control: a throttled shard
// halves how many Kinesis records it may put in one call and waits an
// exponentially growing, jittered delay; a shard with other retryable
// failures waits its backoff; a clean call grows the quota back additively.
func (p *Producer) adjustShardLocked(q *shardQueue, so *shardOutcome, now time.Time) {
	switch {
	case so.permanent:
		q.notBefore = now.Add(p.backoff(32)) // the longest: a person must fix the cause
	case so.throttled:
		q.throttleStreak++
		q.quota = max(1, q.quota/2)
		q.notBefore = now.Add(p.backoff(q.throttleStreak))
	case so.maxFailures > 0:
		q.notBefore = now.Add(p.backoff(so.maxFailures))
	default:
		q.throttleStreak = 0
		q.quota = min(p.cfg.batchRecords, q.quota+max(1, p.cfg.batchRecords/10))
	}
}

// backoff returns the delay before try n+1 after n consecutive failures:
// base·2^(n-1), capped at max, jittered to between half and all of it so
// producers that failed together do not retry together.
func (p *Producer) backoff(n int) time.Duration {
	return backoff.Policy{Min: p.cfg.backoffBase, Max: p.cfg.backoffMax, Jitter: backoff.Equal}.Delay(n)
}

func (p *Producer) logCallError(cls class, code string, entries int, err error) {
	fields := []zap.Field{zap.String("code", code), zap.Int("entries", entries), zap.Error(err)}
	switch {
	case cls == permanent && p.cfg.neverGiveUp:
		p.log.Error("put records failed with a permanent error; retrying until its cause is fixed", fields...)
		return
	case cls == permanent:
		p.log.Error("put records failed; giving up on its records", fields...)
		return
	}
	p.log.Warn("put records failed; will retry", fields...)
}

// deliver completes outcomes: it fills each Result, calls the result
// handler without holding the lock, then releases the records' buffer
// space, records failures for Close and Flush, and wakes waiters. Doing
// the accounting after the handler means Flush and Close return only once
// the handler has seen every record they cover.
func (p *Producer) deliver(outs []outcome) {
	if len(outs) == 0 {
		return
	}
	for i := range outs {
		o := &outs[i]
		o.res.Record = o.pd.rec
		o.res.Attempts = o.pd.sends
		if o.failed {
			o.res.Code, o.res.Err = o.pd.code, o.pd.err
		}
	}
	if p.cfg.onResult != nil {
		for _, o := range outs {
			p.cfg.onResult(o.res)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var failedN int
	var firstErr error
	for _, o := range outs {
		p.buffered--
		p.bufferedBytes -= o.pd.size
		if o.res.Err == nil {
			p.stats.RecordsSent++
			p.stats.BytesSent += uint64(o.pd.size)
		} else {
			p.stats.RecordsFailed++
			failedN++
			if firstErr == nil {
				firstErr = o.res.Err
			}
			if len(p.failed) < p.cfg.maxFailedKept {
				p.failed = append(p.failed, o.res)
			} else {
				p.omitted++
			}
		}
		for _, w := range p.waiters {
			if o.pd.id > w.upTo {
				continue
			}
			w.remaining--
			if o.res.Err != nil {
				if len(w.failed) < p.cfg.maxFailedKept {
					w.failed = append(w.failed, o.res)
				} else {
					w.omitted++
				}
			}
		}
	}
	if failedN > 0 && !errors.Is(firstErr, context.Canceled) {
		p.log.Error("records failed", zap.Int("records", failedN), zap.Error(firstErr))
	}
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.remaining <= 0 {
			close(w.done)
			continue
		}
		kept = append(kept, w)
	}
	clear(p.waiters[len(kept):])
	p.waiters = kept
	p.broadcastSpaceLocked()
}
