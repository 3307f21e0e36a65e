package lease

import (
	mrand "math/rand/v2"
	"testing"
	"time"
)

// TestPassInterval pins the waits between coordination passes (drawn
// from internal/backoff): TakeInterval ±10%, a fifth of it while a
// handoff we asked for is pending, doubling after each failed pass up to
// 8 intervals.
func TestPassInterval(t *testing.T) {
	ti := time.Second
	ms := time.Millisecond
	tests := []struct {
		name     string
		failures int
		pending  bool
		min, max time.Duration
	}{
		{"steady", 0, false, 900 * ms, 1100 * ms},
		{"handoff pending", 0, true, 180 * ms, 220 * ms},
		{"one failure", 1, false, 1800 * ms, 2200 * ms},
		{"one failure, pending too", 1, true, 1800 * ms, 2200 * ms},
		{"three failures", 3, false, 7200 * ms, 8800 * ms},
		{"many failures: capped", 40, false, 7200 * ms, 8800 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Coordinator{cfg: Config{TakeInterval: ti}, rng: mrand.New(mrand.NewPCG(1, 2))}
			if tt.pending {
				c.requested = map[string]time.Time{"shard-0": {}}
			}
			lo, hi := time.Duration(1<<62), time.Duration(0)
			for range 2000 {
				d := c.interval(tt.failures)
				if d < tt.min || d > tt.max {
					t.Fatalf("interval(%d) = %v, want within [%v, %v]", tt.failures, d, tt.min, tt.max)
				}
				lo, hi = min(lo, d), max(hi, d)
			}
			// The draws spread over the range, so workers drift apart.
			if spread := tt.max - tt.min; hi-lo < spread*8/10 {
				t.Errorf("draws spread over [%v, %v] only, want most of [%v, %v]", lo, hi, tt.min, tt.max)
			}
		})
	}
}
