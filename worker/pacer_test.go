package worker

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/leasehold/leasehold/lease"
)

func testPacer(t *testing.T, tweak func(*Config)) *pacer {
	t.Helper()
	cfg := Config{StreamName: "st", Lease: lease.Config{WorkerID: "w"}}
	if tweak != nil {
		tweak(&cfg)
	}
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := newPacer(cfg, time.Time{})
	p.jitter = func(n int64) int64 { return n - 1 } // the longest wait, for exact bounds
	return p
}

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func TestPacerWaits(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    read
		want time.Duration // from the call's start to the next call's
	}{
		{"caught up, empty", read{limit: 1000}, time.Second},
		{"caught up, a trickle", read{limit: 1000, records: 25, bytes: 12_000}, time.Second},
		{"caught up, a little behind", read{limit: 1000, records: 25, bytes: 12_000, millisBehind: 1000}, time.Second},
		{"behind: a full batch", read{limit: 1000, records: 1000, bytes: 100_000}, 500 * time.Millisecond},
		{"behind: the tip is far", read{limit: 1000, records: 10, bytes: 5_000, millisBehind: 1001}, 500 * time.Millisecond},
		{"behind, 1 MB read: the byte rate allows 0.5 s", read{limit: 2000, records: 2000, bytes: 1_000_000}, 500 * time.Millisecond},
		{"behind, 1.5 MB read: the byte rate sets the wait", read{limit: 2000, records: 2000, bytes: 1_500_000}, 750 * time.Millisecond},
		{"a 10 MiB response keeps the shard for over 5 s", read{limit: 10000, records: 10000, bytes: 10 << 20}, 5242880 * time.Microsecond},
		{"caught up but a big read: the byte rate wins", read{limit: 10000, records: 5000, bytes: 3_000_000}, 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPacer(t, nil)
			tc.r.start = t0
			if got := p.next(tc.r).Sub(t0); got != tc.want {
				t.Fatalf("next call after %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPacerLimitKeepsBatchesNearOneCeilingIntervalOfBytes(t *testing.T) {
	p := testPacer(t, nil)
	if got := p.limit(); got != 976 { // 2,000,000 B/s × 0.5 s ÷ 1 KiB assumed
		t.Fatalf("first limit %d, want 976", got)
	}
	p.next(read{start: t0, limit: 976, records: 100, bytes: 50_000}) // 500-byte records
	if got := p.limit(); got != 2000 {
		t.Fatalf("limit for 500-byte records %d, want 2000", got)
	}
	p.next(read{start: t0, limit: 2000, records: 10, bytes: 100}) // 10-byte records
	if got := p.limit(); got != 10000 {
		t.Fatalf("limit for tiny records %d, want the configured 10000", got)
	}
	p.next(read{start: t0, limit: 10000}) // empty: the size estimate stays
	if got := p.limit(); got != 10000 {
		t.Fatalf("limit after an empty batch %d, want 10000", got)
	}
	p.next(read{start: t0, limit: 10000, records: 1, bytes: 1 << 20}) // 1 MiB records
	if got := p.limit(); got != 1 {
		t.Fatalf("limit for 1 MiB records %d, want 1", got)
	}
	small := testPacer(t, func(c *Config) { c.MaxRecords = 100 })
	if got := small.limit(); got != 100 {
		t.Fatalf("limit with max records 100: %d", got)
	}
}

func TestPacerBacksOffOnThrottlingWithJitter(t *testing.T) {
	p := testPacer(t, nil)
	var got []time.Duration
	for range 6 {
		got = append(got, p.throttled(t0).Sub(t0))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second, 3 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("throttle waits %v, want at most %v", got, want)
		}
	}
	// A success resets the backoff.
	p.next(read{start: t0, limit: 1000})
	if d := p.throttled(t0).Sub(t0); d != time.Second {
		t.Fatalf("first throttle after a success waits %s, want 1s", d)
	}
	// The jitter spreads two consumers that were refused together: the
	// first wait is between half and all of the base.
	p = testPacer(t, nil)
	p.jitter = func(int64) int64 { return 0 }
	if d := p.throttled(t0).Sub(t0); d != 500*time.Millisecond {
		t.Fatalf("shortest first wait %s, want 500ms", d)
	}
	// Never sooner than the ceiling allows, whatever the jitter.
	p = testPacer(t, func(c *Config) { c.MaxReadRate = 0.5; c.IdleTime = 2 * time.Second })
	p.jitter = func(int64) int64 { return 0 }
	if d := p.throttled(t0).Sub(t0); d != 2*time.Second {
		t.Fatalf("throttle wait %s under a 0.5/s ceiling, want 2s", d)
	}
}

// TestPacerNeverAboveTheCeilingOrTheByteRate drives the pacer with random
// responses and checks the schedule it makes: no two calls closer than
// 1/max_read_rate, no one-second window with more calls than the
// ceiling, and bytes read over any stretch of calls within the byte rate.
func TestPacerNeverAboveTheCeilingOrTheByteRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rate := range []float64{0.5, 1, 2, 5} {
		p := testPacer(t, func(c *Config) { c.MaxReadRate = rate; c.IdleTime = time.Duration(float64(time.Second) / rate) })
		p.jitter = func(n int64) int64 { return rng.Int64N(n) }
		at := t0
		var starts []time.Time
		var sizes []int
		for range 5000 {
			starts = append(starts, at)
			if rng.IntN(10) == 0 {
				sizes = append(sizes, 0)
				at = p.throttled(at)
				continue
			}
			limit := p.limit()
			n := rng.IntN(limit + 1)
			r := read{start: at, limit: limit, records: n, bytes: n * (1 + rng.IntN(4000)), millisBehind: int64(rng.IntN(3000))}
			sizes = append(sizes, r.bytes)
			at = p.next(r)
		}
		gap := time.Duration(float64(time.Second) / rate)
		for i := 1; i < len(starts); i++ {
			if d := starts[i].Sub(starts[i-1]); d < gap {
				t.Fatalf("rate %v: calls %d and %d %s apart, closer than %s", rate, i-1, i, d, gap)
			}
		}
		for i := range starts {
			bytes := 0
			for j := i; j < len(starts)-1; j++ {
				bytes += sizes[j]
				// Bytes of calls i..j were read before call j+1 started.
				if limit := float64(2_000_000) * starts[j+1].Sub(starts[i]).Seconds(); float64(bytes) > limit+1 {
					t.Fatalf("rate %v: %d bytes read between calls %d and %d, over %.0f", rate, bytes, i, j+1, limit)
				}
				if j-i > 20 {
					break
				}
			}
		}
	}
}

// TestPacerPutsCaughtUpCallsOnTheGrid: with a grid, a caught-up call is
// followed by the grid instant after the one it was sent for, however
// late it was sent (up to idle−gap), so every consumer sharing the grid
// polls in the same instants; calls off the grid (the first, after a
// behind or throttled read, or very late) join it at the instant nearest
// to one idle interval after their start, never closer than the ceiling
// allows. Reads that are behind are not put on it.
func TestPacerPutsCaughtUpCallsOnTheGrid(t *testing.T) {
	p := testPacer(t, nil)
	p.origin = t0
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	trickle := read{limit: 1000, records: 25, bytes: 12_000}
	behind := read{limit: 1000, records: 1000, bytes: 100_000}
	at := func(start time.Time, r read) read { r.start = start; return r }
	for i, step := range []struct {
		r    read
		want time.Time
	}{
		{at(ms(300), trickle), ms(1000)},  // first call: the instant nearest 1.3 s
		{at(ms(1007), trickle), ms(2000)}, // sent 7 ms late for 1 s: the next instant
		{at(ms(2499), trickle), ms(3000)}, // 499 ms late (≤ idle−gap): still the next instant
		{at(ms(3600), trickle), ms(5000)}, // 600 ms late: off the grid; nearest 4.6 s
		{at(ms(5000), behind), ms(5500)},  // behind: at the ceiling, off the grid
		{at(ms(5700), trickle), ms(7000)}, // caught up again: nearest 6.7 s
		{at(ms(7001), trickle), ms(8000)},
		{at(ms(8000), behind), ms(8500)},
		{at(ms(8500), trickle), ms(10000)}, // 9.5 s is as near to 9 s as to 10 s: the later
	} {
		if got := p.next(step.r); !got.Equal(step.want) {
			t.Fatalf("step %d: call at %s followed at %s, want %s", i, step.r.start.Sub(t0), got.Sub(t0), step.want.Sub(t0))
		}
	}
	// A throttled call leaves the grid; the next caught-up read joins it again.
	p.throttled(ms(10000))
	if got := p.next(at(ms(11300), trickle)); !got.Equal(ms(12000)) {
		t.Fatalf("after a throttled call: next at %s, want 12s", got.Sub(t0))
	}
	// With little slack between idle_time and the ceiling, joining never
	// comes sooner than the ceiling allows.
	q := testPacer(t, func(c *Config) { c.IdleTime, c.MaxReadRate = 300*time.Millisecond, 4 })
	q.origin = t0
	if got := q.next(at(ms(1040), trickle)); !got.Equal(ms(1500)) { // nearest to 1.34 s is 1.2 s: too soon
		t.Fatalf("idle 300ms, ceiling 4/s: next at %s, want 1.5s", got.Sub(t0))
	}
	// Idle time at the ceiling's interval leaves no slack for a late
	// call: no grid, one interval after each start as without it.
	for _, tweak := range []func(*Config){
		func(c *Config) { c.IdleTime, c.MaxReadRate = 250*time.Millisecond, 4 },
		func(c *Config) { c.IdleTime, c.MaxReadRate = 500*time.Millisecond, 2 },
	} {
		cfg := Config{StreamName: "st", Lease: lease.Config{WorkerID: "w"}}
		tweak(&cfg)
		cfg.defaults()
		r := newPacer(cfg, t0)
		if !r.origin.IsZero() {
			t.Fatalf("idle %s at %g/s: a grid without slack", cfg.IdleTime, cfg.MaxReadRate)
		}
		if got := r.next(at(ms(1003), trickle)); !got.Equal(ms(1003).Add(cfg.IdleTime)) {
			t.Fatalf("idle %s at %g/s: next at %s, want one interval after the start", cfg.IdleTime, cfg.MaxReadRate, got.Sub(t0))
		}
	}
	// Before the origin (a clock that went back): still grid instants.
	for _, c := range [][2]int{{-1500, -1000}, {-1600, -2000}, {-1400, -1000}, {-1000, -1000}} {
		if got := p.nearest(ms(c[0])); !got.Equal(ms(c[1])) {
			t.Fatalf("nearest(%dms) = %s, want %dms", c[0], got.Sub(t0), c[1])
		}
	}
}

// TestPacerGridKeepsTheCeilingAndTheRate sends caught-up calls late by a
// random 0–800 ms each: two calls are never closer than 1/ceiling, and
// there is at most one call per idle interval over the run.
func TestPacerGridKeepsTheCeilingAndTheRate(t *testing.T) {
	p := testPacer(t, nil)
	p.origin = t0
	rng := rand.New(rand.NewPCG(1, 2))
	start, prev := t0.Add(123*time.Millisecond), time.Time{}
	const calls = 10_000
	for i := range calls {
		if !prev.IsZero() && start.Sub(prev) < p.gap {
			t.Fatalf("call %d only %s after the previous one", i, start.Sub(prev))
		}
		next := p.next(read{start: start, limit: 1000, records: 3, bytes: 900})
		if next.Sub(start) < p.gap {
			t.Fatalf("call %d: next only %s later", i, next.Sub(start))
		}
		prev, start = start, next.Add(time.Duration(rng.Int64N(int64(800*time.Millisecond))))
	}
	if span := prev.Sub(t0); span < calls*p.idle-p.idle {
		t.Fatalf("%d calls in %s: more than one per %s", calls, span, p.idle)
	}
}
