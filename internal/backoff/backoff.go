// Package backoff is the one retry helper of leasehold: capped exponential
// delays with jitter, a sleep that ends with its context, and a retry loop
// that asks the caller, after each failure, whether to go on.
//
// Every writer that retries (the S3, DynamoDB and search sinks, the S3
// dead-letter writer, the pipeline's stages, the producer, the collector's
// Kinesis probe), the shard consumers (failed and throttled GetRecords)
// and the lease coordinator (its first heartbeat, its passes) draw their
// delays from a Policy here, so a delay is read in one place and tested
// once. The lease fence is not a delay but a deadline (the last heartbeat
// sent plus Duration − SafetyMargin) and keeps its own timer. Whether an error is worth retrying is not
// decided here: that is the caller's classifier (for AWS errors,
// internal/awserr).
//
// Sleeps use real timers (time.NewTimer), so tests can run the loops under
// testing/synctest with fake time; a Policy's Sleep and Rand can also be
// replaced.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Jitter says how a wait is drawn from the capped exponential delay d.
type Jitter int

const (
	// None waits exactly d.
	None Jitter = iota
	// Full waits uniformly in [0, d] (AWS's "full jitter"): the least
	// synchronised, for many clients hitting one service.
	Full
	// Equal waits uniformly in [d/2, d] (AWS's "equal jitter"): never
	// less than half the delay.
	Equal
	// Spread waits uniformly in [d/2, 3d/2): d on average.
	Spread
	// Tenth waits uniformly in [d − d/10, d + d/10]: a period that stays
	// close to d, jittered just enough that workers started together
	// drift apart (the lease coordinator's passes, index retention).
	Tenth
)

// Policy describes a sequence of delays: the n-th is
// min(Max, Min·2ⁿ⁻¹), jittered. The zero Policy waits 0 every time. A
// Policy is a value; copy it freely.
type Policy struct {
	// Min is the first delay before jitter. Default 0 (no wait).
	Min time.Duration
	// Max caps the delay before jitter; 0 means no cap. Default 0.
	Max time.Duration
	// Jitter draws the wait from the delay. Default None.
	Jitter Jitter
	// Rand returns a uniform int64 in [0, n) for n > 0. Default
	// math/rand/v2.Int64N; tests replace it to pin the waits.
	Rand func(n int64) int64
	// Sleep waits d or until ctx ends, returning ctx's error then. Default
	// the package's Sleep.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Delay returns the wait before retry n, counting from 1 (the wait after
// the first failure). n < 1 counts as 1. Safe for concurrent use when Rand
// is.
func (p Policy) Delay(n int) time.Duration {
	d := p.Min
	for i := 1; i < n && d > 0 && (p.Max <= 0 || d < p.Max); i++ {
		if d > (1<<63-1)/2 {
			break // doubling again would overflow
		}
		d *= 2
	}
	if p.Max > 0 {
		d = min(d, p.Max)
	}
	return p.jitter(d)
}

func (p Policy) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	r := p.Rand
	if r == nil {
		r = rand.Int64N
	}
	switch p.Jitter {
	case Full:
		return time.Duration(r(int64(d) + 1))
	case Equal:
		return d/2 + time.Duration(r(int64(d-d/2)+1))
	case Spread:
		return d/2 + time.Duration(r(int64(d)))
	case Tenth:
		return d - d/10 + time.Duration(r(int64(d/5)+1))
	}
	return d
}

// Sleep waits d or until ctx ends, whichever is first, and returns
// ctx.Err() in the second case (also when ctx has already ended and d is
// 0). It uses a real timer, which testing/synctest's fake clock drives.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Backoff walks a Policy's delays: Next returns Delay(1), Delay(2), …
// until Reset. Not safe for concurrent use; make one per retry loop.
type Backoff struct {
	Policy
	n int // failures since the last Reset
}

// New returns a Backoff at the start of p's delays.
func New(p Policy) *Backoff { return &Backoff{Policy: p} }

// Next returns the next wait and advances.
func (b *Backoff) Next() time.Duration {
	b.n++
	return b.Delay(b.n)
}

// Reset starts the delays over from Min (after progress, say).
func (b *Backoff) Reset() { b.n = 0 }

// Wait sleeps for Next (with the Policy's Sleep) or until ctx ends, and
// returns ctx's error then.
func (b *Backoff) Wait(ctx context.Context) error { return b.sleep(ctx, b.Next()) }

func (b *Backoff) sleep(ctx context.Context, d time.Duration) error {
	if b.Sleep != nil {
		return b.Sleep(ctx, d)
	}
	return Sleep(ctx, d)
}

// Retry calls op with attempt = 1, 2, … until it returns nil, waiting the
// Policy's delays in between. After each failure it calls
// classify(attempt, err, wait) with the wait before the next attempt:
// classify returns nil to wait and try again (a place to log and count
// the retry), or the error Retry returns at once. When ctx ends during a
// wait, Retry returns ctx.Err(). classify sees every error first, so a
// caller that wants a cancelled call reported as such checks ctx there.
// Retry blocks for as long as it retries.
func (p Policy) Retry(ctx context.Context, op func(attempt int) error, classify func(attempt int, err error, wait time.Duration) error) error {
	b := New(p)
	for attempt := 1; ; attempt++ {
		err := op(attempt)
		if err == nil {
			return nil
		}
		wait := b.Next()
		if err := classify(attempt, err, wait); err != nil {
			return err
		}
		if err := b.sleep(ctx, wait); err != nil {
			return err
		}
	}
}
