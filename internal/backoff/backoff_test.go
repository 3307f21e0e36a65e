package backoff_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/leasehold/leasehold/internal/backoff"
)

// top and bottom make Rand return the largest and the smallest draw.
func top(n int64) int64    { return n - 1 }
func bottom(n int64) int64 { return 0 }

func TestDelay(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		p        backoff.Policy
		n        int
		min, max time.Duration // with the smallest and the largest draw
	}{
		{"none first", backoff.Policy{Min: 100 * ms, Max: 10 * time.Second}, 1, 100 * ms, 100 * ms},
		{"none doubles", backoff.Policy{Min: 100 * ms, Max: 10 * time.Second}, 4, 800 * ms, 800 * ms},
		{"none capped", backoff.Policy{Min: 100 * ms, Max: 10 * time.Second}, 20, 10 * time.Second, 10 * time.Second},
		{"n below 1 is 1", backoff.Policy{Min: 100 * ms, Max: time.Second}, 0, 100 * ms, 100 * ms},
		{"no cap", backoff.Policy{Min: ms}, 11, 1024 * ms, 1024 * ms},
		{"huge n does not overflow", backoff.Policy{Min: 10 * time.Second}, 200, 10 * time.Second << 29, 10 * time.Second << 29}, // the largest doubling below overflow
		{"huge n capped", backoff.Policy{Min: 10 * time.Second, Max: time.Minute}, 200, time.Minute, time.Minute},
		{"zero", backoff.Policy{Jitter: backoff.Spread}, 5, 0, 0},
		{"full", backoff.Policy{Min: 100 * ms, Max: time.Second, Jitter: backoff.Full}, 2, 0, 200 * ms},
		{"equal", backoff.Policy{Min: 100 * ms, Max: time.Second, Jitter: backoff.Equal}, 2, 100 * ms, 200 * ms},
		{"equal capped", backoff.Policy{Min: 100 * ms, Max: time.Second, Jitter: backoff.Equal}, 9, 500 * ms, time.Second},
		{"spread", backoff.Policy{Min: 100 * ms, Max: time.Second, Jitter: backoff.Spread}, 2, 100 * ms, 300*ms - 1},
		{"spread capped", backoff.Policy{Min: 100 * ms, Max: time.Second, Jitter: backoff.Spread}, 9, 500 * ms, 1500*ms - 1},
		{"tenth", backoff.Policy{Min: time.Second, Max: 8 * time.Second, Jitter: backoff.Tenth}, 1, 900 * ms, 1100 * ms},
		{"tenth doubles", backoff.Policy{Min: time.Second, Max: 8 * time.Second, Jitter: backoff.Tenth}, 3, 3600 * ms, 4400 * ms},
		{"tenth capped", backoff.Policy{Min: time.Second, Max: 8 * time.Second, Jitter: backoff.Tenth}, 9, 7200 * ms, 8800 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := tt.p, tt.p
			lo.Rand, hi.Rand = bottom, top
			if got := lo.Delay(tt.n); got != tt.min {
				t.Errorf("smallest Delay(%d) = %v, want %v", tt.n, got, tt.min)
			}
			if got := hi.Delay(tt.n); got != tt.max {
				t.Errorf("largest Delay(%d) = %v, want %v", tt.n, got, tt.max)
			}
			for range 200 { // the real source stays within the bounds
				if got := tt.p.Delay(tt.n); got < tt.min || got > tt.max {
					t.Fatalf("Delay(%d) = %v, want within [%v, %v]", tt.n, got, tt.min, tt.max)
				}
			}
		})
	}
}

func TestBackoffNextAndReset(t *testing.T) {
	b := backoff.New(backoff.Policy{Min: 50 * time.Millisecond, Max: 300 * time.Millisecond})
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	b.Reset()
	got = append(got, b.Next())
	want := []time.Duration{50, 100, 200, 300, 300, 50}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := backoff.Sleep(t.Context(), 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Fatalf("slept %v, want 3s", d)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want deadline exceeded", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("slept %v until the context ended, want 1s", d)
		}
		// An ended context wins even over a zero wait.
		if err := backoff.Sleep(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("zero wait on an ended context: err = %v", err)
		}
	})
}

func TestRetry(t *testing.T) {
	errBusy, errBad := errors.New("busy"), errors.New("bad")
	p := backoff.Policy{Min: 100 * time.Millisecond, Max: 250 * time.Millisecond}

	t.Run("retries until success, waiting the delays", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			var waits []time.Duration
			err := p.Retry(t.Context(), func(attempt int) error {
				if attempt < 4 {
					return errBusy
				}
				return nil
			}, func(attempt int, err error, wait time.Duration) error {
				waits = append(waits, wait)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d != 550*time.Millisecond || len(waits) != 3 {
				t.Fatalf("took %v with waits %v, want 100+200+250 = 550ms", d, waits)
			}
		})
	})
	t.Run("classify stops", func(t *testing.T) {
		calls := 0
		err := p.Retry(t.Context(), func(int) error { calls++; return errBad }, func(_ int, err error, _ time.Duration) error { return err })
		if !errors.Is(err, errBad) || calls != 1 {
			t.Fatalf("err %v after %d calls, want bad after 1", err, calls)
		}
	})
	t.Run("context ends during a wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			calls := 0
			err := p.Retry(ctx, func(int) error { calls++; return errBusy }, func(int, error, time.Duration) error { return nil })
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want deadline exceeded", err)
			}
			// 0, 100, 300, 550, 800 → the sixth would start at 1050ms.
			if calls != 5 {
				t.Fatalf("%d calls in 1s, want 5", calls)
			}
		})
	})
	t.Run("injected sleep", func(t *testing.T) {
		q := p
		var slept []time.Duration
		q.Sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
		_ = q.Retry(t.Context(), func(attempt int) error {
			if attempt < 3 {
				return errBusy
			}
			return nil
		}, func(int, error, time.Duration) error { return nil })
		if len(slept) != 2 || slept[0] != 100*time.Millisecond || slept[1] != 200*time.Millisecond {
			t.Fatalf("slept %v, want [100ms 200ms]", slept)
		}
	})
}
