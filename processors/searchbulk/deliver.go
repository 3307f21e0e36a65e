package searchbulk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/leasehold/leasehold/internal/backoff"
	"github.com/leasehold/leasehold/processors"
)

// deliver sends a taken batch as requests of at most flush_bytes, one
// after another; each chunk is durable (indexed or dead-lettered) before
// the next is sent, so Durable advances in order. An error means the
// flusher cannot go on: ctx ended, a request was rejected for good, the
// retries ran out, or the dead-letterer failed.
func (ss *shardSink) deliver(ctx context.Context, b batch) error {
	limit := int(ss.s.opts.FlushBytes)
	for start := 0; start < len(b.items); {
		end, size := start, 0
		for end < len(b.items) && (end == start || size+b.items[end].size() <= limit) {
			size += b.items[end].size()
			end++
		}
		chunk := b.items[start:end]
		if err := ss.deliverChunk(ctx, b.buf, chunk); err != nil {
			return err
		}
		ss.advance(chunk)
		start = end
	}
	return nil
}

// deliverChunk indexes one chunk and dead-letters what fails permanently.
// The messages are shared with the other sinks, which read them while this
// flusher runs: failures are marked on copies (FailedCopy), never on the
// messages themselves.
func (ss *shardSink) deliverChunk(ctx context.Context, buf []byte, chunk []item) error {
	var failed []*processors.Message
	var send []int
	for i := range chunk {
		if it := &chunk[i]; it.fail != nil {
			failed = append(failed, it.msg.FailedCopy(ss.s.opts.Name, 0, it.fail))
		} else {
			send = append(send, i)
		}
	}
	if len(send) > 0 {
		more, err := ss.send(ctx, buf, chunk, send)
		if err != nil {
			return err
		}
		failed = append(failed, more...)
	}
	if len(failed) == 0 {
		return nil
	}
	for _, m := range failed {
		f := m.Failed()
		ss.log.Error("document dead-lettered", zap.String("sequence_number", m.Record.SequenceNumber),
			zap.Int64("sub_sequence_number", m.Record.SubSequenceNumber), zap.Int("attempts", f.Attempts), zap.Error(f.Err))
	}
	if err := ss.dl.DeadLetter(ctx, failed); err != nil {
		return fmt.Errorf("dead-letter %d documents: %w", len(failed), err)
	}
	ss.s.stats.deadLettered.Add(int64(len(failed)))
	return nil
}

// send indexes chunk[i] for i in idx until each is indexed or failed for
// good, and returns copies of the failed messages, marked with their
// failure. Retryable item failures — throttling, and the cluster refusing
// writes until an operator acts (ErrCannotWrite) — are resent alone; a
// retryable request failure resends the same request; a 413 splits it in
// halves. Only a bad document is ever failed.
func (ss *shardSink) send(ctx context.Context, buf []byte, chunk []item, idx []int) ([]*processors.Message, error) {
	var failed []*processors.Message
	var scratch []byte
	bo := ss.newBackoff()
	for attempt := 1; len(idx) > 0; attempt++ {
		if attempt > 1 {
			if m := ss.s.opts.MaxRetries; m > 0 && attempt > m+1 {
				return nil, fmt.Errorf("%w after %d attempts", ErrRetriesExhausted, attempt-1)
			}
			if err := bo.Wait(ctx); err != nil {
				return nil, err
			}
		}
		body := bodyOf(buf, chunk, idx, &scratch)
		results, err := ss.attempt(ctx, body, len(idx))
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(err, ErrTooLarge) && len(idx) > 1:
				ss.log.Warn("bulk request too large for the cluster; splitting it", zap.Int("bytes", len(body)), zap.Int("docs", len(idx)))
				half := len(idx) / 2
				for _, part := range [][]int{idx[:half], idx[half:]} {
					more, err := ss.send(ctx, buf, chunk, part)
					if err != nil {
						return nil, err
					}
					failed = append(failed, more...)
				}
				return failed, nil
			case errors.Is(err, ErrTooLarge):
				it := &chunk[idx[0]]
				err := processors.Permanent(fmt.Errorf("%w: the cluster answered 413 to it alone (%d bytes): %w", ErrDocumentTooLarge, len(body), err))
				return append(failed, it.msg.FailedCopy(ss.s.opts.Name, attempt, err)), nil
			case processors.IsPermanent(err):
				return nil, err
			}
			ss.stalled(attempt, len(idx), len(idx), err)
			continue
		}
		retry := idx[:0:0]
		var lastErr, cannotWrite error
		for k, r := range results {
			it := &chunk[idx[k]]
			if r.Status >= 200 && r.Status < 300 {
				ss.s.stats.docs.Add(1)
				continue
			}
			if it.index == "" {
				it.index = ss.s.pattern.Name(it.msg.Event.EventTime)
			}
			err := itemFailure(ss.s.opts.Product, it.index, it.id, r)
			switch {
			case processors.IsPermanent(err):
				failed = append(failed, it.msg.FailedCopy(ss.s.opts.Name, attempt, err))
				continue
			case errors.Is(err, ErrCannotWrite):
				cannotWrite = err
			}
			lastErr = err
			retry = append(retry, idx[k])
		}
		if len(retry) > 0 {
			ss.s.stats.retried.Add(int64(len(retry)))
			if cannotWrite != nil {
				lastErr = cannotWrite // the one an operator must act on
			}
			ss.stalled(attempt, len(retry), len(idx), lastErr)
		} else {
			ss.log.Debug("bulk request done", zap.Int("docs", len(idx)), zap.Int("bytes", len(body)), zap.Int("failed", len(failed)))
		}
		idx = retry
	}
	if d := ss.s.stalls.Recovered(ss.shard.ShardID); d > 0 {
		ss.log.Info(ss.s.opts.Product+" writes succeed again", zap.Duration("failed_for", d.Round(time.Millisecond)))
	}
	return failed, nil
}

// stalled records and logs a failed attempt that will be retried: retry
// of the sent documents failed with err. A cluster that refuses writes
// until an operator acts is logged at Error when it starts (then Warn per
// retry, as for throttling); the shard waits either way.
func (ss *shardSink) stalled(attempt, retry, sent int, err error) {
	cannotWrite := errors.Is(err, ErrCannotWrite)
	news := ss.s.stalls.Failed(ss.shard.ShardID, err, cannotWrite)
	fields := []zap.Field{zap.Int("attempt", attempt), zap.Int("retry", retry), zap.Int("of", sent), zap.Error(err)}
	switch {
	case cannotWrite && news:
		ss.log.Error(ss.s.opts.Product+" cannot write; the shard waits and retries until an operator fixes the cluster (nothing is dead-lettered)", fields...)
	case cannotWrite:
		ss.log.Warn(ss.s.opts.Product+" still cannot write; retrying", fields...)
	default:
		ss.log.Warn("bulk request failed; retrying", fields...)
	}
}

// attempt prepares the cluster if needed (the index template), then sends
// one bulk request.
func (ss *shardSink) attempt(ctx context.Context, body []byte, n int) ([]ItemResult, error) {
	if err := ss.s.cluster.Ready(ctx); err != nil {
		return nil, err
	}
	return ss.s.bulk(ctx, body, n)
}

// bodyOf returns the request body of chunk[i] for i in idx: a slice of buf
// when they are adjacent (the first attempt), else a copy into scratch.
func bodyOf(buf []byte, chunk []item, idx []int, scratch *[]byte) []byte {
	first, last := &chunk[idx[0]], &chunk[idx[len(idx)-1]]
	total := 0
	for _, i := range idx {
		total += chunk[i].size()
	}
	if last.end-first.off == total {
		return buf[first.off:last.end]
	}
	out := (*scratch)[:0]
	for _, i := range idx {
		out = append(out, buf[chunk[i].off:chunk[i].end]...)
	}
	*scratch = out
	return out
}

// newBackoff returns the backoff between tries of a bulk request:
// exponential with equal jitter, the n-th wait uniform in [d/2, d] with
// d = min(backoff_max, backoff_min·2ⁿ⁻¹).
func (ss *shardSink) newBackoff() *backoff.Backoff {
	return backoff.New(backoff.Policy{Min: ss.s.opts.BackoffMin, Max: ss.s.opts.BackoffMax, Jitter: backoff.Equal})
}
