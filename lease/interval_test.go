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
				d, _ := c.interval(tt.failures)
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

// TestPassWaitOnAGrid pins what a pass grid moves: only the regular wait,
// to the grid instant nearest a take interval after the pass ended (the
// later of two as near), at most half a step away; the short wait while a
// handoff we asked for is pending and the failure backoff stay
// interval's, off the grid.
func TestPassWaitOnAGrid(t *testing.T) {
	ms := time.Millisecond
	origin := time.Date(2026, 12, 5, 0, 0, 0, 300*int(ms), time.UTC) // instants at .300
	c := &Coordinator{cfg: Config{TakeInterval: time.Second}, rng: mrand.New(mrand.NewPCG(1, 2))}
	c.AlignPasses(origin, time.Second)
	at := func(s float64) time.Time { return origin.Add(time.Duration(s * float64(time.Second))) }
	for _, tt := range []struct {
		end, want float64 // seconds after the origin
	}{
		{0.004, 1},  // a pass of 4 ms on an instant: the next instant
		{0.499, 1},  // a slow pass: still the next instant
		{0.5, 2},    // as near the two: the later
		{-0.2, 1},   // a kicked pass between instants
		{-7.6, -7},  // before the origin
		{-0.5, 1},   // as near, before the origin: the later
		{12.51, 14}, // 13.51 is nearer 14
	} {
		if got := c.wait(0, at(tt.end)); !at(tt.end).Add(got).Equal(at(tt.want)) {
			t.Errorf("pass ended at %+.3f s: next at %+.3f s, want %+.3f s", tt.end, at(tt.end).Add(got).Sub(origin).Seconds(), tt.want)
		}
	}
	for range 200 {
		if d := c.wait(2, at(0.01)); d < 3600*ms || d > 4400*ms {
			t.Fatalf("after 2 failures: %s, want 4 s ±10%% as without a grid", d)
		}
	}
	c.requested = map[string]time.Time{"shard-0": {}}
	for range 200 {
		if d := c.wait(0, at(0.01)); d < 180*ms || d > 220*ms {
			t.Fatalf("handoff pending: %s, want a fifth of the take interval ±10%% as without a grid", d)
		}
	}
	c.AlignPasses(origin, 1001*ms) // coarser than the take interval: not used
	c.requested = nil
	for range 200 {
		if d := c.wait(0, at(0.01)); d < 900*ms || d > 1100*ms {
			t.Fatalf("grid coarser than the take interval: %s, want the take interval ±10%%", d)
		}
	}
}
