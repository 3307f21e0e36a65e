package worker

import (
	"testing"
	"time"
)

// TestRetryBackoff pins the consumer's waits after a failed call (drawn
// from internal/backoff): half to all of 100ms doubling to 5s, or to 30s
// for errors that will not cure themselves, starting over after a
// success.
func TestRetryBackoff(t *testing.T) {
	ms := time.Millisecond
	type step struct {
		permanent bool
		min, max  time.Duration
	}
	for range 200 { // the real random source stays within the bounds
		b := newBackoff()
		for i, s := range []step{
			{false, 50 * ms, 100 * ms},
			{false, 100 * ms, 200 * ms},
			{false, 200 * ms, 400 * ms},
			{false, 400 * ms, 800 * ms},
			{false, 800 * ms, 1600 * ms},
			{false, 1600 * ms, 3200 * ms},
			{false, 2500 * ms, 5 * time.Second},
			{false, 2500 * ms, 5 * time.Second},
			{true, 12800 * ms, 25600 * ms}, // the same streak, a longer cap
			{true, 15 * time.Second, 30 * time.Second},
			{false, 2500 * ms, 5 * time.Second},
		} {
			if d := b.next(s.permanent); d < s.min || d > s.max {
				t.Fatalf("wait %d (permanent %v) = %v, want within [%v, %v]", i+1, s.permanent, d, s.min, s.max)
			}
		}
		b.reset()
		if d := b.next(false); d < 50*ms || d > 100*ms {
			t.Fatalf("first wait after reset = %v, want within [50ms, 100ms]", d)
		}
	}
}
